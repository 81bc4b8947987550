//! The explorer's speed: drawing one frame at 200×60, and a keystroke to an updated grid (edit + tokenize + forward +
//! analysis + draw) for the model named by ATTN_BENCH_MODEL (default `textbook`; `minilm`, `smollm2` when fetched).
//!
//!     cargo bench --bench tui -- --warm-up-time 1 --measurement-time 3
//!     ATTN_BENCH_MODEL=minilm cargo bench --bench tui -- keystroke

use attn::model::{self, Model, TextbookConfig};
use attn::tui::app::{App, Focus, Palette};
use attn::tui::event::Event;
use attn::tui::worker::{self, Outcome};
use attn::tui::{self, ui};
use criterion::{Criterion, criterion_group, criterion_main};
use crossterm::event::KeyCode;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use std::hint::black_box;
use std::time::{Duration, Instant};

const SHORT: &str = "The quick brown fox jumps over the lazy dog because it was tired of waiting.";

fn long_text() -> String {
    // About 60 tokens with any of the tokenizers.
    "In the beginning the model reads every word, then it decides which earlier words matter for the next one, \
     and the attention heads in each layer look at different things: the previous token, the first token, \
     punctuation, or the subject of the sentence."
        .to_string()
}

fn load() -> (String, Box<dyn Model>) {
    let spec = std::env::var("ATTN_BENCH_MODEL").unwrap_or_else(|_| "textbook".into());
    let m = model::load(&spec, &TextbookConfig::default())
        .unwrap_or_else(|e| panic!("ATTN_BENCH_MODEL={spec}: {e}"));
    (spec, m)
}

fn ready_app(m: &dyn Model, text: &str, size: (u16, u16)) -> App {
    let mut app = tui::new_app(m.info(), text, None, Palette::TrueColor, size);
    app.start(Instant::now());
    let prepared = worker::prepare(m, text, None, None).unwrap();
    app.update(
        Event::Traced(Box::new(Outcome {
            generation: app.runs.generation,
            result: Ok(prepared),
            total: Duration::ZERO,
        })),
        Instant::now(),
    );
    app.focus = Focus::Explorer;
    app
}

fn bench_draw(c: &mut Criterion) {
    let (spec, m) = load();
    let mut term = Terminal::new(TestBackend::new(200, 60)).unwrap();
    for text in [SHORT.to_string(), long_text()] {
        let mut app = ready_app(m.as_ref(), &text, (200, 60));
        let n = app.grid.visible.len();
        c.bench_function(&format!("draw grid 200x60 {spec} {n} tokens"), |b| {
            b.iter(|| {
                term.draw(|f| ui::draw(f, black_box(&app))).unwrap();
            })
        });
        app.update(Event::key(KeyCode::Char('m')), Instant::now());
        c.bench_function(&format!("draw overview 200x60 {spec} {n} tokens"), |b| {
            b.iter(|| {
                term.draw(|f| ui::draw(f, black_box(&app))).unwrap();
            })
        });
        app.update(Event::key(KeyCode::Char('m')), Instant::now());
        app.update(Event::key(KeyCode::Char('p')), Instant::now());
        c.bench_function(&format!("draw positions 200x60 {spec} {n} tokens"), |b| {
            b.iter(|| {
                term.draw(|f| ui::draw(f, black_box(&app))).unwrap();
            })
        });
    }
}

fn bench_keystroke(c: &mut Criterion) {
    let (spec, m) = load();
    let mut term = Terminal::new(TestBackend::new(200, 60)).unwrap();
    for (name, text) in [("short", SHORT.to_string()), ("long", long_text())] {
        let mut app = ready_app(m.as_ref(), &text, (200, 60));
        app.focus = Focus::Input;
        app.input.fresh = false;
        let n = app.grid.visible.len();
        let mut flip = false;
        c.bench_function(
            &format!("keystroke to grid {spec} {name} ({n} tokens)"),
            |b| {
                b.iter(|| {
                    // Alternately type a letter and delete it, so the text stays the same length.
                    flip = !flip;
                    let k = if flip {
                        KeyCode::Char('s')
                    } else {
                        KeyCode::Backspace
                    };
                    app.update(Event::key(k), Instant::now());
                    let text = app.input.lines[0].text.clone();
                    let t0 = Instant::now();
                    let result = worker::prepare(m.as_ref(), &text, None, None);
                    let generation = app.runs.generation + 1;
                    app.runs.generation = generation;
                    app.runs.busy_since = Some(Instant::now());
                    app.runs.run_at = None;
                    app.update(
                        Event::Traced(Box::new(Outcome {
                            generation,
                            result,
                            total: t0.elapsed(),
                        })),
                        Instant::now(),
                    );
                    term.draw(|f| ui::draw(f, &app)).unwrap();
                })
            },
        );
    }
}

criterion_group!(benches, bench_draw, bench_keystroke);
criterion_main!(benches);
