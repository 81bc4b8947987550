//! Issue 8, dumps: racing dumps (exactly one wins), all-or-nothing failures, `--force` replacing a dump whole,
//! signals removing the staging area, and the JSON format's memory — each run as a user would, with the real binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A small textbook model so the tests stay fast.
const SMALL: &[&str] = &[
    "--model",
    "textbook",
    "--layers",
    "2",
    "--heads",
    "4",
    "--d-model",
    "32",
    "--d-ff",
    "64",
];

fn cmd(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_attn"));
    c.args(args)
        .env("ATTN_MODELS_DIR", "/nonexistent-attn-models")
        .stdin(Stdio::null());
    c
}

fn run(args: &[&str]) -> Output {
    cmd(args).output().expect("run attn")
}

fn dump(out: &Path, text: &str, extra: &[&str]) -> Output {
    let mut a: Vec<&str> = vec!["dump"];
    a.extend(SMALL);
    let o = out.to_str().unwrap();
    a.extend(["-t", text, "-o", o]);
    a.extend(extra);
    run(&a)
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Every entry under `dir`, relative, sorted (hidden ones included).
fn tree(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, d: &Path, out: &mut Vec<String>) {
        if let Ok(rd) = std::fs::read_dir(d) {
            for e in rd.flatten() {
                let p = e.path();
                out.push(p.strip_prefix(base).unwrap().display().to_string());
                if p.is_dir() {
                    walk(base, &p, out);
                }
            }
        }
    }
    let mut v = vec![];
    walk(dir, dir, &mut v);
    v.sort();
    v
}

fn meta(dir: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir.join("meta.json")).unwrap()).unwrap()
}

#[test]
fn racing_dumps_exactly_one_wins_and_nothing_is_mixed() {
    let tmp = tempfile::tempdir().unwrap();
    let exe = env!("CARGO_BIN_EXE_attn");
    for trial in 0..60 {
        let d = tmp.path().join(format!("D{trial}"));
        std::fs::create_dir(&d).unwrap();
        let spawn = |text: &str| {
            let mut c = Command::new(exe);
            c.arg("dump")
                .args(SMALL)
                .args(["-t", text, "-o", d.to_str().unwrap()])
                .env("ATTN_MODELS_DIR", "/nonexistent-attn-models")
                .stdout(Stdio::null())
                .stderr(Stdio::piped());
            c.spawn().unwrap()
        };
        let a = spawn("alpha one two three");
        let b = spawn("beta four five six seven");
        let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
        let wins = [&a, &b].iter().filter(|o| o.status.success()).count();
        assert_eq!(wins, 1, "trial {trial}: {} / {}", stderr(&a), stderr(&b));
        let loser = if a.status.success() { &b } else { &a };
        assert!(
            stderr(loser).contains("already exists"),
            "trial {trial}: {}",
            stderr(loser)
        );
        // meta.json and tokens.json come from the same run.
        let m = meta(&d);
        let text = m["text"].as_str().unwrap().to_string();
        let toks: serde_json::Value =
            serde_json::from_slice(&std::fs::read(d.join("tokens.json")).unwrap()).unwrap();
        let first = toks[1]["text"].as_str().unwrap().to_lowercase();
        assert!(text.starts_with(&first), "trial {trial}: {text} vs {first}");
        let names = tree(&d);
        assert!(
            names.iter().all(|n| !n.starts_with('.')),
            "trial {trial}: leftovers {names:?}"
        );
    }
}

#[test]
fn a_failed_dump_leaves_nothing_and_says_what_is_in_the_way() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("P");
    std::fs::create_dir(&p).unwrap();
    std::fs::write(p.join("attention"), "x").unwrap();
    let o = dump(&p, "hello there", &["--format", "csv"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("P/attention: exists and is not a directory"),
        "{}",
        stderr(&o)
    );
    assert_eq!(tree(&p), ["attention"]);

    // meta.json a directory, with --force: nothing is moved in.
    let q = tmp.path().join("Q");
    std::fs::create_dir_all(q.join("meta.json")).unwrap();
    let o = dump(&q, "hello there", &["--force"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("meta.json: exists and is a directory"),
        "{}",
        stderr(&o)
    );
    assert_eq!(tree(&q), ["meta.json"]);

    // A new output directory is removed again when the dump fails (unwritable parent content: a file in the way).
    let r = tmp.path().join("R");
    let o = dump(&r, "", &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(!r.exists());
}

#[test]
fn force_replaces_the_previous_dump_whole_and_keeps_other_files() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("D");
    let heads = |h: &'static str| -> Vec<&'static str> {
        vec![
            "--model",
            "textbook",
            "--layers",
            "2",
            "--heads",
            h,
            "--d-model",
            "32",
            "--format",
            "csv",
        ]
    };
    let run_heads = |h: &'static str, force: bool| {
        let mut a = vec!["dump"];
        a.extend(heads(h));
        a.extend(["-t", "one two three", "-o", d.to_str().unwrap()]);
        if force {
            a.push("--force");
        }
        let o = run(&a);
        assert!(o.status.success(), "{}", stderr(&o));
    };
    run_heads("16", false);
    std::fs::write(d.join("notes.txt"), "mine").unwrap();
    std::fs::write(d.join("attention/mine.csv"), "mine").unwrap();
    assert_eq!(std::fs::read_dir(d.join("attention")).unwrap().count(), 33);
    run_heads("8", true);
    let csvs: Vec<String> = tree(&d.join("attention"));
    assert_eq!(csvs.len(), 2 * 8 + 1, "{csvs:?}");
    assert!(csvs.contains(&"mine.csv".to_string()));
    assert!(!csvs.contains(&"layer00_head08.csv".to_string()));
    assert_eq!(meta(&d)["heads"], 8);
    assert_eq!(
        meta(&d)["files"].as_array().unwrap().len(),
        5 + 2 * 8,
        "the manifest lists every file written, meta.json included"
    );

    // npy, then json with --force: the old attention.npy goes; csv files go; my files stay.
    let o = dump(&d, "one two", &["--force"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(d.join("attention.npy").exists() && !d.join("attention/layer00_head00.csv").exists());
    let o = dump(&d, "one two", &["--format", "json", "--force"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let names = tree(&d);
    assert_eq!(
        names,
        [
            "attention",
            "attention.json",
            "attention/mine.csv",
            "hidden.npy",
            "meta.json",
            "notes.txt",
            "positional.npy",
            "residual_norms.csv",
            "tokens.json"
        ]
    );
    // Without --force nothing is replaced.
    let o = dump(&d, "one two", &["--format", "json"]);
    assert!(stderr(&o).contains("already exists"), "{}", stderr(&o));
}

/// Start a slow dump (CSV of a long text), wait until its staging area holds data, send `sig`, and check the exit
/// status and that nothing is left.
fn interrupt(sig: i32, code: i32) {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("BIG");
    let text = vec!["word"; 1500].join(" ");
    let mut child = cmd(&[
        "dump",
        "--model",
        "textbook",
        "--layers",
        "4",
        "--heads",
        "8",
        "--d-model",
        "64",
        "--max-len",
        "2000",
        "--format",
        "csv",
        "-t",
        &text,
        "-o",
        out.to_str().unwrap(),
    ])
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let start = Instant::now();
    let staged = loop {
        let stage: Vec<PathBuf> = std::fs::read_dir(&out)
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.path())
                    .filter(|p| p.to_string_lossy().contains(".attn-staging-"))
                    .collect()
            })
            .unwrap_or_default();
        if let Some(s) = stage.first()
            && s.join("attention")
                .read_dir()
                .is_ok_and(|mut d| d.next().is_some())
        {
            break true;
        }
        if start.elapsed() > Duration::from_secs(60) || child.try_wait().unwrap().is_some() {
            break false;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    assert!(staged, "the dump never reached the writing stage");
    // SAFETY: sending a signal to our own child.
    assert_eq!(unsafe { libc::kill(child.id() as i32, sig) }, 0);
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(code), "{}", stderr(&o));
    assert!(!out.exists(), "left behind: {:?}", tree(&out));
}

#[test]
fn sigint_sigterm_sighup_remove_the_staging_area() {
    interrupt(libc::SIGINT, 130);
    interrupt(libc::SIGTERM, 143);
    interrupt(libc::SIGHUP, 129);
}

#[test]
fn stale_staging_dirs_and_locks_of_dead_processes_are_removed() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("D");
    std::fs::create_dir(&d).unwrap();
    // A pid that is certainly dead: a child we waited for.
    let mut c = Command::new("true").spawn().unwrap();
    let dead = c.id();
    c.wait().unwrap();
    let stale = d.join(format!(".attn-staging-{dead}-123"));
    std::fs::create_dir(&stale).unwrap();
    std::fs::write(stale.join("hidden.npy"), vec![0u8; 1000]).unwrap();
    std::fs::write(d.join(".attn-dump.lock"), format!("{dead}\n")).unwrap();
    // A staging dir of a live process (ours) is left alone.
    let live = d.join(format!(".attn-staging-{}-5", std::process::id()));
    std::fs::create_dir(&live).unwrap();
    let o = dump(&d, "hello", &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!stale.exists() && live.exists());
    assert!(!d.join(".attn-dump.lock").exists());
}

/// Peak resident memory of a finished child, in KiB (`ru_maxrss` of a `wait4` on it).
// The child is reaped by `wait4` below (clippy cannot see it).
#[allow(clippy::zombie_processes)]
fn peak_rss_kib(mut c: Command) -> (i64, Output) {
    let child = c
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    let mut status = 0;
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waiting for our own child with a valid rusage buffer.
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(r, pid);
    let mut err = String::new();
    use std::io::Read;
    if let Some(mut e) = child.stderr {
        let _ = e.read_to_string(&mut err);
    }
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "{err}"
    );
    (
        usage.ru_maxrss,
        Output {
            status: std::os::unix::process::ExitStatusExt::from_raw(status),
            stdout: vec![],
            stderr: err.into_bytes(),
        },
    )
}

#[test]
fn json_dumps_stream_within_the_memory_of_npy() {
    let tmp = tempfile::tempdir().unwrap();
    let text = vec!["word"; 700].join(" ");
    let mut peaks = vec![];
    for fmt in ["npy", "json"] {
        let out = tmp.path().join(fmt);
        let c = cmd(&[
            "dump",
            "--model",
            "textbook",
            "--layers",
            "6",
            "--heads",
            "8",
            "--d-model",
            "64",
            "--max-len",
            "1000",
            "--format",
            fmt,
            "-t",
            &text,
            "-o",
            out.to_str().unwrap(),
        ]);
        peaks.push(peak_rss_kib(c).0);
    }
    // Attention is 6·8·702²·4 B = 95 MiB; building the JSON document in memory took ~8× that.
    let (npy, json) = (peaks[0], peaks[1]);
    assert!(
        json < npy + npy / 2,
        "peak RSS: npy {npy} KiB, json {json} KiB"
    );
}

#[test]
fn progress_goes_to_a_terminal_stderr_only_and_quiet_silences_it() {
    let tmp = tempfile::tempdir().unwrap();
    let exe = env!("CARGO_BIN_EXE_attn");
    let line = |out: &str, extra: &str| {
        format!(
            "ATTN_MODELS_DIR=/nonexistent {exe} dump {} -t 'one two three' -o {} {extra} >/dev/null",
            SMALL.join(" "),
            tmp.path().join(out).display()
        )
    };
    // `script` gives the command a terminal: stderr is a TTY there.
    let in_tty = |cmdline: String| -> Option<String> {
        let o = Command::new("script")
            .args(["-qec", &cmdline, "/dev/null"])
            .stdin(Stdio::null())
            .output()
            .ok()?;
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
        Some(String::from_utf8_lossy(&o.stdout).into_owned())
    };
    let Some(shown) = in_tty(line("A", "")) else {
        eprintln!("note: `script` is not available; skipping the TTY half");
        return;
    };
    assert!(
        shown.contains("forward 2/2 layers") && shown.contains("writing attention 2/2 layers"),
        "{shown}"
    );
    assert!(shown.contains("done in"), "{shown}");
    let quiet = in_tty(line("B", "--quiet")).unwrap();
    assert!(!quiet.contains("layers ["), "{quiet}");
    // Not a terminal: nothing on stderr.
    let o = dump(&tmp.path().join("C"), "one two three", &[]);
    assert!(o.status.success() && o.stderr.is_empty(), "{}", stderr(&o));
}
