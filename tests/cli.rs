//! The headless command line, run as a user would: `attn dump`, `attn show`, `attn info`, and their errors.

mod common;

use common::Npy;
use ndarray::{Array2, Axis, Ix2, Ix3, Ix4, s};
use std::path::Path;
use std::process::{Command, Output};

/// A small textbook model so the tests stay fast.
const SMALL: &[&str] = &[
    "--model",
    "textbook",
    "--layers",
    "2",
    "--heads",
    "4",
    "--d-model",
    "64",
    "--d-ff",
    "128",
];

fn attn(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_attn"))
        .args(args)
        .env("ATTN_MODELS_DIR", "/nonexistent-attn-models")
        .env_remove("NO_COLOR")
        .output()
        .expect("run attn")
}

fn ok(args: &[&str]) -> String {
    let o = attn(args);
    assert!(
        o.status.success(),
        "attn {args:?} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).expect("utf-8 stdout")
}

fn fails(args: &[&str]) -> String {
    let o = attn(args);
    assert!(!o.status.success(), "attn {args:?} should fail");
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(!err.contains("panicked"), "{err}");
    err
}

fn dump(out: &Path, text: &str, extra: &[&str]) -> Output {
    let mut args: Vec<&str> = vec!["dump"];
    args.extend_from_slice(SMALL);
    let out_s = out.to_str().unwrap();
    args.extend_from_slice(&["--text", text, "--out", out_s]);
    args.extend_from_slice(extra);
    attn(&args)
}

#[test]
fn dump_writes_every_file_with_the_right_shape_and_content() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let o = dump(&out, "I love AI", &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    // tokens.json: [CLS] i love ai [SEP] with ids and byte offsets.
    let toks: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("tokens.json")).unwrap()).unwrap();
    let toks = toks.as_array().unwrap();
    assert_eq!(toks.len(), 5);
    assert_eq!(
        toks[0],
        serde_json::json!({"index": 0, "id": 101, "text": "[CLS]", "label": "[CLS]", "segment": 0, "start": 0, "end": 0})
    );
    assert_eq!(
        toks[2],
        serde_json::json!({"index": 2, "id": 2293, "text": "love", "label": "love", "segment": 0, "start": 2, "end": 6})
    );
    let n = 5;

    // attention.npy: [layers, heads, n, n], rows sum to 1.
    let att = Npy::read(&out.join("attention.npy"));
    assert_eq!(att.descr, "<f4");
    assert_eq!(att.shape, vec![2, 4, n, n]);
    let att = att.f32().into_dimensionality::<Ix4>().unwrap();
    for row in att.lanes(Axis(3)) {
        assert!((row.sum() - 1.0).abs() < 1e-5);
    }

    // positional.npy: the sinusoidal formula.
    let pos = Npy::read(&out.join("positional.npy"))
        .f32()
        .into_dimensionality::<Ix2>()
        .unwrap();
    assert_eq!(pos.dim(), (n, 64));
    for p in 0..n {
        for i in (0..64).step_by(2) {
            let angle = p as f64 / 10000f64.powf(i as f64 / 64.0);
            assert!((pos[[p, i]] as f64 - angle.sin()).abs() < 1e-6);
            assert!((pos[[p, i + 1]] as f64 - angle.cos()).abs() < 1e-6);
        }
    }

    // hidden.npy: [layers+1, n, d]; post-LN block outputs have zero mean per token.
    let hid = Npy::read(&out.join("hidden.npy"))
        .f32()
        .into_dimensionality::<Ix3>()
        .unwrap();
    assert_eq!(hid.dim(), (3, n, 64));
    for t in 0..n {
        assert!(hid.slice(s![2, t, ..]).mean().unwrap().abs() < 1e-5);
    }

    // residual_norms.csv: one row per (layer, token), norms equal those of hidden.npy.
    let csv = std::fs::read_to_string(out.join("residual_norms.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "layer,token_index,token,resid_in_norm,resid_out_norm,attn_update_norm,ffn_update_norm"
    );
    assert_eq!(lines.len(), 1 + 2 * n);
    for line in &lines[1..] {
        let f: Vec<&str> = line.split(',').collect();
        let (l, t): (usize, usize) = (f[0].parse().unwrap(), f[1].parse().unwrap());
        let norm = |layer: usize| hid.slice(s![layer, t, ..]).mapv(|v| v * v).sum().sqrt();
        assert!(
            (f[3].parse::<f32>().unwrap() - norm(l)).abs() < 1e-3,
            "{line}"
        );
        assert!(
            (f[4].parse::<f32>().unwrap() - norm(l + 1)).abs() < 1e-3,
            "{line}"
        );
        assert!(f[5].parse::<f32>().unwrap() > 0.0 && f[6].parse::<f32>().unwrap() > 0.0);
    }

    // meta.json
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("meta.json")).unwrap()).unwrap();
    assert_eq!(meta["architecture"], "textbook");
    assert_eq!(meta["layers"], 2);
    assert_eq!(meta["heads"], 4);
    assert_eq!(meta["d_model"], 64);
    assert_eq!(meta["vocab_size"], 30522);
    assert_eq!(meta["text"], "I love AI");
    assert_eq!(meta["n_tokens"], n);
    assert_eq!(meta["attn_version"], env!("CARGO_PKG_VERSION"));

    // Nothing else is left behind (no staging directory).
    let mut names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "attention.npy",
            "hidden.npy",
            "meta.json",
            "positional.npy",
            "residual_norms.csv",
            "tokens.json"
        ]
    );
}

#[test]
fn captured_tensors_count_against_the_memory_budget() {
    let dir = tempfile::tempdir().unwrap();
    let text = vec!["cat"; 198].join(" ");
    let (plain, qkv) = (dir.path().join("plain"), dir.path().join("qkv"));
    let o = dump(&plain, &text, &["--mem-budget", "1400K"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // q, k, v and z of every layer need ~0.4 MiB more: the same budget refuses, naming them, and writes nothing.
    let o = dump(&qkv, &text, &["--mem-budget", "1400K", "--qkv"]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("captured tensors"), "{err}");
    assert!(!qkv.exists());
}

#[test]
fn csv_dump_prints_a_summary_and_labels_tell_duplicates_apart() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("csv");
    let o = dump(&out, "the cat saw the cat", &["--format", "csv"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let stdout = String::from_utf8(o.stdout).unwrap();
    // One line for the folder of 8 CSV files, not one per file.
    assert_eq!(stdout.matches("wrote ").count(), 6, "{stdout}");
    assert!(
        stdout.contains("attention/ (8 files: layer00_head00.csv … layer01_head03.csv)"),
        "{stdout}"
    );
    // Repeated labels carry their position, in the CSV header and in tokens.json.
    let csv = std::fs::read_to_string(out.join("attention/layer00_head00.csv")).unwrap();
    assert_eq!(
        csv.lines().next().unwrap(),
        "query\\key,[CLS],the#1,cat#2,saw,the#4,cat#5,[SEP]"
    );
    let toks: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("tokens.json")).unwrap()).unwrap();
    let field = |f: &str| -> Vec<serde_json::Value> {
        toks.as_array()
            .unwrap()
            .iter()
            .map(|t| t[f].clone())
            .collect()
    };
    assert_eq!(field("label")[5], "cat#5");
    assert_eq!(field("text")[5], "cat");
}

#[test]
fn csv_and_json_formats_hold_the_same_matrices() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, c) = (
        dir.path().join("npy"),
        dir.path().join("csv"),
        dir.path().join("json"),
    );
    assert!(dump(&a, "the cat sat", &[]).status.success());
    assert!(
        dump(&b, "the cat sat", &["--format", "csv"])
            .status
            .success()
    );
    assert!(
        dump(&c, "the cat sat", &["--format", "json"])
            .status
            .success()
    );
    let att = Npy::read(&a.join("attention.npy"))
        .f32()
        .into_dimensionality::<Ix4>()
        .unwrap();
    let n = att.dim().2;

    let files = std::fs::read_dir(b.join("attention")).unwrap().count();
    assert_eq!(files, 2 * 4);
    let csv = std::fs::read_to_string(b.join("attention/layer01_head02.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "query\\key,[CLS],the,cat,sat,[SEP]");
    assert_eq!(lines.len(), n + 1);
    for (i, line) in lines[1..].iter().enumerate() {
        let f: Vec<&str> = line.split(',').collect();
        assert_eq!(f.len(), n + 1);
        for j in 0..n {
            assert_eq!(f[j + 1].parse::<f32>().unwrap(), att[[1, 2, i, j]]);
        }
    }

    let doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(c.join("attention.json")).unwrap()).unwrap();
    assert_eq!(doc["shape"], serde_json::json!([2, 4, n, n]));
    assert_eq!(doc["tokens"][1], "the");
    assert_eq!(
        doc["attention"][1][3][2][0].as_f64().unwrap() as f32,
        att[[1, 3, 2, 0]]
    );
}

#[test]
fn existing_files_are_never_overwritten_without_force() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    assert!(dump(&out, "first text", &[]).status.success());
    let before = std::fs::read(out.join("attention.npy")).unwrap();
    let o = dump(&out, "a different second text", &[]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("already exists") && err.contains("--force"),
        "{err}"
    );
    assert_eq!(std::fs::read(out.join("attention.npy")).unwrap(), before);
    let meta = std::fs::read_to_string(out.join("meta.json")).unwrap();
    assert!(meta.contains("first text"));
    // Only one file in the way is enough to refuse the whole dump.
    let other = dir.path().join("other");
    std::fs::create_dir(&other).unwrap();
    std::fs::write(other.join("meta.json"), "mine").unwrap();
    assert!(!dump(&other, "x y", &[]).status.success());
    assert_eq!(
        std::fs::read_to_string(other.join("meta.json")).unwrap(),
        "mine"
    );
    assert_eq!(std::fs::read_dir(&other).unwrap().count(), 1);

    let o = dump(&out, "a different second text", &["--force"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_ne!(std::fs::read(out.join("attention.npy")).unwrap(), before);
}

#[test]
fn bad_output_directories_are_clear_errors_and_leave_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no/such/dir");
    let o = dump(&missing, "hello", &[]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("does not exist") && err.contains("no/such"),
        "{err}"
    );
    assert!(!dir.path().join("no").exists());

    let file = dir.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let err = String::from_utf8_lossy(&dump(&file, "hello", &[]).stderr).to_string();
    assert!(
        err.contains("not a directory") && err.contains("a-file"),
        "{err}"
    );

    // /proc does not allow creating directories, even for root.
    let err = String::from_utf8_lossy(&dump(Path::new("/proc/attn-test-out"), "hello", &[]).stderr)
        .to_string();
    assert!(err.contains("/proc/attn-test-out"), "{err}");
}

#[test]
fn bad_text_and_bad_flags_are_clear_errors() {
    let mut args: Vec<&str> = vec!["show"];
    args.extend_from_slice(SMALL);
    fn join<'a>(base: &[&'a str], extra: &[&'a str]) -> Vec<&'a str> {
        base.iter().chain(extra).copied().collect()
    }
    let with = |extra: &[&'static str]| join(&args, extra);
    assert!(fails(&with(&["--text", ""])).contains("empty"));
    assert!(fails(&with(&["--text", "  \n\t "])).contains("empty"));
    let err = fails(&with(&[
        "--text",
        "one two three four five",
        "--max-len",
        "5",
    ]));
    assert!(
        err.contains("7 tokens") && err.contains("at most 5"),
        "{err}"
    );
    let err = fails(&with(&["--text", "hi", "--layer", "2"]));
    assert!(err.contains("--layer 2") && err.contains("0..=1"), "{err}");
    let err = fails(&with(&["--text", "hi", "--head", "4"]));
    assert!(err.contains("--head 4"), "{err}");
    let err = fails(&["info", "--model", "textbook", "--heads", "7"]);
    assert!(
        err.contains("--d-model 512 is not divisible by --heads 7"),
        "{err}"
    );
    let err = fails(&["info", "--model", "textbook", "--layers", "0"]);
    assert!(err.contains("--layers 0"), "{err}");
    let err = fails(&["info", "--model", "textbook", "--d-model", "1000000000"]);
    assert!(err.contains("--d-model 1000000000"), "{err}");
    let err = fails(&["info", "--model", "no-such-model"]);
    assert!(err.contains("unknown model `no-such-model`"), "{err}");
    let err = fails(&["info", "--model", "minilm"]);
    assert!(
        err.contains("not fetched") && err.contains("scripts/fetch-models"),
        "{err}"
    );
}

#[test]
fn any_unicode_tokenizes_and_labels_are_escaped() {
    let dir = tempfile::tempdir().unwrap();
    for (i, text) in [
        "안녕하세요 세계",
        "I 🤖 love 🎉 emoji",
        "bell\u{7} esc\u{1b}[2J tab\there",
        "e\u{301}",
    ]
    .iter()
    .enumerate()
    {
        let out = dir.path().join(i.to_string());
        let o = dump(&out, text, &[]);
        assert!(
            o.status.success(),
            "{text:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let mut args: Vec<&str> = vec!["show"];
        args.extend_from_slice(SMALL);
        args.extend_from_slice(&["--text", text, "--color", "never"]);
        let shown = ok(&args);
        assert!(
            !shown.contains('\u{1b}') && !shown.contains('\u{7}'),
            "{shown:?}"
        );
    }
}

#[test]
fn show_prints_grid_labels_and_norms_with_and_without_colour() {
    let mut args: Vec<&str> = vec!["show"];
    args.extend_from_slice(SMALL);
    args.extend_from_slice(&["--text", "I love AI", "--layer", "1", "--head", "3"]);
    let mut plain = args.clone();
    plain.extend_from_slice(&["--color", "never"]);
    let out = ok(&plain);
    assert!(out.contains("Layer 1 of 0–1 · Head 3 of 0–3"), "{out}");
    assert!(out.contains("[CLS]") && out.contains("love") && out.contains("entropy"));
    assert!(out.contains("‖attn Δ‖"));
    assert!(!out.contains('\u{1b}'));
    // 5 query rows, each labelled and holding 5 weights.
    for (i, label) in ["[CLS]", "i", "love", "ai", "[SEP]"].iter().enumerate() {
        let row = out
            .lines()
            .find(|l| l.starts_with(&format!("{i} {label} ")))
            .unwrap_or_else(|| panic!("row {i} missing:\n{out}"));
        let weights: Vec<f32> = row
            .split_whitespace()
            .skip(2)
            .map(|w| w.parse().unwrap())
            .collect();
        assert_eq!(weights.len(), 5, "{row}");
        assert!((weights.iter().sum::<f32>() - 1.0).abs() < 0.03, "{row}");
    }
    let mut colour = args.clone();
    colour.extend_from_slice(&["--color", "always"]);
    assert!(ok(&colour).contains("\u{1b}[48;"));
    // auto: not a terminal → plain.
    let mut auto = args.clone();
    auto.extend_from_slice(&["--color", "auto"]);
    assert!(!ok(&auto).contains('\u{1b}'));
}

#[test]
fn causal_dumps_are_lower_triangular_and_seeds_are_deterministic() {
    let dir = tempfile::tempdir().unwrap();
    let read = |p: &Path| std::fs::read(p.join("attention.npy")).unwrap();
    let (a, b, c, d) = (
        dir.path().join("a"),
        dir.path().join("b"),
        dir.path().join("c"),
        dir.path().join("d"),
    );
    assert!(
        dump(&a, "no peeking ahead please", &["--causal"])
            .status
            .success()
    );
    assert!(
        dump(&b, "no peeking ahead please", &["--causal"])
            .status
            .success()
    );
    assert!(
        dump(&c, "no peeking ahead please", &["--causal", "--seed", "7"])
            .status
            .success()
    );
    assert!(dump(&d, "no peeking ahead please", &[]).status.success());
    assert_eq!(read(&a), read(&b), "same seed, same bytes");
    assert_ne!(read(&a), read(&c));
    let att = Npy::read(&a.join("attention.npy"))
        .f32()
        .into_dimensionality::<Ix4>()
        .unwrap();
    let n = att.dim().2;
    for l in 0..2 {
        for h in 0..4 {
            let m: Array2<f32> = att.slice(s![l, h, .., ..]).to_owned();
            for i in 0..n {
                for j in i + 1..n {
                    assert_eq!(m[[i, j]], 0.0);
                }
            }
        }
    }
    let enc = Npy::read(&d.join("attention.npy"))
        .f32()
        .into_dimensionality::<Ix4>()
        .unwrap();
    assert!(enc[[0, 0, 0, n - 1]] > 0.0, "the encoder attends ahead");
}

#[test]
fn info_and_models_describe_the_textbook_model() {
    let out = ok(&["info", "--model", "textbook"]);
    for want in [
        "textbook encoder",
        "layers        6",
        "heads         8",
        "d_model       512",
        "sinusoidal",
        "WordPiece",
        "built-in",
    ] {
        assert!(out.contains(want), "{want} missing in\n{out}");
    }
    let out = ok(&["info", "--model", "textbook", "--causal"]);
    assert!(out.contains("decoder, causal"));
    let out = ok(&["models"]);
    assert!(out.contains("textbook") && out.contains("minilm") && out.contains("not fetched"));
}

#[test]
fn models_lists_what_else_is_in_the_models_directory_escaped() {
    let dir = tempfile::tempdir().unwrap();
    let fixtures = common::repo().join("fixtures");
    let copy = |name: &str| {
        let to = dir.path().join(name);
        std::fs::create_dir(&to).unwrap();
        for f in std::fs::read_dir(fixtures.join(name)).unwrap() {
            let f = f.unwrap().path();
            std::fs::copy(&f, to.join(f.file_name().unwrap())).unwrap();
        }
    };
    copy("tiny-llama-hf");
    copy("tiny-bart");
    std::fs::copy(
        fixtures.join("tiny-llama.gguf"),
        dir.path().join("mine.gguf"),
    )
    .unwrap();
    let evil = dir.path().join("evil\u{1b}[31m");
    std::fs::create_dir(&evil).unwrap();
    std::fs::write(evil.join("config.json"), r#"{"model_type": "mamba"}"#).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_attn"))
        .arg("models")
        .env("ATTN_MODELS_DIR", dir.path())
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    for want in [
        "folder, model_type llama",
        "encoder–decoder folder, model_type bart",
        "GGUF, architecture llama",
        "model_type `mamba` is not supported",
        "evil\\u{1b}[31m",
    ] {
        assert!(text.contains(want), "{want} missing in\n{text}");
    }
    assert!(
        !text.contains('\u{1b}'),
        "a raw escape reached the terminal:\n{text}"
    );
}

#[test]
fn a_closed_pipe_ends_quietly() {
    // `attn show ... | head -1`: the grid of 150 tokens is far larger than a pipe buffer.
    let text = "word ".repeat(150);
    let mut args: Vec<&str> = vec!["show"];
    args.extend_from_slice(SMALL);
    args.extend_from_slice(&["--text", &text, "--color", "always"]);
    let mut child = Command::new(env!("CARGO_BIN_EXE_attn"))
        .args(&args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 16];
    std::io::Read::read_exact(&mut stdout, &mut first).unwrap();
    drop(stdout);
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert!(out.status.success(), "{err}");
}
