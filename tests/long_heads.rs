//! Long inputs without every attention matrix: the query-tiled forward (causal tiles skip the keys after their last
//! query) leaves the same residual stream as the keep-everything forward, and one head recomputed on demand from the
//! cached stream ([`attn::model::head_attention`]) equals that head of the kept run.

mod common;

use attn::model::{self, Model, TextbookConfig};
use attn::trace::{ForwardOptions, Trace};
use common::repo;

fn run(m: &dyn Model, text: &str, keep: bool) -> Trace {
    let opts = ForwardOptions {
        keep_attention: keep,
        top_k: 0,
        ..Default::default()
    };
    model::run(m, text, None, &opts).unwrap_or_else(|e| panic!("{e}"))
}

/// Every layer's stream and every head of the lazy run against the kept run.
fn check_on_demand_heads_equal_kept(m: &dyn Model, text: &str, min_tokens: usize) {
    let kept = run(m, text, true);
    let lazy = run(m, text, false);
    let n = kept.n_tokens();
    assert!(
        n > min_tokens,
        "{n} tokens: too short to span several query tiles"
    );
    for (l, (a, b)) in kept.hidden.iter().zip(&lazy.hidden).enumerate() {
        let d = (a - b).mapv(f32::abs).fold(0.0f32, |x, &y| x.max(y));
        assert!(d <= 1e-4, "hidden[{l}] differs by {d}");
    }
    let heads = m.info().n_heads;
    for l in 0..kept.n_layers() {
        assert!(lazy.layers[l].attention.is_none());
        let full = kept.layers[l].attention.as_ref().expect("kept");
        for h in 0..heads {
            let one = model::head_attention(m, &lazy, l, h).unwrap();
            let want = full.index_axis(ndarray::Axis(0), h);
            let d = (&one - &want).mapv(f32::abs).fold(0.0f32, |x, &y| x.max(y));
            assert!(d <= 1e-5, "layer {l} head {h}: on-demand differs by {d}");
        }
    }
    let e = model::head_attention(m, &lazy, 0, heads)
        .unwrap_err()
        .to_string();
    assert!(e.contains(&format!("head {heads} out of range")), "{e}");
}

#[test]
fn tiny_llama_on_demand_heads_equal_the_kept_ones_over_several_tiles() {
    let m = model::load(
        repo().join("fixtures/tiny-llama.gguf").to_str().unwrap(),
        &TextbookConfig::default(),
    )
    .unwrap();
    let text = "the cat sat on the mat and looked at the dog. ".repeat(15);
    check_on_demand_heads_equal_kept(m.as_ref(), &text, attn::model::attention::QUERY_TILE);
}

#[test]
fn textbook_encoder_on_demand_heads_equal_the_kept_ones() {
    let cfg = TextbookConfig {
        layers: 2,
        heads: 4,
        d_model: 64,
        d_ff: 128,
        ..Default::default()
    };
    let m = model::load("textbook", &cfg).unwrap();
    let text = "attention lets every token look at every other token. ".repeat(20);
    check_on_demand_heads_equal_kept(m.as_ref(), &text, attn::model::attention::QUERY_TILE);
}
