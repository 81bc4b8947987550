//! SmolLM2-135M from GGUF: parse the file (mmap, header, metadata incl. the 49152-token vocabulary, tensor infos) and
//! dequantize every tensor to f32. Skipped with a note when models/smollm2.gguf is absent.

use attn::weights::Gguf;
use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use std::path::PathBuf;

fn model() -> Option<PathBuf> {
    let dir = std::env::var_os("ATTN_MODELS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models"));
    let p = dir.join("smollm2.gguf");
    if p.exists() {
        Some(p)
    } else {
        eprintln!(
            "note: {} is missing; skipping the GGUF benchmark",
            p.display()
        );
        None
    }
}

fn bench(c: &mut Criterion) {
    let Some(path) = model() else { return };
    let mut g = c.benchmark_group("smollm2_gguf");
    g.sample_size(10);
    g.bench_function("parse", |b| {
        b.iter(|| black_box(Gguf::open(&path).unwrap().tensors.len()))
    });
    g.bench_function("parse + dequantize all tensors", |b| {
        b.iter(|| {
            let gguf = Gguf::open(&path).unwrap();
            let mut n = 0usize;
            for t in &gguf.tensors {
                n += black_box(gguf.tensor_f32(&t.name).unwrap()).len();
            }
            n
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
