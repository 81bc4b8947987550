//! Parity of the Hugging Face encoder–decoder loaders with transformers (eager, fp32) on the tiny random folders of
//! scripts/golden/make_encdec_fixtures.py: every attention ≤ 1e-4, hidden states ≤ 1e-4 relative, greedy ids equal.

mod common;

use attn::model::encdec::EncoderDecoder;
use attn::model::{TextbookConfig, load_encoder_decoder};
use attn::trace::ForwardOptions;
use common::{Npy, max_abs_diff, repo};
use ndarray::{ArrayD, Axis, stack};

fn ids(n: &Npy) -> Vec<u32> {
    n.i64().into_iter().map(|v| v as u32).collect()
}

fn rel(a: &ArrayD<f32>, b: &ArrayD<f32>) -> f32 {
    let scale = b.iter().fold(0.0f32, |m, v| m.max(v.abs())).max(1e-6);
    max_abs_diff(a, b) / scale
}

fn load(name: &str) -> EncoderDecoder {
    let dir = repo().join("fixtures").join(name);
    load_encoder_decoder(dir.to_str().unwrap(), &TextbookConfig::default(), None)
        .unwrap()
        .expect("an encoder–decoder folder")
}

fn check(name: &str) {
    let m = load(name);
    let gold_dir = repo().join("fixtures/golden").join(name);
    let cases: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(gold_dir.join("cases.json")).unwrap())
            .unwrap();
    let opts = ForwardOptions {
        keep_attention: true,
        ..Default::default()
    };
    for case in cases.as_array().unwrap() {
        let c = case["name"].as_str().unwrap();
        let g = |w: &str| Npy::read(&gold_dir.join(format!("{c}_{w}.npy")));
        let src = m.encode_source(case["source"].as_str().unwrap()).unwrap();
        let tgt = m.decoder_input(case["target"].as_str().unwrap()).unwrap();
        assert_eq!(src.ids, ids(&g("src_ids")), "{name} {c}: source ids");
        assert_eq!(tgt.ids, ids(&g("dec_in_ids")), "{name} {c}: decoder input");
        let t = m.forward(&src, &tgt, &opts).unwrap();
        let st3 = |v: Vec<&ndarray::Array3<f32>>| -> ArrayD<f32> {
            let views: Vec<_> = v.iter().map(|a| a.view()).collect();
            stack(Axis(0), &views).unwrap().into_dyn()
        };
        let st2 = |v: &[ndarray::Array2<f32>]| -> ArrayD<f32> {
            let views: Vec<_> = v.iter().map(|a| a.view()).collect();
            stack(Axis(0), &views).unwrap().into_dyn()
        };
        let enc = st3(t
            .source
            .layers
            .iter()
            .map(|l| l.attention.as_ref().unwrap())
            .collect());
        let dec = st3(t
            .target
            .layers
            .iter()
            .map(|l| l.attention.as_ref().unwrap())
            .collect());
        let cross = st3(t
            .target
            .layers
            .iter()
            .map(|l| l.cross_attention.as_ref().unwrap())
            .collect());
        for (what, ours) in [
            ("encoder_attentions", enc),
            ("decoder_attentions", dec),
            ("cross_attentions", cross),
        ] {
            let d = max_abs_diff(&ours, &g(what).f32());
            println!("{name} {c} {what}: max |Δ| {d:.2e}");
            assert!(d <= 1e-4, "{name} {c} {what}: max |Δ| {d}");
        }
        for (what, ours) in [
            ("encoder_hidden", st2(&t.source.hidden)),
            ("decoder_hidden", st2(&t.target.hidden)),
            ("logits", t.logits.clone().into_dyn()),
        ] {
            let r = rel(&ours, &g(what).f32());
            println!("{name} {c} {what}: relative max |Δ| {r:.2e}");
            assert!(r <= 1e-4, "{name} {c} {what}: relative max |Δ| {r}");
        }
        let greedy = m.greedy(&src, 8).unwrap();
        assert_eq!(greedy, ids(&g("greedy_ids")), "{name} {c}: greedy ids");
    }
}

#[test]
fn bart_matches_transformers() {
    check("tiny-bart");
}

#[test]
fn t5_relu_tied_matches_transformers() {
    check("tiny-t5");
}

/// The fixture exercises the relative bias: every head's encoder bias and decoder bias varies with the distance
/// (the parity above would not notice a bias that is missing if the fixture's table were all zeros).
#[test]
fn t5_fixtures_have_a_visible_relative_bias() {
    for name in ["tiny-t5", "tiny-t5-gated"] {
        let m = load(name);
        for (side, bias) in [("encoder", &m.enc_bias), ("decoder", &m.dec_bias)] {
            let b = bias.as_ref().expect("T5 has a relative bias").bias(12, 12);
            for (h, head) in b.outer_iter().enumerate() {
                let (lo, hi) = head
                    .iter()
                    .fold((f32::MAX, f32::MIN), |(l, u), &v| (l.min(v), u.max(v)));
                assert!(
                    hi - lo > 0.5,
                    "{name} {side} head {h}: bias spans only {lo}..{hi}"
                );
            }
        }
    }
}

#[test]
fn t5_gated_gelu_untied_matches_transformers() {
    check("tiny-t5-gated");
}

#[test]
fn marian_matches_transformers() {
    check("tiny-marian");
}
