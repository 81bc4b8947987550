//! Issue 8, inputs: special files (FIFOs, devices, directories) as model files, memory budgets, terminal escapes from
//! files, NaN/Inf in a forward pass, and the smaller holes (stdout errors, the dump root, megabyte pastes).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

fn attn_cmd(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_attn"));
    c.args(args)
        .env("ATTN_MODELS_DIR", "/nonexistent-attn-models")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

/// Run attn; a run that has not ended after 20 s is killed and fails the test (a hang).
fn attn(args: &[&str]) -> Output {
    let child = attn_cmd(args).spawn().expect("run attn");
    let pid = child.id() as i32;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(Duration::from_secs(20)) {
        Ok(o) => o.unwrap(),
        Err(_) => {
            // SAFETY: killing our own child.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            panic!("attn {:?} hung", &args[..args.len().min(4)]);
        }
    }
}

fn err_of(o: &Output) -> String {
    let e = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(!e.contains("panicked"), "{e}");
    e
}

fn mkfifo(p: &Path) {
    let c = std::ffi::CString::new(p.to_str().unwrap()).unwrap();
    // SAFETY: a valid C string path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
}

/// A copy of the tiny BERT folder in a temp dir.
fn bert_copy(dir: &Path) -> PathBuf {
    let m = dir.join("bert");
    std::fs::create_dir(&m).unwrap();
    for f in ["config.json", "tokenizer.json", "model.safetensors"] {
        std::fs::copy(common::repo().join("fixtures/tiny-bert").join(f), m.join(f)).unwrap();
    }
    m
}

#[test]
fn special_files_are_refused_at_once_naming_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    for (file, what) in [
        ("config.json", "named pipe"),
        ("tokenizer.json", "named pipe"),
        ("model.safetensors", "named pipe"),
    ] {
        let m = bert_copy(&tmp.path().join(file.replace('.', "_")).tap_mkdir());
        std::fs::remove_file(m.join(file)).unwrap();
        mkfifo(&m.join(file));
        let o = attn(&["info", "-m", m.to_str().unwrap()]);
        let e = err_of(&o);
        assert_eq!(o.status.code(), Some(1), "{e}");
        assert!(e.contains(&format!("{file}: is a {what}")), "{e}");
    }
    for file in ["config.json", "tokenizer.json"] {
        let m = bert_copy(&tmp.path().join(format!("zero_{file}")).tap_mkdir());
        std::fs::remove_file(m.join(file)).unwrap();
        std::os::unix::fs::symlink("/dev/zero", m.join(file)).unwrap();
        let o = attn(&["info", "-m", m.to_str().unwrap()]);
        let e = err_of(&o);
        assert!(e.contains(&format!("{file}: is a character device")), "{e}");
    }
    // A directory named model.safetensors: said plainly, not "No such device".
    let m = bert_copy(&tmp.path().join("dir").tap_mkdir());
    std::fs::remove_file(m.join("model.safetensors")).unwrap();
    std::fs::create_dir(m.join("model.safetensors")).unwrap();
    let e = err_of(&attn(&["info", "-m", m.to_str().unwrap()]));
    assert!(
        e.contains("model.safetensors: is a directory, not a regular file"),
        "{e}"
    );
    // A FIFO named *.gguf.
    let g = tmp.path().join("m.gguf");
    mkfifo(&g);
    let e = err_of(&attn(&["info", "-m", g.to_str().unwrap()]));
    assert!(e.contains("m.gguf: is a named pipe"), "{e}");
    // An oversized config.json is refused by its size.
    let m = bert_copy(&tmp.path().join("big").tap_mkdir());
    let mut cfg = std::fs::read(m.join("config.json")).unwrap();
    cfg.extend(vec![b' '; 2 << 20]);
    std::fs::write(m.join("config.json"), cfg).unwrap();
    let e = err_of(&attn(&["info", "-m", m.to_str().unwrap()]));
    assert!(
        e.contains("config.json: is ") && e.contains("at most 1048576 bytes"),
        "{e}"
    );
}

trait TapMkdir {
    fn tap_mkdir(self) -> Self;
}
impl TapMkdir for PathBuf {
    fn tap_mkdir(self) -> Self {
        std::fs::create_dir_all(&self).unwrap();
        self
    }
}

#[test]
fn memory_budget_refuses_before_allocating_naming_figure_and_flag() {
    // 16,000 tokens need ~1.8 GiB (streams, query tiles, the one head shown: 1 GB) against a 1 GiB budget.
    let text = vec!["word"; 16000].join(" ");
    let mut c = attn_cmd(&[
        "show",
        "-m",
        "textbook",
        "--max-len",
        "16384",
        "--mem-budget",
        "1G",
        "-t",
        &text,
    ]);
    // Under a 3 GiB address-space limit: the old code allocated 10+ GB; the refusal allocates nothing big.
    let o = Command::new("prlimit")
        .arg("--as=3221225472")
        .arg(c.get_program())
        .args(c.get_args())
        .env("ATTN_MODELS_DIR", "/nonexistent-attn-models")
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|_| c.output().unwrap());
    let e = err_of(&o);
    assert_eq!(o.status.code(), Some(1), "{e}");
    assert!(
        e.contains("attn show on 16002 tokens")
            && e.contains("over the memory budget of 1.0 GiB")
            && e.contains("--mem-budget"),
        "{e}"
    );
    // The flag lowers (and raises) the budget.
    let words = vec!["word"; 200].join(" ");
    let o = attn(&["show", "-m", "textbook", "--mem-budget", "1M", "-t", &words]);
    assert!(
        err_of(&o).contains("over the memory budget of 1 MiB"),
        "{}",
        err_of(&o)
    );
    let o = attn(&["show", "-m", "textbook", "--mem-budget", "1G", "-t", &words]);
    assert!(o.status.success(), "{}", err_of(&o));
    let o = attn(&[
        "dump",
        "-m",
        "textbook",
        "--mem-budget",
        "1M",
        "-t",
        &words,
        "-o",
        "/nonexistent/x",
    ]);
    assert!(err_of(&o).contains("attn dump on"));
    // The explorer's worker uses the same estimate and budget.
    let m: std::sync::Arc<dyn attn::model::Model> =
        std::sync::Arc::from(attn::model::load("textbook", &Default::default()).unwrap());
    let e = attn::tui::worker::prepare_within(m.as_ref(), &words, None, 1 << 20, None).unwrap_err();
    assert!(
        e.contains("the explorer on") && e.contains("--mem-budget"),
        "{e}"
    );
}

#[test]
fn a_megabyte_paste_is_refused_by_its_length() {
    let m = attn::model::load("textbook", &Default::default()).unwrap();
    let text = "x".repeat(1 << 20);
    let e = attn::tui::worker::prepare(m.as_ref(), &text, None, None).unwrap_err();
    assert!(
        e.contains("1048576 bytes long") && e.contains("at most 512 tokens"),
        "{e}"
    );
}

/// The tiny Llama GGUF with `from` replaced by `to` (same length) in its metadata.
fn gguf_with(dir: &Path, from: &[u8], to: &[u8]) -> PathBuf {
    assert_eq!(from.len(), to.len());
    let mut b = std::fs::read(common::repo().join("fixtures/tiny-llama.gguf")).unwrap();
    let at = b.windows(from.len()).position(|w| w == from).unwrap();
    b[at..at + from.len()].copy_from_slice(to);
    let p = dir.join("evil.gguf");
    std::fs::write(&p, b).unwrap();
    p
}

#[test]
fn escapes_from_files_never_reach_the_terminal_raw() {
    let tmp = tempfile::tempdir().unwrap();
    let name = b"tiny-llama (random weights, attn test fixture)";
    let mut evil = b"Evil\x1b[2J\x1b[H\x1b]0;title\x07".to_vec();
    evil.resize(name.len(), b' ');
    let g = gguf_with(tmp.path(), name, &evil);
    let gs = g.to_str().unwrap();
    for args in [
        vec!["info", "-m", gs],
        vec!["show", "-m", gs, "-t", "hello world", "--color", "never"],
        vec!["dump", "-m", gs, "-t", "hello", "-o"],
    ] {
        let mut args = args;
        let out = tmp.path().join("out");
        let out_s = out.to_str().unwrap().to_string();
        if args[0] == "dump" {
            args.push(&out_s);
        }
        let o = attn(&args);
        assert!(o.status.success(), "{}", err_of(&o));
        for stream in [&o.stdout, &o.stderr] {
            assert!(
                !stream.contains(&0x1b) && !stream.contains(&0x07),
                "{args:?}"
            );
        }
        if args[0] == "info" {
            let s = String::from_utf8_lossy(&o.stdout);
            assert!(s.contains("Evil\\u{1b}[2J"), "{s}");
        }
    }
    // Control bytes in general.architecture reach stderr escaped.
    let g = gguf_with(
        tmp.path(),
        b"\x05\x00\x00\x00\x00\x00\x00\x00llama",
        b"\x05\x00\x00\x00\x00\x00\x00\x00\x1b[2Jx",
    );
    let o = attn(&["info", "-m", g.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(!o.stderr.contains(&0x1b));
    assert!(err_of(&o).contains("\\u{1b}[2Jx"), "{}", err_of(&o));
    // The explorer shows the name escaped.
    let m = attn::model::load(gs, &Default::default());
    let g2 = gguf_with(tmp.path(), name, &evil);
    let m = m
        .or_else(|_| attn::model::load(g2.to_str().unwrap(), &Default::default()))
        .unwrap();
    let app = attn::tui::new_app(
        m.info(),
        "hi",
        None,
        attn::tui::app::Palette::Mono,
        (80, 24),
    );
    assert!(app.info.name.starts_with("Evil\\u{1b}[2J") && !app.info.name.contains('\x1b'));
}

/// The tiny BERT folder with position embedding row 0 set to NaN.
fn bert_with_nan(dir: &Path) -> PathBuf {
    let m = bert_copy(dir);
    let p = m.join("model.safetensors");
    let mut b = std::fs::read(&p).unwrap();
    let n = u64::from_le_bytes(b[..8].try_into().unwrap()) as usize;
    let h: serde_json::Value = serde_json::from_slice(&b[8..8 + n]).unwrap();
    let t = &h["embeddings.position_embeddings.weight"];
    let start = 8 + n + t["data_offsets"][0].as_u64().unwrap() as usize;
    let d = t["shape"][1].as_u64().unwrap() as usize;
    for k in 0..d {
        b[start + 4 * k..start + 4 * k + 4].copy_from_slice(&f32::NAN.to_le_bytes());
    }
    std::fs::write(&p, b).unwrap();
    m
}

#[test]
fn nan_in_a_forward_pass_is_reported_naming_where() {
    let tmp = tempfile::tempdir().unwrap();
    let m = bert_with_nan(tmp.path());
    let ms = m.to_str().unwrap();
    let o = attn(&["show", "-m", ms, "-t", "hello world", "--color", "never"]);
    let e = err_of(&o);
    assert!(o.status.success(), "{e}");
    assert!(
        e.contains(
            "warning: non-finite values (NaN/Inf) first appear in the embeddings, at token 0"
        ),
        "{e}"
    );
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("NaN"),
        "non-finite cells are shown as NaN, not 0:\n{out}"
    );
    let o = attn(&["show", "-m", ms, "-t", "hello world", "--strict"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(err_of(&o).contains("(--strict)"));
    let d = tmp.path().join("D");
    let o = attn(&["dump", "-m", ms, "-t", "hello", "-o", d.to_str().unwrap()]);
    assert!(o.status.success());
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.join("meta.json")).unwrap()).unwrap();
    assert!(meta["non_finite"].as_str().unwrap().contains("embeddings"));
    let o = attn(&[
        "dump",
        "-m",
        ms,
        "-t",
        "hello",
        "-o",
        tmp.path().join("E").to_str().unwrap(),
        "--strict",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(!tmp.path().join("E").exists());
}

#[test]
fn stdout_errors_and_the_dump_root_say_what_they_are() {
    let full = std::fs::OpenOptions::new().write(true).open("/dev/full");
    if let Ok(full) = full {
        let o = Command::new(env!("CARGO_BIN_EXE_attn"))
            .args(["show", "-m", "textbook", "-t", "hello", "--color", "never"])
            .stdout(full)
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(1));
        assert!(
            err_of(&o).contains("cannot write to standard output"),
            "{}",
            err_of(&o)
        );
    }
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("dumps");
    std::fs::write(&file, "x").unwrap();
    let e = attn::export::fresh_dump_dir(&file, "20260101-000000")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("dumps: the dump directory exists and is not a directory"),
        "{e}"
    );
    assert_eq!(
        attn::export::dump_root(None),
        PathBuf::from(attn::export::DEFAULT_DUMP_ROOT)
    );
}
