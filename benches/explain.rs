//! Opening the explanation views (`E`, `o`, `b`, `B`, `v`) on a real model at ~50 tokens: the first open of a layer
//! (re-run from that layer with its hook points captured, then every explanation), a cursor move within the layer
//! (captured layer reused), and, as the peer, one forward pass of the same input.
//!
//!     ATTN_BENCH_MODEL=smollm2 cargo bench --bench explain -- --warm-up-time 1 --measurement-time 3

use attn::model::{self, TextbookConfig};
use attn::trace::ForwardOptions;
use attn::tui::explained::{ExplainRequest, compute};
use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use std::sync::Arc;

const TEXT: &str = "In the beginning the model reads every word, then it decides which earlier words matter for the \
                    next one, and the attention heads in each layer look at different things: the previous token, \
                    the first token, punctuation, or the subject.";

fn bench(c: &mut Criterion) {
    let spec = std::env::var("ATTN_BENCH_MODEL").unwrap_or_else(|_| "textbook".into());
    let m = model::load(&spec, &TextbookConfig::default()).unwrap();
    let t = Arc::new(model::run(m.as_ref(), TEXT, None, &ForwardOptions::default()).unwrap());
    let n = t.n_tokens();
    eprintln!("{spec}: {n} tokens");
    let req = |layer| ExplainRequest {
        generation: 1,
        layer,
        head: 0,
        query: n - 1,
        key: 0,
    };
    let mut g = c.benchmark_group(format!("explain_{spec}_{n}tok"));
    g.bench_function("forward (peer)", |b| {
        b.iter(|| {
            black_box(model::run(m.as_ref(), TEXT, None, &ForwardOptions::default()).unwrap())
        })
    });
    for layer in [0, m.info().n_layers / 2, m.info().n_layers - 1] {
        g.bench_function(format!("open layer {layer}"), |b| {
            b.iter(|| black_box(compute(m.as_ref(), t.clone(), None, req(layer))))
        });
    }
    let first = compute(m.as_ref(), t.clone(), None, req(0));
    g.bench_function("move within layer 0", |b| {
        b.iter(|| {
            black_box(compute(
                m.as_ref(),
                first.captured.clone(),
                first.w_o.clone(),
                ExplainRequest { head: 1, ..req(0) },
            ))
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
