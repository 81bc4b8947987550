//! The explorer on a long input: a run whose attention does not fit the memory budget keeps none; the head on screen
//! is computed on demand by the worker, a streaming pass fills in the overview's thumbnails and the statistics, and
//! what needs every head at once says why not. Checked against a run that kept everything, and in a real terminal
//! on SmolLM2 at ~2,500 tokens with its peak memory read from /proc.

mod common;

use attn::analysis::head_stats;
use attn::model::{self, Model, TextbookConfig, budget};
use attn::tui::app::runs::THUMB_SIDE;
use attn::tui::app::{App, Effect, Focus, Palette, View};
use attn::tui::event::{Event, Outcome};
use attn::tui::streamed::block_mean;
use attn::tui::{self, ui, worker};
use crossterm::event::KeyCode;
use ndarray::Axis;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn small() -> Arc<dyn Model> {
    let cfg = TextbookConfig {
        layers: 2,
        heads: 3,
        d_model: 48,
        d_ff: 96,
        causal: true,
        ..Default::default()
    };
    model::load("textbook", &cfg).unwrap().into()
}

fn screen(app: &App) -> String {
    let mut t = Terminal::new(TestBackend::new(app.size.0, app.size.1)).unwrap();
    t.draw(|f| ui::draw(f, app)).unwrap();
    t.backend().to_string()
}

/// Feed `ev` to the app and run every job it asks for on this thread with the worker's body, until none is left.
fn settle(app: &mut App, m: &dyn Model, budget: u64, ev: Event) -> usize {
    let mut fx = app.update(ev, Instant::now());
    let mut jobs = 0;
    while let Some(e) = fx.pop() {
        if let Effect::Job(j) = e {
            jobs += 1;
            let ev = worker::run_job_within(m, j, budget, None);
            fx.extend(app.update(ev, Instant::now()));
        }
    }
    jobs
}

#[test]
fn a_long_input_is_explored_one_head_at_a_time_and_matches_a_kept_run() {
    let m = small();
    let text =
        "a long input is seen one head at a time, through thumbnails of the rest. ".repeat(5);
    let kept = worker::prepare_within(m.as_ref(), &text, None, u64::MAX, None).unwrap();
    assert!(!kept.lazy);
    let n = kept.trace.n_tokens();
    // A budget one byte short of keeping every attention: the run keeps none.
    let keep_all = budget::estimate(m.info(), n, true, 5).total();
    let tight = keep_all - 1;
    let lazy = worker::prepare_within(m.as_ref(), &text, None, tight, None).unwrap();
    assert!(lazy.lazy && lazy.trace.layers.iter().all(|l| l.attention.is_none()));
    assert!(
        lazy.stats.iter().flatten().all(|s| s.entropy.is_nan()),
        "statistics start unknown"
    );

    let mut app = tui::new_app(m.info(), &text, None, Palette::Mono, (120, 40));
    let fx = app.start(Instant::now());
    assert_eq!(fx.len(), 1);
    let traced = Event::Traced(Box::new(Outcome {
        generation: app.runs.generation,
        result: Ok(lazy),
        total: Duration::ZERO,
    }));
    // Before any head arrives the grid says what it waits for.
    let fx = app.update(traced, Instant::now());
    app.focus = Focus::Explorer;
    assert!(
        screen(&app).contains("computing layer 0 head 0…"),
        "{}",
        screen(&app)
    );
    assert!(app.status.as_ref().unwrap().text.contains("long input"));
    // The head on screen and the streaming pass's first head are asked for; run them and everything they lead to.
    assert_eq!(fx.len(), 2, "{fx:?}");
    for e in fx {
        let Effect::Job(j) = e else { panic!("a job") };
        let ev = worker::run_job_within(m.as_ref(), j, tight, None);
        settle(&mut app, m.as_ref(), tight, ev);
    }
    let full = |l: usize, h: usize| kept.att(l).unwrap().index_axis(Axis(0), h).to_owned();
    let close = |a: &ndarray::Array2<f32>, b: &ndarray::Array2<f32>| {
        a.dim() == b.dim() && a.iter().zip(b).all(|(x, y)| (x - y).abs() <= 1e-6)
    };
    assert!(
        close(&app.grid.matrix, &full(0, 0)),
        "the on-demand head equals the kept one"
    );
    // The streaming pass went through every head: thumbnails are block means, statistics those of the full matrix.
    assert_eq!(app.long.done, 6);
    let d = app.data.as_ref().unwrap();
    for l in 0..2 {
        for h in 0..3 {
            let thumb = app.long.thumbs[l][h].as_ref().expect("thumbnail");
            assert!(
                close(thumb, &block_mean(&full(l, h).view(), THUMB_SIDE)),
                "L{l} H{h}"
            );
            let (got, want) = (d.stats[l][h], head_stats(&full(l, h).view()));
            assert!(
                (got.entropy - want.entropy).abs() < 1e-5 && (got.prev - want.prev).abs() < 1e-6
            );
        }
    }
    assert_eq!(d.pattern_counts, kept.pattern_counts);
    let ov = {
        app.view = View::Overview;
        let s = screen(&app);
        app.view = View::Grid;
        s
    };
    assert!(
        ov.contains("2 layers × 3 heads ·") && !ov.contains("long input: thumbnails"),
        "{ov}"
    );

    // Paging to another head asks for it (and only it); it arrives equal to the kept one.
    assert_eq!(
        settle(&mut app, m.as_ref(), tight, Event::key(KeyCode::Down)),
        1
    );
    assert_eq!((app.sel.layer, app.sel.head), (1, 0));
    assert!(close(&app.grid.matrix, &full(1, 0)));
    // Back to a head seen before: kept, nothing recomputed.
    assert_eq!(
        settle(&mut app, m.as_ref(), tight, Event::key(KeyCode::Up)),
        0
    );
    assert!(close(&app.grid.matrix, &full(0, 0)));

    // What needs every head at once says why not; the views that need none work.
    for (key, says) in [
        ('a', "the mean over heads: not on a long input"),
        ('v', "the value-weighted grid: not on a long input"),
        ('E', "the computation views: not on a long input"),
        ('S', "interventions and rollout: not on a long input"),
        ('D', "attn dump --attn-layers L --attn-heads H"),
    ] {
        settle(&mut app, m.as_ref(), tight, Event::ch(key));
        let st = app
            .status
            .as_ref()
            .map(|s| s.text.clone())
            .unwrap_or_default();
        assert!(st.contains(says), "{key}: {st}");
        assert_eq!(app.view, View::Grid, "{key}");
        assert!(!app.sel.mean);
    }
    for key in ['p', 'p', 'n', 'n', 'e', 'e', 'm', 'm'] {
        settle(&mut app, m.as_ref(), tight, Event::ch(key));
        let s = screen(&app);
        assert!(!s.contains("not on a long input") || key == 'p', "{key}");
    }
    // A new text starts over: the kept heads and thumbnails belong to the old run.
    app.input.lines[0] = attn::tui::app::LineEdit::new("short now");
    let fx = app.start(Instant::now());
    assert_eq!(fx.len(), 1);
    let Some(Effect::Job(j)) = fx.into_iter().next() else {
        panic!()
    };
    let ev = worker::run_job_within(m.as_ref(), j, u64::MAX, None);
    settle(&mut app, m.as_ref(), u64::MAX, ev);
    assert!(!app.data.as_ref().unwrap().lazy && app.long.thumbs.is_empty());
}

/// The real binary in tmux on SmolLM2 at ~2,500 tokens (over the default budget for keeping every head: 6.7 GB):
/// the first grid, a head switch and the whole overview, within a stated peak memory read from /proc.
#[test]
fn smollm2_explorer_on_2500_tokens_in_a_terminal_stays_within_memory() {
    use common::tmux::{Session, tmux_ok};
    let Some(gguf) = common::real_model("smollm2.gguf") else {
        return;
    };
    if !tmux_ok() {
        return;
    }
    const BUDGET_MIB: u64 = 1024;
    let dir = tempfile::tempdir().unwrap();
    let text =
        "Attention lets every token look at every earlier token, and a long input tests memory. "
            .repeat(145);
    let text_file = dir.path().join("text");
    std::fs::write(&text_file, &text).unwrap();
    let cmd = format!(
        "RAYON_NUM_THREADS=2 exec '{}' --model '{}' --text \"$(cat '{}')\"",
        env!("CARGO_BIN_EXE_attn"),
        gguf.display(),
        text_file.display()
    );
    let s = Session::start("attn-long", 140, 44, &[&cmd]);
    let screen = s.wait_for(
        &["long input:", "attention is computed one head at a time"],
        180,
    );
    // The status line: "long input: N tokens; …".
    let n: usize = screen
        .split("long input: ")
        .find_map(|r| r.split(' ').next().and_then(|t| t.parse().ok()))
        .unwrap_or(0);
    assert!(n > 2400, "expected ~2,500 tokens, read {n}: {screen}");
    s.send(&["Enter"]);
    s.wait_for(
        &["Attention · layer 0 · head 0", &format!("rank 1 of {n}")],
        60,
    );
    s.send(&["Right"]);
    s.wait_for(&["Attention · layer 0 · head 1", &format!("of {n}")], 60);
    s.send(&["m"]);
    let ov = s.wait_for(&["Model overview · 30 layers × 9 heads"], 30);
    assert!(ov.contains("thumbnails") || !ov.contains('…'), "{ov}");
    let pid: u32 = s.format("#{pane_pid}").trim().parse().expect("pane pid");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("the explorer runs");
    let kib: u64 = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .expect("VmHWM");
    eprintln!("explorer, SmolLM2, {n} tokens: peak RSS {} MiB", kib / 1024);
    assert!(
        kib / 1024 <= BUDGET_MIB,
        "peak RSS {} MiB over {BUDGET_MIB} MiB",
        kib / 1024
    );
    s.send(&["q"]);
}
