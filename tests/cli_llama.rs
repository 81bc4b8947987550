//! `attn info / show / dump` on GGUF files, run as a user would: the tiny fixture always, the real SmolLM2 when
//! models/smollm2.gguf is present (required when ATTN_REQUIRE_MODELS=1).

mod common;

use common::{Npy, real_model, repo};
use std::process::Command;

fn ok(args: &[&str]) -> String {
    let o = Command::new(env!("CARGO_BIN_EXE_attn"))
        .args(args)
        .output()
        .expect("run attn");
    assert!(
        o.status.success(),
        "attn {args:?} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).expect("utf-8 stdout")
}

fn check(model: &str, layers: usize, heads: usize, kv: usize, d: usize, info_wants: &[&str]) {
    let info = ok(&["info", "--model", model]);
    for w in info_wants {
        assert!(info.contains(w), "info lacks {w:?}:\n{info}");
    }
    assert!(
        info.contains(&format!("{heads} query / {kv} key-value")),
        "{info}"
    );
    assert!(info.contains(&format!("d_model       {d}")), "{info}");

    let show = ok(&[
        "show",
        "--model",
        model,
        "--text",
        "안녕 🤖 hello",
        "--layer",
        "1",
        "--head",
        "4",
        "--color",
        "never",
    ]);
    assert!(
        show.contains("Layer 1 of 0–") && show.contains("Head 4 of 0–"),
        "{show}"
    );
    assert!(show.contains("KV head 1, shared by query heads"), "{show}");
    assert!(
        show.contains("next token after the last position"),
        "{show}"
    );

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("dump");
    ok(&[
        "dump",
        "--model",
        model,
        "--text",
        "The cat sat.",
        "--out",
        out.to_str().unwrap(),
    ]);
    let att = Npy::read(&out.join("attention.npy"));
    assert_eq!(att.shape.len(), 4);
    assert_eq!(&att.shape[..2], &[layers, heads]);
    let n = att.shape[2];
    let a = att.f32();
    for l in 0..layers {
        for h in 0..heads {
            for q in 0..n {
                let row: Vec<f32> = (0..n).map(|k| a[[l, h, q, k]]).collect();
                assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-4);
                assert!(row[q + 1..].iter().all(|v| *v == 0.0), "causal");
            }
        }
    }
    let pos = Npy::read(&out.join("positional.npy"));
    assert_eq!(
        pos.shape,
        vec![n, d / heads / 2],
        "RoPE angles [n, head_dim/2]"
    );
}

#[test]
fn tiny_gguf_info_show_dump() {
    let p = repo().join("fixtures/tiny-llama.gguf");
    check(
        p.to_str().unwrap(),
        2,
        6,
        2,
        96,
        &[
            "layers        2",
            "Q8_0",
            "Q4_1",
            "F16",
            "llama-bpe",
            "rotary",
        ],
    );
}

#[test]
fn smollm2_info_show_dump() {
    let Some(p) = real_model("smollm2.gguf") else {
        return;
    };
    check(
        p.to_str().unwrap(),
        30,
        9,
        3,
        576,
        &[
            "layers        30",
            "134.5M",
            "Q4_1 ×210",
            "Q8_0 ×1",
            "F32 ×61",
            "tied",
            "smollm",
        ],
    );
}
