//! End to end: the real `attn` binary in a real terminal (tmux). Types sentences (one Korean), presses keys, captures
//! the pane and checks what is shown, then quits and checks the terminal was given back.
//!
//! Without tmux the test prints a note and passes, unless ATTN_REQUIRE_TMUX=1 (then it fails).

mod common;

use common::tmux::{Session, tmux_ok};

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};
use unicode_width::UnicodeWidthStr;

fn quote(p: &Path) -> String {
    format!("'{}'", p.display().to_string().replace('\'', "'\\''"))
}

/// The lines of the pane that belong to boxes: every one must span exactly the pane width, or wide characters were
/// measured differently from how the terminal drew them.
fn assert_aligned(screen: &str, width: usize) {
    for line in screen.lines() {
        if line.starts_with('│') || line.starts_with('╭') || line.starts_with('╰') {
            assert_eq!(line.width(), width, "misaligned line: {line:?}\n{screen}");
        }
    }
}

#[test]
fn the_binary_in_tmux() {
    if !tmux_ok() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let dumps = dir.path().join("dumps");
    let bin = env!("CARGO_BIN_EXE_attn");
    let cmd = format!(
        "cd {} && exec {} --model textbook --dump-dir {}",
        quote(dir.path()),
        quote(Path::new(bin)),
        quote(&dumps)
    );
    let s = Session::start("attn-e2e", 120, 40, &[&cmd]);
    let screen = s.wait_for(
        &[
            "Layer 0 of 0–5 · Head 0 of 0–7",
            "tokens · forward",
            "random weights",
        ],
        60,
    );
    assert!(screen.contains("The cat sat on the mat"), "{screen}");
    assert_aligned(&screen, 120);

    // The starting sentence is selected: typing replaces it; Enter runs and moves to the explorer.
    s.type_text("I love AI");
    s.send(&["Enter"]);
    let screen = s.wait_for(&["5 tokens", "«i»", "[SEP]"], 30);
    assert!(screen.contains("A ❯ I love AI"), "{screen}");
    s.send(&["Right", "Down"]);
    s.wait_for(
        &[
            "Layer 1 of 0–5 · Head 1 of 0–7",
            "Attention · layer 1 · head 1",
        ],
        10,
    );
    s.send(&["m"]);
    s.wait_for(&["Model overview", "6 layers × 8 heads"], 10);
    s.send(&["Right", "Enter"]);
    s.wait_for(&["Attention · layer 1 · head 2"], 10);
    s.send(&["d"]);
    let screen = s.wait_for(&["wrote"], 10);
    assert!(screen.contains("layer01_head02"), "{screen}");
    let made: Vec<_> = std::fs::read_dir(&dumps)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(made.len(), 1);
    assert!(
        made[0].join("layer01_head02.npy").exists() && made[0].join("layer01_head02.csv").exists()
    );

    // A Korean sentence: the uncased tokenizer splits it into jamo; the boxes stay aligned in a real terminal.
    s.send(&["Tab", "C-u"]);
    s.type_text("안녕하세요 세계");
    s.send(&["Enter"]);
    let screen = s.wait_for(&["##ㅏ", "A ❯ 안녕하세요 세계"], 30);
    assert_aligned(&screen, 120);
    // Help lists the keys; any key closes it.
    s.send(&["?"]);
    s.wait_for(&["attn · keys", "dump the whole trace"], 10);
    s.send(&["Space"]);
    std::thread::sleep(Duration::from_millis(300));
    assert!(!s.capture().contains("attn · keys"));

    // Views: positions, norms, zoom, colour modes, scale; a tiny window shows the notice; q quits.
    s.send(&["p"]);
    s.wait_for(&["Positional (sinusoidal)", "positions × dimensions"], 10);
    s.send(&["n"]);
    s.wait_for(&["Residual stream, layer by layer"], 10);
    s.send(&["n", "s"]);
    s.wait_for(&["log scale"], 10);
    let _ = s
        .tmux()
        .args(["resize-window", "-t", &s.name, "-x", "20", "-y", "6"])
        .output();
    s.wait_for(&["too small"], 10);
    let _ = s
        .tmux()
        .args(["resize-window", "-t", &s.name, "-x", "100", "-y", "30"])
        .output();
    s.wait_for(&["Layer 1 of 0–5"], 10);
    s.send(&["q"]);
    let start = Instant::now();
    while s.alive() && start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!s.alive(), "q did not quit:\n{}", s.capture());
}

#[test]
fn sigterm_restores_the_terminal() {
    if !tmux_ok() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let bin = env!("CARGO_BIN_EXE_attn");
    let marker = dir.path().join("after");
    // After attn ends, the shell prints whether the terminal is back in cooked mode (stty shows `icanon`).
    let cmd = format!(
        "{} --model textbook --text hi; stty -a | grep -o -- '-icanon\\|icanon' | head -1 > {}; sleep 30",
        quote(Path::new(bin)),
        quote(&marker)
    );
    let s = Session::start("attn-e2e", 80, 24, &[&cmd]);
    s.wait_for(&["Layer 0 of 0–5"], 60);
    // The pane runs a shell; attn is its child.
    let shell = s
        .tmux()
        .args(["display-message", "-p", "-t", &s.name, "#{pane_pid}"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let pid = Command::new("pgrep").args(["-P", &shell]).output();
    let pid = pid
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let pid = pid.lines().next().unwrap_or("").to_string();
    if pid.is_empty() {
        eprintln!("note: pgrep could not find the process; skipping the SIGTERM check");
        return;
    }
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let start = Instant::now();
    while !marker.exists() && start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(200));
    let mode = std::fs::read_to_string(&marker).unwrap_or_default();
    assert_eq!(mode.trim(), "icanon", "raw mode was left on after SIGTERM");
    let screen = s.capture();
    assert!(
        !screen.contains("Layer 0 of 0–5"),
        "the alternate screen was not left:\n{screen}"
    );
}

#[test]
fn no_color_draws_shades() {
    if !tmux_ok() {
        return;
    }
    let bin = env!("CARGO_BIN_EXE_attn");
    let cmd = format!(
        "NO_COLOR=1 COLORTERM=truecolor {} --model textbook --text 'I love AI'",
        quote(Path::new(bin))
    );
    let s = Session::start("attn-e2e", 100, 30, &[&cmd]);
    s.wait_for(&["' '·░·▒·▓·█", "5 tokens"], 60);
    // No colour escape reaches the pane: capture with escapes and look for colour codes.
    let out = s
        .tmux()
        .args(["capture-pane", "-e", "-p", "-t", &s.name])
        .output()
        .unwrap();
    let raw = String::from_utf8_lossy(&out.stdout);
    assert!(
        !raw.contains("[38;2;") && !raw.contains("[48;2;") && !raw.contains("[48;5;"),
        "{raw}"
    );
    s.send(&["q"]);
}

#[test]
fn decoder_logit_lens_from_the_worker() {
    if !tmux_ok() {
        return;
    }
    let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/tiny-gpt2");
    if !model.join("model.safetensors").exists() {
        eprintln!("note: fixtures/tiny-gpt2 is missing; skipping the logit-lens check");
        return;
    }
    let bin = env!("CARGO_BIN_EXE_attn");
    let cmd = format!(
        "{} --model {} --text 'Hello world, this is a test'",
        quote(Path::new(bin)),
        quote(&model)
    );
    let s = Session::start("attn-e2e", 120, 40, &[&cmd]);
    s.wait_for(
        &["tiny-gpt2", "Layer 0 of 0–1 · Head 0 of 0–3", "next after"],
        60,
    );
    s.send(&["Tab", "e"]);
    // "L0"/"L1" also label the norms panel: wait for the lens's own footer.
    let screen = s.wait_for(
        &[
            "Logit lens at position 1",
            "the last row is the model's own",
        ],
        20,
    );
    assert!(
        screen.contains("the last row is the model's own"),
        "{screen}"
    );
    s.send(&["j"]);
    s.wait_for(&["Logit lens at position 2"], 20);
    s.send(&["q"]);
}

/// The `attn` binary with `args` in a 120×40 session, started in `dir` with the environment `env` (`NAME=value`).
fn attn_in(dir: &Path, env: &str, args: &str) -> Session {
    let bin = env!("CARGO_BIN_EXE_attn");
    let cmd = format!(
        "cd {} && {env} exec {} {args}",
        quote(dir),
        quote(Path::new(bin))
    );
    Session::start("attn-e2e", 120, 40, &[&cmd])
}

// Issue 12: the trained encoder–decoder in a real terminal: type a date as the source, decode greedily (T), see the
// Korean date in the target line, switch to the cross-attention grid (t t): target rows × source columns.
#[test]
fn textbook_dates_decodes_and_shows_cross_attention() {
    if !tmux_ok() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let s = attn_in(dir.path(), "", "--model textbook-dates --color never");
    s.wait_for(
        &["[enc]", "S ❯ 22 November 2026", "Encoder self-attention"],
        60,
    );
    // The sample is a placeholder: typing replaces it. Enter runs (an empty target decodes greedily).
    s.type_text("22 November 2026");
    s.send(&["Enter"]);
    s.wait_for(&["T ❯ 2026년 11월 22일"], 30);
    // T empties the target and decodes again; t t shows the cross-attention.
    s.send(&["T"]);
    s.wait_for(&["greedy output: 2026년 11월 22일"], 30);
    s.send(&["t", "t"]);
    let screen = s.wait_for(&["[cross]", "Cross-attention (target × source)", "t╲s"], 10);
    assert!(screen.contains("T ❯ 2026년 11월 22일"), "{screen}");
    // Columns are the source tokens (the month as one word), rows the decoder input (the Korean characters).
    assert!(
        screen.contains("november") && screen.contains(" 5 년"),
        "{screen}"
    );
    assert_aligned(&screen, 120);
    s.send(&["q"]);
    let start = Instant::now();
    while s.alive() && start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(100));
    }
}

// Issue 12: with no real model fetched, plain `attn` opens textbook-dates with a date to start from; the random
// textbook stays one flag away.
#[test]
fn without_fetched_models_attn_opens_textbook_dates() {
    if !tmux_ok() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let s = attn_in(dir.path(), "ATTN_MODELS_DIR=no-models", "");
    let screen = s.wait_for(&["textbook-dates", "T ❯ 2026년 11월 22일"], 60);
    assert!(screen.contains("S ❯ 22 November 2026"), "{screen}");
    drop(s);
    let s = attn_in(dir.path(), "ATTN_MODELS_DIR=no-models", "--model textbook");
    s.wait_for(&["random weights", "A ❯ The cat sat on the mat"], 60);
}

// Issue 13: ablate L23.H4 of SmolLM2 in a real terminal and watch " Paris" lose its lead (docs/interpretability.md).
#[test]
fn ablating_a_head_in_smollm2_changes_the_next_token() {
    if !tmux_ok() {
        return;
    }
    let Some(model) = common::real_model("smollm2.gguf") else {
        return;
    };
    let bin = env!("CARGO_BIN_EXE_attn");
    let cmd = format!(
        "{} --model {} --text 'The capital of France is'",
        quote(Path::new(bin)),
        quote(&model)
    );
    let s = Session::start("attn-e2e", 160, 45, &[&cmd]);
    s.wait_for(&["Q4_1", "next after «"], 120);
    s.send(&["Tab", "g", "2", "3"]);
    s.send(&["4", "End"]);
    s.wait_for(&["Layer 23 of 0–29 · Head 4 of 0–8"], 20);
    let before = s.capture();
    assert!(before.contains("«␣Paris» .773"), "{before}");
    s.send(&["A"]);
    let screen = s.wait_for(&["1 head ablated (zero, shown)", "Ablation effect"], 60);
    assert!(screen.contains("␣Paris 0.773"), "{screen}");
    assert!(screen.contains("␣Paris 0.141"), "{screen}");
    assert!(screen.contains("Δ -4.06"), "{screen}");
    // Every view shows the ablated run: the grid's next-token line too; f flips back to the clean run.
    assert!(screen.contains("«␣Paris» .141"), "{screen}");
    s.send(&["f"]);
    s.wait_for(&["clean shown", "«␣Paris» .773"], 20);
    s.send(&["q"]);
}
