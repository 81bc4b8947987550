//! Load all-MiniLM-L6-v2 from models/minilm and run one forward pass with every attention matrix kept, at three
//! input lengths (the sentences of scripts/golden/time_transformers_minilm.py). Skips with a note when the model
//! has not been fetched. Short runs: `cargo bench --bench hf -- --warm-up-time 1 --measurement-time 3`.

use attn::model::{self, TextbookConfig};
use attn::trace::ForwardOptions;
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use std::path::PathBuf;

/// The benchmark sentences: 5, 40 and 458 tokens with the MiniLM tokenizer (checked below).
pub fn sentences() -> Vec<(usize, String)> {
    let short = "I love AI".to_string();
    let mid = "The quick brown fox jumps over the lazy dog while the cat sleeps on the warm mat, and \
               attention heads in a transformer decide which words matter most to each other today in the lab."
        .to_string();
    let long = [mid.as_str(); 12].join(" ");
    vec![(5, short), (40, mid), (458, long)]
}

fn minilm_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("ATTN_MODELS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models"))
        .join("minilm");
    dir.join("model.safetensors").exists().then_some(dir)
}

fn bench(c: &mut Criterion) {
    let Some(dir) = minilm_dir() else {
        eprintln!("note: models/minilm is missing; run scripts/fetch-models to benchmark MiniLM");
        return;
    };
    let spec = dir.to_str().unwrap_or("models/minilm").to_string();
    let tb = TextbookConfig::default();
    let opts = ForwardOptions {
        keep_attention: true,
        top_k: 5,
        ..Default::default()
    };
    let m = model::load(&spec, &tb).expect("MiniLM loads");
    for (n, text) in sentences() {
        let got = m
            .tokenizer()
            .encode(&text, None)
            .expect("tokenizes")
            .ids
            .len();
        assert_eq!(got, n, "benchmark sentence length changed");
    }
    let mut g = c.benchmark_group("minilm");
    g.bench_function("load", |b| {
        b.iter(|| black_box(model::load(&spec, &tb).expect("loads")))
    });
    for (n, text) in sentences() {
        g.bench_with_input(BenchmarkId::new("forward", n), &text, |b, text| {
            b.iter(|| black_box(model::run(m.as_ref(), text, None, &opts).expect("runs")))
        });
        g.bench_with_input(BenchmarkId::new("load+forward", n), &text, |b, text| {
            b.iter(|| {
                let m = model::load(&spec, &tb).expect("loads");
                black_box(model::run(m.as_ref(), text, None, &opts).expect("runs"))
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
