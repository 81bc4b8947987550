//! Parity of the Llama-from-GGUF path with transformers (goldens written by scripts/golden/make_llama_fixtures.py):
//! a tiny random Llama (GQA, Q8_0/Q4_1/F16/F32 tensors, llama-bpe pre-tokenizer, BOS added) committed in fixtures/,
//! and the real SmolLM2-135M when models/smollm2.gguf is present (required when ATTN_REQUIRE_MODELS=1).
//!
//! Tolerances: tiny model attention ≤ 1e-4 (max abs), hidden states ≤ 1e-3 relative to the largest value, logits
//! ≤ 1e-3; SmolLM2 attention ≤ 1e-3; token ids and top-5 next tokens identical.

mod common;

use attn::model::{self, Model, TextbookConfig};
use attn::trace::{ForwardOptions, Positional};
use common::{Npy, max_abs_diff, real_model, repo};
use ndarray::{ArrayD, Axis, s};
use std::path::{Path, PathBuf};

fn golden(name: &str) -> Npy {
    Npy::read(&repo().join("fixtures/golden").join(format!("{name}.npy")))
}

fn tiny_path() -> PathBuf {
    repo().join("fixtures/tiny-llama.gguf")
}

fn load(path: &Path) -> Box<dyn Model> {
    model::load(path.to_str().unwrap(), &TextbookConfig::default())
        .unwrap_or_else(|e| panic!("{e}"))
}

fn sentences(name: &str) -> Vec<String> {
    let j: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("fixtures/golden").join(name)).unwrap(),
    )
    .unwrap();
    j["sentences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["text"].as_str().unwrap().to_string())
        .collect()
}

fn stack_attention(trace: &attn::trace::Trace) -> ArrayD<f32> {
    let views: Vec<_> = trace
        .layers
        .iter()
        .map(|l| l.attention.as_ref().unwrap().view())
        .collect();
    ndarray::stack(Axis(0), &views).unwrap().into_dyn()
}

fn check_tokenizer_goldens(m: &dyn Model, file: &str) {
    let j: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("fixtures/golden").join(file)).unwrap(),
    )
    .unwrap();
    let rows = j.as_array().unwrap();
    assert!(rows.len() >= 6);
    for row in rows {
        let text = row["text"].as_str().unwrap();
        let want: Vec<u32> = row["ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as u32)
            .collect();
        let got = m.tokenizer().encode(text, None).unwrap().ids;
        assert_eq!(got, want, "{file}: {} ({text:?})", row["name"]);
    }
}

#[test]
fn tiny_llama_matches_transformers() {
    let m = load(&tiny_path());
    let info = m.info();
    assert_eq!(
        (
            info.n_layers,
            info.n_heads,
            info.n_kv_heads,
            info.d_model,
            info.d_ff
        ),
        (2, 6, 2, 96, 160)
    );
    for (i, text) in sentences("tiny_llama_sentences.json").iter().enumerate() {
        let t = model::run(m.as_ref(), text, None, &ForwardOptions::default()).unwrap();
        let want_ids = golden(&format!("tiny_llama_s{i}_ids")).i64();
        let ids: Vec<i64> = t.tokens.iter().map(|t| t.id as i64).collect();
        assert_eq!(ids, want_ids, "sentence {i} ids");

        let att = stack_attention(&t);
        let want_att = golden(&format!("tiny_llama_s{i}_attn")).f32();
        let err = max_abs_diff(&att, &want_att);
        eprintln!(
            "tiny sentence {i}: {} tokens, attention max abs error {err:e}",
            t.n_tokens()
        );
        assert!(err <= 1e-4, "sentence {i}: attention max abs error {err}");

        let views: Vec<_> = t.hidden.iter().map(|h| h.view()).collect();
        let hidden = ndarray::stack(Axis(0), &views).unwrap().into_dyn();
        let want_hidden = golden(&format!("tiny_llama_s{i}_hidden")).f32();
        let scale = want_hidden.iter().fold(0f32, |a, b| a.max(b.abs()));
        let err = max_abs_diff(&hidden, &want_hidden);
        assert!(
            err <= 1e-3 * scale,
            "sentence {i}: hidden max abs error {err} (scale {scale})"
        );

        // Next tokens at every position: the golden logits' top-5, in order.
        let want_logits = golden(&format!("tiny_llama_s{i}_logits")).f32();
        let next = t.next_tokens.as_ref().unwrap();
        assert_eq!(next.len(), t.n_tokens());
        for (p, top) in next.iter().enumerate() {
            let row = want_logits.slice(s![p, ..]);
            let want: Vec<usize> = attn::numeric::ops::top_k(&row, 5);
            let got: Vec<usize> = top.iter().map(|t| t.id as usize).collect();
            assert_eq!(got, want, "sentence {i} position {p} top-5");
            let max = row.iter().fold(f32::NEG_INFINITY, |a, b| a.max(*b));
            let z: f32 = row.iter().map(|v| (v - max).exp()).sum();
            let p0 = (row[want[0]] - max).exp() / z;
            assert!(
                (top[0].prob - p0).abs() < 1e-4,
                "prob {} vs {p0}",
                top[0].prob
            );
        }

        // Logit lens through the final norm + LM head on every layer's stream.
        let lens = golden(&format!("tiny_llama_s{i}_lens_top5")).i64();
        let n = t.n_tokens();
        for (l, h) in t.hidden.iter().enumerate() {
            let got = m.logit_lens(h, 5).unwrap();
            for (p, top) in got.iter().enumerate() {
                let want = &lens[(l * n + p) * 5..(l * n + p + 1) * 5];
                let ids: Vec<i64> = top.iter().map(|t| t.id as i64).collect();
                assert_eq!(ids, want, "sentence {i} layer {l} position {p} logit lens");
            }
        }
    }
}

#[test]
fn tiny_llama_trace_is_consistent() {
    let m = load(&tiny_path());
    let text = "The cat sat on the mat.";
    let t = model::run(m.as_ref(), text, None, &ForwardOptions::default()).unwrap();
    let n = t.n_tokens();
    assert!(t.tokens[0].special, "BOS first");
    assert_eq!(t.kv_group, vec![0, 0, 0, 1, 1, 1]);
    assert_eq!(t.hidden.len(), 3);
    for (l, lt) in t.layers.iter().enumerate() {
        let a = lt.attention.as_ref().unwrap();
        assert_eq!(a.dim(), (6, n, n));
        for h in 0..6 {
            for q in 0..n {
                let row = a.slice(s![h, q, ..]);
                assert!((row.sum() - 1.0).abs() < 1e-5);
                assert!(row.slice(s![q + 1..]).iter().all(|v| *v == 0.0), "causal");
            }
        }
        // Recomputing from the stream entering the layer gives the same matrix.
        assert_eq!(&m.layer_attention(l, &t.hidden[l]).unwrap(), a);
        // mid = input + attention update; output = mid + ffn update.
        let upd = &lt.mid - &t.hidden[l];
        let norms: Vec<f32> = upd.rows().into_iter().map(|r| r.dot(&r).sqrt()).collect();
        for (a, b) in norms.iter().zip(&lt.attn_update_norm) {
            assert!((a - b).abs() <= 1e-3 * b.max(1.0));
        }
    }
    match &t.positional {
        Positional::Rotary {
            freqs,
            angles,
            head_dim,
        } => {
            assert_eq!(*head_dim, 16);
            assert_eq!(freqs.len(), 8);
            assert_eq!(freqs[0], 1.0);
            assert!((freqs[1] - 10000f32.powf(-2.0 / 16.0)).abs() < 1e-7);
            assert_eq!(angles.dim(), (n, 8));
            assert!((angles[[3, 1]] - 3.0 * freqs[1]).abs() < 1e-6);
        }
        other => panic!("expected rotary, got {}", other.kind()),
    }
    // Without attention kept, the recomputed matrices are the same.
    let lazy = model::run(
        m.as_ref(),
        text,
        None,
        &ForwardOptions {
            keep_attention: false,
            top_k: 0,
            ..Default::default()
        },
    )
    .unwrap();
    assert!(lazy.next_tokens.is_none() && lazy.layers[1].attention.is_none());
    let a = attn::model::layer_attention(m.as_ref(), &lazy, 1).unwrap();
    assert_eq!(Some(&*a), t.layers[1].attention.as_ref());
    // The parameter count is every tensor the model reads: untied embedding + output.
    let v = 420u64;
    let (d, f, kv) = (96u64, 160u64, 32u64);
    let per_layer = 2 * d * d + 2 * d * kv + 3 * d * f + 2 * d;
    assert_eq!(m.info().n_params, 2 * v * d + 2 * per_layer + d);
    let notes = m.info().notes.join("\n");
    assert!(
        notes.contains("Q8_0")
            && notes.contains("Q4_1")
            && notes.contains("F16")
            && notes.contains("F32"),
        "{notes}"
    );
}

#[test]
fn tiny_llama_tokenizer_matches_transformers() {
    let m = load(&tiny_path());
    check_tokenizer_goldens(m.as_ref(), "tiny_llama_tokenizer.json");
}

#[test]
fn smollm2_matches_transformers() {
    let Some(path) = real_model("smollm2.gguf") else {
        return;
    };
    let m = load(&path);
    let info = m.info();
    assert_eq!(
        (info.n_layers, info.n_heads, info.n_kv_heads, info.d_model),
        (30, 9, 3, 576)
    );
    assert!(
        (130_000_000..140_000_000).contains(&info.n_params),
        "{}",
        info.n_params
    );
    assert!(
        info.notes[0].contains("Q4_1 ×210") && info.notes[0].contains("Q8_0 ×1"),
        "{}",
        info.notes[0]
    );
    for (i, text) in sentences("smollm2_sentences.json").iter().enumerate() {
        let t = model::run(m.as_ref(), text, None, &ForwardOptions::default()).unwrap();
        let ids: Vec<i64> = t.tokens.iter().map(|t| t.id as i64).collect();
        assert_eq!(
            ids,
            golden(&format!("smollm2_s{i}_ids")).i64(),
            "sentence {i} ids"
        );
        let err = max_abs_diff(
            &stack_attention(&t),
            &golden(&format!("smollm2_s{i}_attn")).f32(),
        );
        eprintln!(
            "smollm2 sentence {i}: {} tokens, attention max abs error {err:e}",
            t.n_tokens()
        );
        assert!(err <= 1e-3, "sentence {i}: attention max abs error {err}");
        let last = t.next_tokens.as_ref().unwrap().last().unwrap();
        let got: Vec<i64> = last.iter().map(|t| t.id as i64).collect();
        assert_eq!(
            got,
            golden(&format!("smollm2_s{i}_top5")).i64(),
            "sentence {i} top-5 next tokens"
        );
    }
}

#[test]
fn smollm2_tokenizer_matches_transformers() {
    let Some(path) = real_model("smollm2.gguf") else {
        return;
    };
    let g = attn::weights::Gguf::open(&path).unwrap();
    let tok = attn::tokenize::gguf::from_gguf(&g).unwrap();
    let j: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("fixtures/golden/smollm2_tokenizer.json")).unwrap(),
    )
    .unwrap();
    for row in j.as_array().unwrap() {
        let text = row["text"].as_str().unwrap();
        let want: Vec<u32> = row["ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as u32)
            .collect();
        assert_eq!(
            tok.encode(text, None).unwrap().ids,
            want,
            "{} ({text:?})",
            row["name"]
        );
    }
}

fn bad(name: &str) -> String {
    let p = repo().join("fixtures/bad-llama").join(name);
    match model::load(p.to_str().unwrap(), &TextbookConfig::default()) {
        Ok(_) => panic!("{name} loaded but must fail"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn broken_files_are_clear_errors() {
    // The unbroken 1-layer copy loads and runs, so each failure below is the one defect.
    let ok = load(&repo().join("fixtures/bad-llama/ok-1layer.gguf"));
    assert_eq!(ok.info().n_layers, 1);
    assert!(ok.info().notes.iter().any(|n| n.contains("tied")));
    model::run(ok.as_ref(), "hello world", None, &ForwardOptions::default()).unwrap();

    let cases = [
        (
            "tokenizer-model-rwkv.gguf",
            vec!["tokenizer.ggml.model = `rwkv`", "not supported"],
        ),
        (
            "pre-chatglm-bpe.gguf",
            vec!["tokenizer.ggml.pre = `chatglm-bpe` is not supported"],
        ),
        (
            "missing-ffn-up.gguf",
            vec!["blk.0.ffn_up.weight", "missing"],
        ),
        (
            "wrong-shape-attn-k.gguf",
            vec!["blk.0.attn_k.weight", "[16, 96]", "[32, 96]"],
        ),
        (
            "heads-kv-4-of-6.gguf",
            vec!["head_count_kv = 4 does not divide", "head_count = 6"],
        ),
        (
            "heads-7.gguf",
            vec!["head_count = 7 does not divide", "embedding_length = 96"],
        ),
    ];
    for (file, wants) in cases {
        let err = bad(file);
        assert!(
            err.contains(file),
            "{file}: the error names the file: {err}"
        );
        for w in wants {
            assert!(err.contains(w), "{file}: `{err}` lacks `{w}`");
        }
    }
}

#[test]
fn truncated_tiny_file_is_an_error_not_a_panic() {
    let bytes = std::fs::read(tiny_path()).unwrap();
    let full = attn::weights::Gguf::from_bytes(bytes.clone(), "full.gguf").unwrap();
    let data_end = full
        .tensors
        .iter()
        .map(|t| t.offset + t.n_bytes)
        .max()
        .unwrap() as usize;
    for cut in [100, bytes.len() / 3, data_end - 1] {
        let g = attn::weights::Gguf::from_bytes(bytes[..cut].to_vec(), "cut.gguf");
        if let Ok(g) = g {
            assert!(
                attn::model::llama::from_gguf(&g, "cut").is_err(),
                "cut at {cut}"
            );
        }
    }
}

#[test]
fn other_pre_tokenizers_match_transformers() {
    // Tokenizer-only files with the tiny vocabulary and each supported split regex; goldens from transformers.
    let j: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("fixtures/golden/pre_variants_tokenizer.json"))
            .unwrap(),
    )
    .unwrap();
    let mut cache: std::collections::HashMap<String, attn::tokenize::Tokenizer> =
        Default::default();
    let rows = j.as_array().unwrap();
    assert!(rows.len() >= 6 * 6);
    for row in rows {
        let file = row["file"].as_str().unwrap().to_string();
        let tok = cache.entry(file.clone()).or_insert_with(|| {
            let g =
                attn::weights::Gguf::open(&repo().join("fixtures/tokenizers").join(&file)).unwrap();
            attn::tokenize::gguf::from_gguf(&g).unwrap()
        });
        let text = row["text"].as_str().unwrap();
        let want: Vec<u32> = row["ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as u32)
            .collect();
        assert_eq!(
            tok.encode(text, None).unwrap().ids,
            want,
            "{file}: {} ({text:?})",
            row["name"]
        );
    }
}
