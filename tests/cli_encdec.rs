//! `attn generate` and `attn dump --target` for encoder–decoder models, run as a user would.

mod common;

use common::{Npy, max_abs_diff, repo};

use common::{attn_without_models as attn, attn_without_models_ok as ok};

#[test]
fn generate_translates_a_date_as_text_and_json() {
    let out = ok(&[
        "generate",
        "--model",
        "textbook-dates",
        "--text",
        "22 November 2026",
    ]);
    assert_eq!(out, "2026년 11월 22일\n");
    let out = ok(&[
        "generate",
        "--model",
        "textbook-dates",
        "--text",
        "February 29, 2000",
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["text"], "2000년 2월 29일");
    let gold = Npy::read(&repo().join("fixtures/golden/textbook-dates/feb29_greedy_ids.npy")).i64();
    let ids: Vec<i64> = v["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_i64().unwrap())
        .collect();
    assert_eq!(
        ids, gold,
        "generated ids (no start token, EOS last) as in PyTorch"
    );
}

#[test]
fn dump_with_target_writes_the_encoder_decoder_contract() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("d");
    ok(&[
        "dump",
        "--model",
        "textbook-dates",
        "--text",
        "22 November 2026",
        "--target",
        "2026년 11월 22일",
        "--out",
        out.to_str().unwrap(),
    ]);
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("meta.json")).unwrap()).unwrap();
    assert_eq!(meta["kind"], "encoder-decoder");
    let gold = |w: &str| {
        Npy::read(&repo().join(format!("fixtures/golden/textbook-dates/nov22_{w}.npy"))).f32()
    };
    for (file, golden) in [
        ("attention.npy", "encoder_attention"),
        ("decoder_attention.npy", "decoder_attention"),
        ("cross_attention.npy", "cross_attention"),
        ("hidden.npy", "encoder_hidden"),
        ("decoder_hidden.npy", "decoder_hidden"),
        ("logits.npy", "logits"),
    ] {
        let ours = Npy::read(&out.join(file)).f32();
        let diff = max_abs_diff(&ours, &gold(golden));
        assert!(diff < 1e-4, "{file}: max |Δ| {diff}");
    }
    let toks: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("target_tokens.json")).unwrap())
            .unwrap();
    let ids: Vec<i64> = toks
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_i64().unwrap())
        .collect();
    let want = Npy::read(&repo().join("fixtures/golden/textbook-dates/nov22_tgt_in_ids.npy")).i64();
    assert_eq!(ids, want, "decoder input = shift_tokens_right(target ids)");
    assert_eq!(toks[0]["text"], "<s>");
}

#[test]
fn dump_without_target_uses_the_greedy_output() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("d");
    ok(&[
        "dump",
        "--model",
        "textbook-dates",
        "--text",
        "May 1, 1999",
        "--out",
        out.to_str().unwrap(),
    ]);
    let toks: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("target_tokens.json")).unwrap())
            .unwrap();
    let text: String = toks.as_array().unwrap()[1..]
        .iter()
        .map(|t| t["text"].as_str().unwrap())
        .collect();
    assert_eq!(text, "1999년 5월 1일</s>");
    let cross = Npy::read(&out.join("cross_attention.npy"));
    assert_eq!(cross.shape, vec![2, 4, 13, 8]);
}

#[test]
fn random_textbook_encoder_decoder_has_the_requested_stacks() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("d");
    ok(&[
        "dump",
        "--model",
        "textbook",
        "--encoder-decoder",
        "--encoder-layers",
        "2",
        "--decoder-layers",
        "3",
        "--heads",
        "4",
        "--d-model",
        "32",
        "--d-ff",
        "64",
        "--text",
        "the cat sat",
        "--target",
        "le chat",
        "--out",
        out.to_str().unwrap(),
    ]);
    let enc = Npy::read(&out.join("attention.npy"));
    let dec = Npy::read(&out.join("decoder_attention.npy"));
    let cross = Npy::read(&out.join("cross_attention.npy")).f32();
    assert_eq!(enc.shape, vec![2, 4, 5, 5]); // [CLS] the cat sat [SEP]
    assert_eq!(dec.shape[..2], [3, 4]);
    assert_eq!(cross.shape()[3], 5);
    // Decoder self-attention is causal; cross-attention rows sum to 1 over the source.
    let d = dec.f32();
    assert_eq!(d[[0, 0, 0, 1]], 0.0);
    for l in 0..3 {
        let s: f32 = (0..5).map(|j| cross[[l, 1, 2, j]]).sum();
        assert!((s - 1.0).abs() < 1e-5);
    }
}

#[test]
fn errors_name_the_problem() {
    let o = attn(&["generate", "--model", "textbook", "--text", "x"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("needs a decoder or an encoder–decoder"));
    let o = attn(&[
        "dump",
        "--model",
        "textbook",
        "--text",
        "x",
        "--target",
        "y",
        "--out",
        "/tmp/never-made-attn",
    ]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("--target is for encoder–decoder models"));
}
