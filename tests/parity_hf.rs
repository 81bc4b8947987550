//! Parity with transformers (eager attention, float32) for models loaded from Hugging Face folders.
//!
//! The fixtures come from `scripts/golden/make_hf_fixtures.py`: tiny random BERT and GPT-2 models with their own
//! tokenizers in `fixtures/tiny-*`, and transformers' outputs in `fixtures/golden/<model>/`. The real
//! all-MiniLM-L6-v2 is compared when `models/minilm` exists (required under ATTN_REQUIRE_MODELS=1).
//!
//! Tolerances: attention probabilities max |Δ| ≤ 1e-5; hidden states max |Δ| ≤ 1e-4 × max |reference| per layer;
//! token ids exactly equal.

mod common;

use attn::model::embed::TokenTable;
use attn::model::{self, Model, TextbookConfig};
use attn::numeric::Matrix;
use attn::trace::{ForwardOptions, Trace};
use common::{Npy, max_abs_diff};
use ndarray::{ArrayD, Axis, s};
use std::path::{Path, PathBuf};

const ATT_TOL: f32 = 1e-5;
const HIDDEN_REL_TOL: f32 = 1e-4;

struct Case {
    name: String,
    text: String,
    text_b: Option<String>,
}

fn cases(golden: &Path) -> Vec<Case> {
    let text = std::fs::read_to_string(golden.join("cases.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .map(|c| Case {
            name: c["name"].as_str().unwrap().to_string(),
            text: c["text"].as_str().unwrap().to_string(),
            text_b: c.get("text_b").and_then(|b| b.as_str()).map(str::to_string),
        })
        .collect()
}

fn load(dir: &Path) -> Box<dyn Model> {
    model::load(dir.to_str().unwrap(), &TextbookConfig::default())
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
}

fn npy(golden: &Path, case: &str, what: &str) -> Npy {
    Npy::read(&golden.join(format!("{case}_{what}.npy")))
}

fn stack_attention(t: &Trace) -> ArrayD<f32> {
    let views: Vec<_> = t
        .layers
        .iter()
        .map(|l| l.attention.as_ref().expect("attention kept").view())
        .collect();
    ndarray::stack(Axis(0), &views).unwrap().into_dyn()
}

/// Compare one trace with transformers' outputs; returns (max attention |Δ|, max relative hidden |Δ|).
fn compare(label: &str, t: &Trace, golden: &Path, case: &Case, decoder: bool) -> (f32, f32) {
    let ids: Vec<i64> = t.tokens.iter().map(|x| x.id as i64).collect();
    assert_eq!(
        ids,
        npy(golden, &case.name, "ids").i64(),
        "{label}: token ids differ"
    );
    let types: Vec<i64> = t.tokens.iter().map(|x| x.type_id as i64).collect();
    assert_eq!(
        types,
        npy(golden, &case.name, "type_ids").i64(),
        "{label}: token type ids differ"
    );

    let want_att = npy(golden, &case.name, "attentions").f32();
    let got_att = stack_attention(t);
    let att_err = max_abs_diff(&got_att, &want_att);
    assert!(
        att_err <= ATT_TOL,
        "{label}: attention max |Δ| {att_err:e} > {ATT_TOL:e}"
    );

    let want_hidden = npy(golden, &case.name, "hidden").f32();
    assert_eq!(
        want_hidden.shape()[0],
        t.hidden.len(),
        "{label}: number of hidden states"
    );
    let mut worst = 0.0f32;
    for (l, got) in t.hidden.iter().enumerate() {
        let want = want_hidden.index_axis(Axis(0), l).to_owned();
        let scale = want.iter().fold(0.0f32, |m, v| m.max(v.abs())).max(1e-6);
        let rel = max_abs_diff(&got.clone().into_dyn(), &want) / scale;
        worst = worst.max(rel);
        assert!(
            rel <= HIDDEN_REL_TOL,
            "{label}: hidden[{l}] relative |Δ| {rel:e} > {HIDDEN_REL_TOL:e}{}",
            if decoder && l + 1 == t.hidden.len() {
                " (hidden[L] is the raw stream, before ln_f)"
            } else {
                ""
            }
        );
    }
    // The positional signal is the learned rows that were added: one per token.
    assert_eq!(t.positional.kind(), attn::trace::PositionalKind::Learned);
    assert_eq!(t.positional.matrix().dim(), (t.n_tokens(), t.d_model()));
    (att_err, worst)
}

fn softmax(row: &[f32]) -> Vec<f64> {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let e: Vec<f64> = row.iter().map(|v| (*v as f64 - max).exp()).collect();
    let s: f64 = e.iter().sum();
    e.into_iter().map(|v| v / s).collect()
}

fn fixture(name: &str) -> (PathBuf, PathBuf) {
    let repo = common::repo();
    (
        repo.join("fixtures").join(name),
        repo.join("fixtures/golden").join(name),
    )
}

#[test]
fn tiny_bert_matches_transformers() {
    tiny_bert_matches("tiny-bert");
}

/// The same BERT saved in F16: its matrices and token table stay F16 in memory and the numbers are transformers'
/// on the upcast weights.
#[test]
fn tiny_bert_in_f16_matches_transformers_and_stays_f16() {
    tiny_bert_matches("tiny-bert-f16");
    let m = load(&fixture("tiny-bert-f16").0);
    let e = m.engine();
    assert!(matches!(e.stack.blocks[0].attn.q.w, Matrix::Quant(_)));
    assert!(matches!(e.embed.token, TokenTable::Quant(_)));
    assert!(
        m.info()
            .notes
            .iter()
            .any(|n| n.contains("stay in their dtype"))
    );
}

fn tiny_bert_matches(name: &str) {
    let (dir, golden) = fixture(name);
    let m = load(&dir);
    assert_eq!(m.info().arch, attn::model::Arch::Bert);
    assert_eq!(
        (m.info().n_layers, m.info().n_heads, m.info().d_model),
        (2, 4, 32)
    );
    assert!(!m.info().causal);
    let all = cases(&golden);
    assert!(
        all.iter().any(|c| c.text_b.is_some()),
        "a sentence pair is covered"
    );
    for case in &all {
        let t = model::run(
            m.as_ref(),
            &case.text,
            case.text_b.as_deref(),
            &ForwardOptions::default(),
        )
        .unwrap();
        let (a, h) = compare(&format!("{name}/{}", case.name), &t, &golden, case, false);
        eprintln!("{name}/{}: attention {a:e}, hidden {h:e}", case.name);
        assert!(
            t.next_tokens.is_none(),
            "an encoder has no next-token prediction"
        );
        if case.text_b.is_some() {
            assert!(t.tokens.iter().any(|x| x.type_id == 1));
            assert_eq!(t.tokens.last().unwrap().type_id, 1);
        }
        // Recomputing a layer's attention from the residual stream gives the recorded matrix.
        for l in 0..t.n_layers() {
            let again = m.layer_attention(l, &t.hidden[l]).unwrap();
            assert_eq!(Some(&again), t.layers[l].attention.as_ref());
        }
    }
}

#[test]
fn tiny_gpt2_matches_transformers_and_its_logits() {
    tiny_gpt2_matches("tiny-gpt2");
}

/// The same GPT-2 saved in BF16: the token table and the tied LM head stay BF16 (one copy, shared), and so do the
/// blocks' matrices.
#[test]
fn tiny_gpt2_in_bf16_matches_transformers_and_stays_bf16() {
    tiny_gpt2_matches("tiny-gpt2-bf16");
    let m = load(&fixture("tiny-gpt2-bf16").0);
    let e = m.engine();
    assert!(matches!(e.embed.token, TokenTable::Quant(_)));
    assert!(matches!(e.head.as_ref().unwrap().unembed, Matrix::Quant(_)));
    // The Conv1D matrices (stored [in, out]) are transposed into BF16 copies, c_attn split into Q, K, V.
    let b = &e.stack.blocks[1];
    for w in [&b.attn.q.w, &b.attn.v.w, &b.attn.o.w] {
        assert!(matches!(w, Matrix::Quant(_)));
    }
    let attn::model::block::Mlp::Plain { up, down, .. } = &b.mlp else {
        panic!("GPT-2's MLP is plain");
    };
    assert!(matches!(
        (&up.w, &down.w),
        (Matrix::Quant(_), Matrix::Quant(_))
    ));
}

fn tiny_gpt2_matches(name: &str) {
    let (dir, golden) = fixture(name);
    let m = load(&dir);
    let info = m.info();
    assert_eq!(info.arch, attn::model::Arch::Gpt2);
    assert!(info.causal);
    let vocab = info.vocab_size;
    for case in &cases(&golden) {
        let label = format!("{name}/{}", case.name);
        // Ask for the whole distribution: every probability can then be checked against transformers' logits.
        let opts = ForwardOptions {
            keep_attention: true,
            top_k: vocab,
            ..Default::default()
        };
        let t = model::run(m.as_ref(), &case.text, None, &opts).unwrap();
        let (a, h) = compare(&label, &t, &golden, case, true);
        eprintln!("{label}: attention {a:e}, hidden {h:e}");
        // Causal: nothing above the diagonal.
        for lt in &t.layers {
            let att = lt.attention.as_ref().unwrap();
            for i in 0..t.n_tokens() {
                assert_eq!(
                    att.slice(s![.., i, i + 1..]).sum(),
                    0.0,
                    "{label}: causal mask"
                );
            }
        }
        let logits = npy(&golden, &case.name, "logits").f32();
        let next = t
            .next_tokens
            .as_ref()
            .expect("a decoder records next tokens");
        assert_eq!(next.len(), t.n_tokens());
        for (pos, top) in next.iter().enumerate() {
            let row: Vec<f32> = logits.slice(s![pos, ..]).iter().copied().collect();
            let p = softmax(&row);
            assert_eq!(top.len(), vocab);
            let mut order: Vec<usize> = (0..vocab).collect();
            order.sort_by(|x, y| row[*y].total_cmp(&row[*x]));
            let got: Vec<usize> = top.iter().take(5).map(|x| x.id as usize).collect();
            assert_eq!(got, order[..5], "{label}: top-5 next tokens at {pos}");
            for tok in top {
                let want = p[tok.id as usize] as f32;
                assert!(
                    (tok.prob - want).abs() <= 1e-5,
                    "{label}: P(token {}) at {pos} is {} vs {want}",
                    tok.id,
                    tok.prob
                );
            }
            for w in top.windows(2) {
                assert!(w[0].prob >= w[1].prob, "{label}: top-k sorted");
            }
        }
        // The logit lens on the last layer's stream is exactly the recorded next-token prediction.
        let lens = m.logit_lens(&t.hidden[t.n_layers()], vocab).unwrap();
        assert_eq!(&lens, next);
        // hidden[0] = wte[id] + wpe[pos]: equal ids give equal rows once the position rows are removed.
        let pos = t.positional.matrix();
        let emb0 = &t.hidden[0] - pos;
        for i in 0..t.n_tokens() {
            for j in i + 1..t.n_tokens() {
                if t.tokens[i].id == t.tokens[j].id {
                    let d = (&emb0.row(i) - &emb0.row(j)).mapv(f32::abs).sum();
                    assert!(d < 1e-5, "{label}: rows {i} and {j}");
                }
            }
        }
    }
}

#[test]
fn real_minilm_matches_transformers() {
    let Some(dir) = common::real_model("minilm") else {
        return;
    };
    let m = load(&dir);
    let info = m.info();
    assert_eq!((info.n_layers, info.n_heads, info.d_model), (6, 12, 384));
    assert!(
        (info.n_params as f64 / 1e6 - 22.7).abs() < 0.05,
        "{}",
        info.n_params
    );
    let golden = common::repo().join("fixtures/golden/minilm");
    let all = cases(&golden);
    assert_eq!(all.len(), 3);
    for case in &all {
        let t = model::run(m.as_ref(), &case.text, None, &ForwardOptions::default()).unwrap();
        let (a, h) = compare(&format!("minilm/{}", case.name), &t, &golden, case, false);
        eprintln!(
            "minilm/{}: {} tokens, attention {a:e}, hidden {h:e}",
            case.name,
            t.n_tokens()
        );
    }
}

#[test]
fn shapes_of_golden_files_are_sane() {
    // Guards the fixtures themselves: a regenerated set with other sizes must update the tests knowingly.
    let (_, golden) = fixture("tiny-bert");
    let att = npy(&golden, "cat", "attentions").f32();
    assert_eq!(att.ndim(), 4);
    assert_eq!(&att.shape()[..2], &[2, 4]);
    let h = npy(&golden, "cat", "hidden").f32();
    assert_eq!(h.shape()[0], 3);
    assert_eq!(h.shape()[2], 32);
}
