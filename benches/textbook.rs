//! The built-in textbook model (6 layers × 8 heads, d_model 512): construction and one forward pass with every
//! attention matrix kept, at 5, 40 and ~460 tokens.

use attn::model::{Model, TextbookConfig, run, textbook};
use attn::trace::ForwardOptions;
use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;

fn sentence(words: usize) -> String {
    let base =
        "the quick brown fox jumps over the lazy dog while a cat watches from the warm window sill";
    base.split(' ')
        .cycle()
        .take(words)
        .collect::<Vec<_>>()
        .join(" ")
}

fn bench(c: &mut Criterion) {
    c.bench_function("textbook/new (default, seed 42)", |b| {
        b.iter(|| textbook::new(black_box(TextbookConfig::default())).unwrap())
    });
    let m = textbook::new(TextbookConfig::default()).unwrap();
    for words in [3, 38, 456] {
        let text = sentence(words);
        let n = m.tokenizer().encode(&text, None).unwrap().ids.len();
        c.bench_function(&format!("textbook/forward {n} tokens"), |b| {
            b.iter(|| run(&m, black_box(&text), None, &ForwardOptions::default()).unwrap())
        });
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10).warm_up_time(std::time::Duration::from_secs(1)).measurement_time(std::time::Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);
