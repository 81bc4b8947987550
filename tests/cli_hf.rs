//! The `attn` binary on Hugging Face folders: info, show and dump on the tiny fixtures, and on the real
//! all-MiniLM-L6-v2 when it is fetched (required under ATTN_REQUIRE_MODELS=1).

mod common;

use std::path::Path;
use std::process::{Command, Output};

fn attn(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_attn"))
        .args(args)
        .env("ATTN_MODELS_DIR", common::models_dir())
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

fn ok(args: &[&str]) -> String {
    let out = attn(args);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "attn {args:?} failed: {}{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn fixture(name: &str) -> String {
    common::repo()
        .join("fixtures")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

fn npy_shape(path: &Path) -> Vec<usize> {
    common::Npy::read(path).shape
}

#[test]
fn info_on_the_tiny_fixtures() {
    let bert = ok(&["info", "--model", &fixture("tiny-bert")]);
    assert!(bert.contains("bert (encoder"), "{bert}");
    assert!(bert.contains("learned"), "{bert}");
    let gpt2 = ok(&["info", "--model", &fixture("tiny-gpt2")]);
    assert!(gpt2.contains("gpt2"), "{gpt2}");
    assert!(gpt2.contains("tied to wte"), "{gpt2}");
}

#[test]
fn dump_and_show_a_sentence_pair_and_a_decoder() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("pair");
    let text = ok(&[
        "dump",
        "--model",
        &fixture("tiny-bert"),
        "--text",
        "the cat sat",
        "--text-b",
        "on the mat",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(text.contains("9 tokens"), "{text}");
    assert_eq!(npy_shape(&out.join("attention.npy")), vec![2, 4, 9, 9]);
    assert_eq!(npy_shape(&out.join("hidden.npy")), vec![3, 9, 32]);
    assert_eq!(npy_shape(&out.join("positional.npy")), vec![9, 32]);
    // tokens.json says which sentence each token belongs to: [CLS] the cat sat [SEP] | on the mat [SEP].
    let toks: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("tokens.json")).unwrap()).unwrap();
    let segments: Vec<u64> = toks
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["segment"].as_u64().unwrap())
        .collect();
    assert_eq!(segments, [0, 0, 0, 0, 0, 1, 1, 1, 1]);

    let shown = ok(&[
        "show",
        "--model",
        &fixture("tiny-gpt2"),
        "--text",
        "The cat sat on",
        "--layer",
        "1",
        "--head",
        "3",
        "--color",
        "never",
    ]);
    assert!(shown.contains("Layer 1 of 0–1 · Head 3 of 0–3"), "{shown}");
    assert!(
        shown.contains("next token after the last position"),
        "{shown}"
    );
}

#[test]
fn a_folder_of_an_unknown_type_fails_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("config.json"), r#"{"model_type": "mamba"}"#).unwrap();
    let out = attn(&["info", "--model", tmp.path().to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("`mamba`") && err.contains("bert, gpt2, llama, bart, t5, marian"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn real_minilm_info_dump_and_show() {
    if common::real_model("minilm").is_none() {
        return;
    }
    let info = ok(&["info", "--model", "minilm"]);
    for want in [
        "all-MiniLM-L6-v2",
        "layers        6",
        "heads         12",
        "d_model       384",
        "(22.7M)",
    ] {
        assert!(info.contains(want), "{want} missing from\n{info}");
    }
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("d");
    ok(&[
        "dump",
        "--model",
        "minilm",
        "--text",
        "안녕하세요 🤖 attention",
        "--out",
        out.to_str().unwrap(),
    ]);
    let shape = npy_shape(&out.join("attention.npy"));
    assert_eq!(&shape[..2], &[6, 12]);
    let shown = ok(&[
        "show",
        "--model",
        "minilm",
        "--text",
        "The cat sat.",
        "--layer",
        "5",
        "--head",
        "11",
    ]);
    assert!(
        shown.contains("Layer 5 of 0–5 · Head 11 of 0–11"),
        "{shown}"
    );
    // Too long for 512 positions: a clear error, not a crash.
    let long = "word ".repeat(600);
    let out = attn(&["show", "--model", "minilm", "--text", &long]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("602 tokens") && err.contains("at most 512"),
        "{err}"
    );
}
