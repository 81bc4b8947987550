//! A long input runs in bounded memory: `attn show` on SmolLM2 with ~1000 tokens (a real child process), its peak
//! resident set (VmHWM, read from /proc while it runs) within a budget. Before the quantized weights, the query-tiled
//! attention and the chunked LM head, the same run held 538 MB of f32 weights, every layer's `heads × n × n` pattern
//! while computing it (151 MB here) and every position's logits (400 MB).

mod common;

use common::real_model;
use std::process::{Command, Stdio};
use std::time::Duration;

/// VmHWM of a live process in KiB.
fn vm_hwm_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Run `attn ARGS` as a child process, polling its VmHWM until it exits: (stdout, peak RSS in MiB). Output goes to
/// files, read after the exit (a pipe read only after the exit would block a child that writes more than it holds).
fn run_measured(args: &[&str]) -> (String, u64) {
    let dir = tempfile::tempdir().unwrap();
    let (out_path, err_path) = (dir.path().join("stdout"), dir.path().join("stderr"));
    let mut child = Command::new(env!("CARGO_BIN_EXE_attn"))
        .args(args)
        .env("RAYON_NUM_THREADS", "2")
        .stdout(Stdio::from(std::fs::File::create(&out_path).unwrap()))
        .stderr(Stdio::from(std::fs::File::create(&err_path).unwrap()))
        .spawn()
        .expect("spawn attn");
    let pid = child.id();
    let mut peak = 0u64;
    // Poll until the process has exited (VmHWM only grows, so the last reading is the closest to the peak).
    while child.try_wait().expect("wait").is_none() {
        if let Some(k) = vm_hwm_kib(pid) {
            peak = peak.max(k);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let status = child.wait().expect("wait");
    assert!(
        status.success(),
        "attn {} failed: {}",
        args[0],
        std::fs::read_to_string(&err_path).unwrap_or_default()
    );
    assert!(peak > 0, "could not read VmHWM");
    (std::fs::read_to_string(&out_path).unwrap(), peak / 1024)
}

const SENTENCE: &str =
    "Attention lets every token look at every earlier token, and a long input tests memory. ";

#[test]
fn smollm2_long_input_peak_rss_stays_within_budget() {
    let Some(gguf) = real_model("smollm2.gguf") else {
        return;
    };
    let text = SENTENCE.repeat(60); // ~1020 tokens
    let (stdout, mib) = run_measured(&[
        "show",
        "--model",
        gguf.to_str().unwrap(),
        "--color",
        "never",
        "--layer",
        "3",
        "--head",
        "2",
        "--text",
        &text,
    ]);
    let n: usize = stdout
        .split(" tokens")
        .next()
        .and_then(|s| s.rsplit(' ').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    assert!(n > 1000, "expected a long input, got {n} tokens:\n{stdout}");
    eprintln!("attn show, SmolLM2, {n} tokens: peak RSS {mib} MiB");
    assert!(
        mib <= BUDGET_MIB,
        "peak RSS {mib} MiB over the {BUDGET_MIB} MiB budget"
    );
}

/// `attn dump --attn-layers 0 --attn-heads 0` on ~2,400 tokens: the forward keeps no attention and the one selected
/// head (23 MB here) is computed alone and streamed to disk. Keeping one layer whole would add 9 heads × 23 MB twice
/// over; keeping every layer, 6.2 GB.
#[test]
fn smollm2_dump_of_one_head_at_2400_tokens_stays_within_budget() {
    let Some(gguf) = real_model("smollm2.gguf") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("dump");
    let text = SENTENCE.repeat(141); // ~2400 tokens
    let (stdout, mib) = run_measured(&[
        "dump",
        "--model",
        gguf.to_str().unwrap(),
        "--attn-layers",
        "0",
        "--attn-heads",
        "0",
        "--quiet",
        "--text",
        &text,
        "--out",
        out.to_str().unwrap(),
    ]);
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("meta.json")).unwrap()).unwrap();
    let n = meta["n_tokens"].as_u64().unwrap() as usize;
    assert!(n > 2300, "expected ~2400 tokens, got {n}:\n{stdout}");
    assert_eq!(meta["attention_layers"], serde_json::json!([0]));
    assert_eq!(meta["attention_heads"], serde_json::json!([0]));
    let att = common::Npy::read(&out.join("attention.npy"));
    assert_eq!(att.shape, vec![1, 1, n, n]);
    eprintln!("attn dump --attn-layers 0 --attn-heads 0, SmolLM2, {n} tokens: peak RSS {mib} MiB");
    assert!(
        mib <= DUMP_BUDGET_MIB,
        "peak RSS {mib} MiB over the {DUMP_BUDGET_MIB} MiB budget"
    );
}

/// 31 residual streams + 30 mid-streams of `n × 576` f32 (340 MB at 2400 tokens), one head (23 MB), the mapped
/// weights (98 MB), one block's activations and the LM head's chunks: well under 1 GiB.
const DUMP_BUDGET_MIB: u64 = 1024;

/// 31 residual streams + 30 mid-streams of `n × 576` f32 (~145 MB at 1020 tokens), one layer's attention for the
/// view (37 MB), the mapped 98 MB of weights, the tokenizer and the output: well under 600 MiB. Before the quantized
/// weights and the chunked LM head the same run needed 538 MB of f32 weights plus 200 MB of logits alone.
const BUDGET_MIB: u64 = 600;
