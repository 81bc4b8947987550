//! Parity of Llama from Hugging Face folders with transformers (goldens written by
//! scripts/golden/make_llama_hf_fixtures.py): a tiny random LlamaForCausalLM with grouped-query attention and an
//! untied head saved in F32, and one with a tied head saved in BF16 (kept BF16 in memory).
//!
//! Tolerances: attention max |Δ| ≤ 1e-5; hidden states ≤ 1e-4 relative to the layer's largest value; every
//! next-token probability ≤ 1e-5; token ids and the top-5 order identical.

mod common;

use attn::model::embed::TokenTable;
use attn::model::{self, Model, TextbookConfig};
use attn::numeric::Matrix;
use attn::trace::ForwardOptions;
use common::{Npy, max_abs_diff, read_json, repo};
use ndarray::{Axis, s};

fn check(folder: &str) -> Box<dyn Model> {
    let dir = repo().join("fixtures").join(folder);
    let golden = repo().join("fixtures/golden").join(folder);
    let m = model::load(dir.to_str().unwrap(), &TextbookConfig::default())
        .unwrap_or_else(|e| panic!("{folder}: {e}"));
    assert_eq!(m.info().arch, model::Arch::Llama);
    assert_eq!((m.info().n_heads, m.info().n_kv_heads), (4, 2));
    let vocab = m.info().vocab_size;
    let cases = read_json(&golden.join("cases.json"));
    for case in cases.as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let npy = |what: &str| Npy::read(&golden.join(format!("{name}_{what}.npy")));
        let opts = ForwardOptions {
            keep_attention: true,
            top_k: vocab,
            ..Default::default()
        };
        let t = model::run(m.as_ref(), case["text"].as_str().unwrap(), None, &opts).unwrap();
        let ids: Vec<i64> = t.tokens.iter().map(|x| x.id as i64).collect();
        assert_eq!(ids, npy("ids").i64(), "{folder}/{name}: token ids");
        let views: Vec<_> = t
            .layers
            .iter()
            .map(|l| l.attention.as_ref().unwrap().view())
            .collect();
        let att = ndarray::stack(Axis(0), &views).unwrap().into_dyn();
        let err = max_abs_diff(&att, &npy("attentions").f32());
        assert!(err <= 1e-5, "{folder}/{name}: attention max |Δ| {err:e}");
        let want_hidden = npy("hidden").f32();
        assert_eq!(want_hidden.shape()[0], t.hidden.len());
        for (l, got) in t.hidden.iter().enumerate() {
            let want = want_hidden.index_axis(Axis(0), l).to_owned();
            let scale = want.iter().fold(0.0f32, |a, v| a.max(v.abs()));
            let rel = max_abs_diff(&got.clone().into_dyn(), &want) / scale;
            assert!(
                rel <= 1e-4,
                "{folder}/{name}: hidden[{l}] relative |Δ| {rel:e}"
            );
        }
        let logits = npy("logits").f32();
        let next = t.next_tokens.as_ref().unwrap();
        for (pos, top) in next.iter().enumerate() {
            let row: Vec<f64> = logits
                .slice(s![pos, ..])
                .iter()
                .map(|v| *v as f64)
                .collect();
            let max = row.iter().cloned().fold(f64::MIN, f64::max);
            let z: f64 = row.iter().map(|v| (v - max).exp()).sum();
            let mut order: Vec<usize> = (0..vocab).collect();
            order.sort_by(|a, b| row[*b].total_cmp(&row[*a]));
            let got: Vec<usize> = top.iter().take(5).map(|x| x.id as usize).collect();
            assert_eq!(got, order[..5], "{folder}/{name}: top-5 at {pos}");
            for tok in top {
                let want = ((row[tok.id as usize] - max).exp() / z) as f32;
                assert!(
                    (tok.prob - want).abs() <= 1e-5,
                    "{folder}/{name}: P({}) at {pos}: {} vs {want}",
                    tok.id,
                    tok.prob
                );
            }
        }
        eprintln!(
            "{folder}/{name}: {} tokens, attention {err:e}",
            t.n_tokens()
        );
    }
    m
}

#[test]
fn tiny_llama_folder_matches_transformers() {
    let m = check("tiny-llama-hf");
    assert!(!m.engine().head.as_ref().unwrap().tied);
}

#[test]
fn tiny_llama_folder_in_bf16_matches_transformers_and_stays_bf16() {
    let m = check("tiny-llama-hf-bf16");
    let e = m.engine();
    assert!(e.head.as_ref().unwrap().tied);
    assert!(matches!(e.embed.token, TokenTable::Quant(_)));
    assert!(matches!(e.head.as_ref().unwrap().unembed, Matrix::Quant(_)));
    let attn::model::block::Mlp::Gated { gate, .. } = &e.stack.blocks[1].mlp else {
        panic!("Llama's MLP is gated");
    };
    assert!(matches!(gate.w, Matrix::Quant(_)));
}

#[test]
fn unsupported_llama_configs_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let src = repo().join("fixtures/tiny-llama-hf");
    for f in ["model.safetensors", "tokenizer.json"] {
        std::fs::copy(src.join(f), dir.path().join(f)).unwrap();
    }
    let base = read_json(&src.join("config.json"));
    for (key, value, want) in [
        (
            "rope_scaling",
            serde_json::json!({"rope_type": "llama3", "factor": 8.0}),
            "rope_scaling",
        ),
        ("attention_bias", serde_json::json!(true), "attention_bias"),
        ("hidden_act", serde_json::json!("gelu"), "hidden_act"),
        (
            "num_key_value_heads",
            serde_json::json!(3),
            "num_key_value_heads",
        ),
        ("head_dim", serde_json::json!(16), "head_dim"),
        (
            "num_attention_heads",
            serde_json::json!(0),
            "num_attention_heads",
        ),
        ("rms_norm_eps", serde_json::json!(-1.0), "rms_norm_eps"),
    ] {
        let mut cfg = base.clone();
        cfg[key] = value;
        std::fs::write(dir.path().join("config.json"), cfg.to_string()).unwrap();
        let e = model::load(dir.path().to_str().unwrap(), &TextbookConfig::default())
            .err()
            .unwrap_or_else(|| panic!("{key} must be refused"))
            .to_string();
        assert!(e.contains(want) && e.contains("config.json"), "{key}: {e}");
    }
}
