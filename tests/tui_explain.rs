//! The explanation views in the explorer: each one key away, computed on the worker from one captured layer,
//! snapshots at 80×24 and 200×60 (the tiny textbook decoder on "I love AI", with a masked cell, and the tiny
//! Llama fixture: rotary, grouped-query), and the value-weighted grid mode.

mod common;

use attn::model::{self, Model, TextbookConfig};
use attn::tui::app::{App, Effect, Focus, Palette, Summary, View};
use attn::tui::event::Event;
use attn::tui::worker::{Outcome, run_job};
use attn::tui::{self, ui};
use crossterm::event::KeyCode;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use std::time::{Duration, Instant};

fn tiny_textbook() -> Box<dyn Model> {
    model::load(
        "textbook",
        &TextbookConfig {
            layers: 2,
            heads: 2,
            d_model: 8,
            d_ff: 16,
            causal: true,
            ..Default::default()
        },
    )
    .unwrap()
}

fn app_for(m: &dyn Model, text: &str, size: (u16, u16)) -> App {
    let mut app = tui::new_app(m.info(), text, None, Palette::Mono, size);
    // The user's own sentence, not the sample placeholder.
    app.input.fresh = false;
    app.start(Instant::now());
    let mut trace = model::run(m, text, None, &Default::default()).unwrap();
    trace.elapsed = Duration::ZERO;
    let g = app.runs.generation;
    app.update(
        Event::Traced(Box::new(Outcome {
            generation: g,
            result: Summary::new(trace),
            total: Duration::ZERO,
        })),
        Instant::now(),
    );
    app.focus = Focus::Explorer;
    app
}

/// Press a key and run every job it asks for on this thread (as the worker would), feeding the results back.
fn press(app: &mut App, m: &dyn Model, code: KeyCode) -> usize {
    let mut fx = app.update(Event::key(code), Instant::now());
    let mut jobs = 0;
    while let Some(e) = fx.pop() {
        if let Effect::Job(j) = e {
            jobs += 1;
            let mut ev = run_job(m, j, None);
            if let Event::Explained(x) = &mut ev {
                x.elapsed = Duration::ZERO;
            }
            fx.extend(app.update(ev, Instant::now()));
        }
    }
    jobs
}

fn screen(app: &App) -> String {
    let mut t = Terminal::new(TestBackend::new(app.size.0, app.size.1)).unwrap();
    t.draw(|f| ui::draw(f, app)).unwrap();
    t.backend().to_string()
}

fn snap_both(name: &str, app: &mut App) {
    for (w, h) in [(80u16, 24u16), (200, 60)] {
        app.update(Event::Resize(w, h), Instant::now());
        insta::assert_snapshot!(format!("{name}_{w}x{h}"), screen(app));
    }
}

#[test]
fn the_tiny_textbook_on_i_love_ai_every_view() {
    let m = tiny_textbook();
    let mut app = app_for(m.as_ref(), "I love AI", (80, 24));
    // The cursor on query 1 «i», key 3 «ai»: a masked cell of the decoder.
    app.grid.cur = (1, 3);
    app.refresh();
    assert_eq!(press(&mut app, m.as_ref(), KeyCode::Char('E')), 1);
    assert_eq!(app.view, View::Weight);
    let s = screen(&app);
    assert!(s.contains("masked: key 3 comes after query 1"), "{s}");
    snap_both("explain_weight_masked", &mut app);
    // Another cell of the same layer: computed from the captured layer (the trace sent back carries it).
    app.update(Event::Resize(80, 24), Instant::now());
    assert_eq!(press(&mut app, m.as_ref(), KeyCode::Char('h')), 1);
    let r = app.explain.result.as_ref().unwrap();
    assert!(r.captured.captures.q(app.sel.layer).is_some());
    let w = r.weight.as_ref().unwrap();
    let att = app.data.as_ref().unwrap().att(app.sel.layer).unwrap();
    assert!(
        (w.weight - att[[app.sel.head, 1, 2]]).abs() < 1e-6,
        "the grid's weight"
    );
    snap_both("explain_weight", &mut app);
    press(&mut app, m.as_ref(), KeyCode::Char('o'));
    assert_eq!(app.view, View::Writes);
    snap_both("explain_writes", &mut app);
    press(&mut app, m.as_ref(), KeyCode::Char('t'));
    assert!(screen(&app).contains("through W_O"));
    snap_both("explain_writes_wo", &mut app);
    press(&mut app, m.as_ref(), KeyCode::Char('b'));
    assert_eq!(app.view, View::Embedding);
    snap_both("explain_embedding", &mut app);
    press(&mut app, m.as_ref(), KeyCode::Char('B'));
    assert_eq!(app.view, View::Walk);
    snap_both("explain_walk", &mut app);
    // Esc back to the grid; v turns on the value-weighted mode.
    press(&mut app, m.as_ref(), KeyCode::Esc);
    assert_eq!(app.view, View::Grid);
    let before = app.grid.matrix.clone();
    press(&mut app, m.as_ref(), KeyCode::Char('v'));
    assert_ne!(
        app.grid.matrix, before,
        "the grid shows value-weighted attention"
    );
    for r in app.grid.matrix.rows() {
        assert!((r.sum() - 1.0).abs() < 1e-5, "rows normalised");
    }
    assert!(screen(&app).contains("value-weighted"));
    snap_both("explain_value_weighted_grid", &mut app);
    // Changing the layer recomputes it.
    assert_eq!(press(&mut app, m.as_ref(), KeyCode::Down), 1);
    press(&mut app, m.as_ref(), KeyCode::Char('v'));
    assert!(screen(&app).contains("attention"));
}

#[test]
fn a_rotary_grouped_query_model() {
    // Tests run in the package root, so the relative spec (shown in the status line) is the same on every machine.
    let m = model::load("fixtures/tiny-llama.gguf", &TextbookConfig::default()).unwrap();
    let mut app = app_for(m.as_ref(), "hello world", (200, 60));
    app.grid.cur = (2, 1);
    app.sel.head = 4;
    app.refresh();
    press(&mut app, m.as_ref(), KeyCode::Char('E'));
    let s = screen(&app);
    assert!(s.contains("rotary: q and k below are rotated"), "{s}");
    assert!(s.contains("k and v from KV head 1"), "{s}");
    snap_both("explain_weight_rotary", &mut app);
    press(&mut app, m.as_ref(), KeyCode::Char('b'));
    assert!(screen(&app).contains("rotary: nothing is added here"));
    press(&mut app, m.as_ref(), KeyCode::Char('B'));
    let s = screen(&app);
    assert!(
        s.contains("RMSNorm") && s.contains("silu(gate) · up"),
        "{s}"
    );
}
