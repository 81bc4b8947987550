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

fn dump(out: &std::path::Path, extra: &[&str]) -> std::process::Output {
    let model = repo().join("fixtures/tiny-llama.gguf");
    std::process::Command::new(env!("CARGO_BIN_EXE_attn"))
        .args(["dump", "--quiet", "--model", model.to_str().unwrap()])
        .args(["--text", "the cat sat on the mat and the dog sat too"])
        .args(["--out", out.to_str().unwrap()])
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn a_dump_selection_writes_those_heads_of_the_full_dump() {
    let dir = tempfile::tempdir().unwrap();
    let (full, sel, csv) = (
        dir.path().join("full"),
        dir.path().join("sel"),
        dir.path().join("csv"),
    );
    assert!(dump(&full, &[]).status.success());
    let o = dump(&sel, &["--attn-layers", "1", "--attn-heads", "0,2-3"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let all = common::Npy::read(&full.join("attention.npy")).f32();
    let some = common::Npy::read(&sel.join("attention.npy")).f32();
    let n = all.shape()[2];
    assert_eq!(some.shape(), &[1, 3, n, n]);
    for (i, h) in [0, 2, 3].into_iter().enumerate() {
        let want = all.slice(ndarray::s![1, h, .., ..]);
        let got = some.slice(ndarray::s![0, i, .., ..]);
        let d = (&want - &got).mapv(f32::abs).fold(0.0f32, |x, &y| x.max(y));
        assert!(d <= 1e-5, "head {h} differs by {d}");
    }
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(sel.join("meta.json")).unwrap()).unwrap();
    assert_eq!(meta["attention_layers"], serde_json::json!([1]));
    assert_eq!(meta["attention_heads"], serde_json::json!([0, 2, 3]));
    let full_meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(full.join("meta.json")).unwrap()).unwrap();
    assert_eq!(full_meta["attention_layers"], serde_json::json!([0, 1]));
    // CSV: one file per selected (layer, head), named by its own indices.
    let o = dump(
        &csv,
        &[
            "--format",
            "csv",
            "--attn-layers",
            "0-1",
            "--attn-heads",
            "3",
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut names: Vec<String> = std::fs::read_dir(csv.join("attention"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["layer00_head03.csv", "layer01_head03.csv"]);
    // Out of range or malformed: refused, naming the flag.
    for (flag, v, says) in [
        (
            "--attn-layers",
            "2",
            "--attn-layers 2: 2 is out of range (0..=1)",
        ),
        ("--attn-heads", "1-x", "`x` is not an index"),
        ("--attn-heads", "3-1", "runs backwards"),
    ] {
        let o = dump(&dir.path().join("bad"), &[flag, v]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            !o.status.success() && err.contains(says),
            "{flag} {v}: {err}"
        );
    }
}
