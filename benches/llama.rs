//! SmolLM2-135M from GGUF: load (parse + dequantize + tokenizer), and one forward pass with every attention recorded
//! and the top-5 next tokens at every position, at 3, 39 and 115 tokens (the sentences of
//! fixtures/smollm2_bench_texts.json, which scripts/golden/time_transformers_smollm2.py times in transformers).
//! Skips with a note when models/smollm2.gguf is missing.

use attn::model::{self, TextbookConfig};
use attn::trace::ForwardOptions;
use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use std::path::PathBuf;

fn model_path() -> PathBuf {
    std::env::var_os("ATTN_MODELS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models"))
        .join("smollm2.gguf")
}

fn texts() -> Vec<(String, usize, String)> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/smollm2_bench_texts.json");
    let j: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(p).expect("bench texts")).expect("json");
    j.as_array()
        .expect("array")
        .iter()
        .map(|t| {
            (
                t["name"].as_str().unwrap_or_default().to_string(),
                t["tokens"].as_u64().unwrap_or_default() as usize,
                t["text"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let path = model_path();
    if !path.exists() {
        eprintln!(
            "note: {} is missing; skipping the SmolLM2 benchmarks (run scripts/fetch-models)",
            path.display()
        );
        return;
    }
    let spec = path.to_str().expect("utf-8 path").to_string();
    let tb = TextbookConfig::default();
    let mut g = c.benchmark_group("smollm2");
    g.sample_size(10);
    g.bench_function("load (parse + dequantize + tokenizer)", |b| {
        b.iter(|| black_box(model::load(&spec, &tb).expect("load")))
    });
    let m = model::load(&spec, &tb).expect("load");
    for (name, n, text) in texts() {
        let enc = m.tokenizer().encode(&text, None).expect("tokenize");
        assert_eq!(enc.ids.len(), n, "{name}: token count");
        let all = ForwardOptions {
            keep_attention: true,
            top_k: 5,
            ..Default::default()
        };
        g.bench_function(
            format!("forward {name}, all attention + top-5 at every position"),
            |b| b.iter(|| black_box(m.forward(&enc, &all).expect("forward"))),
        );
        let no_top = ForwardOptions {
            keep_attention: true,
            top_k: 0,
            ..Default::default()
        };
        g.bench_function(
            format!("forward {name}, all attention, no next tokens"),
            |b| b.iter(|| black_box(m.forward(&enc, &no_top).expect("forward"))),
        );
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
