//! The explorer, headless: whole-screen snapshots of every view at several sizes (TestBackend + insta), scripted key
//! sequences through the real run loop and worker, and the robustness cases (tiny terminals, resize storms, wide and
//! control characters, model errors, failed dumps).

mod common;

use attn::model::{self, Model, TextbookConfig};
use attn::tui::app::{App, Focus, Lens, Palette, Summary, View};
use attn::tui::event::{Event, ScriptSource};
use attn::tui::synthetic::{self, Kind};
use attn::tui::worker::{Outcome, Worker};
use attn::tui::{self, ui};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers, MouseButton, MouseEvent, MouseEventKind};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

fn textbook() -> Arc<dyn Model> {
    static M: OnceLock<Arc<dyn Model>> = OnceLock::new();
    M.get_or_init(|| Arc::from(model::load("textbook", &TextbookConfig::default()).unwrap()))
        .clone()
}

/// A finished run with timings zeroed, so screens are reproducible.
fn outcome(trace: attn::trace::Trace, generation: u64) -> Event {
    let mut trace = trace;
    trace.elapsed = Duration::ZERO;
    Event::Traced(Box::new(Outcome {
        generation,
        result: Summary::new(trace),
        total: Duration::ZERO,
    }))
}

/// An app that has run `text` on the textbook model.
fn textbook_app(text: &str, text_b: Option<&str>, size: (u16, u16), color: Palette) -> App {
    let m = textbook();
    let mut app = tui::new_app(m.info(), text, text_b, color, size);
    let fx = app.start(Instant::now());
    assert_eq!(fx.len(), 1, "the first run is asked for");
    let trace = model::run(m.as_ref(), text, text_b, &Default::default()).unwrap();
    app.update(outcome(trace, app.runs.generation), Instant::now());
    assert!(app.data.is_some() && !app.busy());
    app.focus = Focus::Explorer;
    app
}

fn synthetic_app(kind: Kind, words: &[&str], size: (u16, u16)) -> App {
    let mut app = tui::new_app(
        &synthetic::info(kind),
        &words.join(" "),
        None,
        Palette::TrueColor,
        size,
    );
    app.start(Instant::now());
    app.update(
        outcome(synthetic::trace(kind, words), app.runs.generation),
        Instant::now(),
    );
    app.focus = Focus::Explorer;
    app
}

fn screen(app: &App) -> String {
    let mut t = Terminal::new(TestBackend::new(app.size.0, app.size.1)).unwrap();
    t.draw(|f| ui::draw(f, app)).unwrap();
    t.backend().to_string()
}

fn key(app: &mut App, code: KeyCode) -> Vec<attn::tui::app::Effect> {
    app.update(Event::key(code), Instant::now())
}

fn resize(app: &mut App, w: u16, h: u16) {
    app.update(Event::Resize(w, h), Instant::now());
}

const SIZES: [(u16, u16); 4] = [(80, 24), (200, 60), (40, 12), (20, 6)];

fn snap_all(name: &str, app: &mut App) {
    for (w, h) in SIZES {
        resize(app, w, h);
        insta::assert_snapshot!(format!("{name}_{w}x{h}"), screen(app));
    }
}

#[test]
fn grid_view_snapshots() {
    let mut app = textbook_app(
        "The cat sat on the mat.",
        None,
        (80, 24),
        Palette::TrueColor,
    );
    snap_all("grid", &mut app);
}

#[test]
fn grid_without_colour_uses_shades() {
    let mut app = textbook_app("The cat sat on the mat.", None, (80, 24), Palette::Mono);
    let s = screen(&app);
    assert!(
        s.contains('░') || s.contains('▒') || s.contains('▓') || s.contains('█'),
        "{s}"
    );
    insta::assert_snapshot!("grid_mono_80x24", s);
    key(&mut app, KeyCode::Char('z'));
    insta::assert_snapshot!("grid_mono_zoom_80x24", screen(&app));
}

#[test]
fn overview_snapshots() {
    let mut app = textbook_app(
        "The cat sat on the mat.",
        None,
        (80, 24),
        Palette::TrueColor,
    );
    key(&mut app, KeyCode::Char('m'));
    assert_eq!(app.view, View::Overview);
    snap_all("overview", &mut app);
}

#[test]
fn positional_snapshots() {
    let mut app = textbook_app(
        "The cat sat on the mat.",
        None,
        (80, 24),
        Palette::TrueColor,
    );
    key(&mut app, KeyCode::Char('p'));
    snap_all("positional", &mut app);
}

#[test]
fn norms_snapshots() {
    let mut app = textbook_app(
        "The cat sat on the mat.",
        None,
        (80, 24),
        Palette::TrueColor,
    );
    key(&mut app, KeyCode::Char('n'));
    snap_all("norms", &mut app);
}

#[test]
fn help_snapshots() {
    let mut app = textbook_app(
        "The cat sat on the mat.",
        None,
        (80, 24),
        Palette::TrueColor,
    );
    key(&mut app, KeyCode::Char('?'));
    assert!(app.help.open);
    snap_all("help", &mut app);
    // Every key of the list is on the big screen.
    resize(&mut app, 200, 60);
    let s = screen(&app);
    for (k, _) in attn::tui::keymap::help_lines() {
        if let Some(k) = k {
            assert!(s.contains(&k), "help lacks {k}");
        }
    }
    // On a small terminal the help scrolls with ↓/↑ (the last key comes into view).
    resize(&mut app, 80, 24);
    assert!(!screen(&app).contains("Logit lens (e)"));
    for _ in 0..80 {
        key(&mut app, KeyCode::Down);
    }
    let s = screen(&app);
    assert!(
        app.help.open && s.contains("Logit lens (e)") && s.contains(" end "),
        "{s}"
    );
    insta::assert_snapshot!("help_scrolled_80x24", s);
    key(&mut app, KeyCode::Char('x'));
    assert!(
        !app.help.open && !app.grid.hide_special,
        "a key closes help and does nothing else"
    );
}

#[test]
fn korean_sentence_stays_aligned() {
    let text = "안녕하세요 세계 🤖 中文 e\u{301}";
    let mut app = textbook_app(text, None, (80, 24), Palette::TrueColor);
    let s = screen(&app);
    insta::assert_snapshot!("korean_80x24", s);
    resize(&mut app, 120, 40);
    insta::assert_snapshot!("korean_120x40", screen(&app));
    // The uncased tokenizer splits Hangul into jamo; lone vowel/final jamo (zero width on their own) are shown as
    // their visible compatibility forms, so "##ᅡ" reads "##ㅏ" and takes the columns it is measured to take.
    let t = app.trace().unwrap();
    assert!(t.tokens.iter().any(|t| t.label == "##ㅏ"), "{:?}", t.tokens);
    let s = screen(&app);
    assert!(s.contains("中") && s.contains("##ㅏ"), "{s}");
    for line in s.lines() {
        let inner = line.split("\" Hidden by").next().unwrap().trim_matches('"');
        assert_eq!(unicode_width::UnicodeWidthStr::width(inner), 120, "{inner}");
    }
}

#[test]
fn sentence_pair_has_a_second_input_line() {
    // Sentence B is for models with token types (BERT): the synthetic encoder is one.
    let mut app = tui::new_app(
        &synthetic::info(Kind::Encoder),
        "a cat",
        Some("a dog"),
        Palette::TrueColor,
        (80, 24),
    );
    app.start(Instant::now());
    app.update(
        outcome(
            synthetic::trace(Kind::Encoder, &["a", "cat"]),
            app.runs.generation,
        ),
        Instant::now(),
    );
    app.focus = Focus::Explorer;
    let s = screen(&app);
    assert!(s.contains("A ❯ a cat") && s.contains("B ❯ a dog"), "{s}");
    // Editing B from the input: ↓ moves to B, typing appends, Enter runs with both.
    key(&mut app, KeyCode::Tab);
    key(&mut app, KeyCode::Down);
    for c in "gy".chars() {
        key(&mut app, KeyCode::Char(c));
    }
    let fx = key(&mut app, KeyCode::Enter);
    match &fx[..] {
        [attn::tui::app::Effect::Job(attn::tui::worker::Job::Run { text, text_b, .. })] => {
            assert_eq!(text, "a cat");
            assert_eq!(text_b.as_deref(), Some("a doggy"));
        }
        other => panic!("{other:?}"),
    }
    insta::assert_snapshot!("pair_80x24", s);
}

#[test]
fn decoders_are_not_offered_sentence_b() {
    let mut app = synthetic_app(Kind::Llama, &["Hello", "world"], (80, 24));
    key(&mut app, KeyCode::Tab);
    assert_eq!(app.focus, Focus::Input);
    key(&mut app, KeyCode::Down);
    assert_eq!(app.input.field, 0, "↓ does nothing on a decoder");
    key(&mut app, KeyCode::Char('x'));
    assert_eq!(app.input.lines[1].text, "");
    let s = screen(&app);
    assert!(!s.contains("B ❯") && !s.contains("sentence B/A"), "{s}");
    // Even a B text given at start is never sent to a model without segments.
    let mut app = tui::new_app(
        &synthetic::info(Kind::Gpt2),
        "Hello",
        Some("world"),
        Palette::Mono,
        (80, 24),
    );
    match &app.start(Instant::now())[..] {
        [attn::tui::app::Effect::Job(attn::tui::worker::Job::Run { text_b, .. })] => {
            assert_eq!(text_b, &None)
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn decoder_views_with_gqa_rope_next_tokens_and_lens() {
    let words = ["The", "cat", "sat", "on", "the", "mat"];
    let mut app = synthetic_app(Kind::Llama, &words, (120, 40));
    let s = screen(&app);
    assert!(s.contains("0, shared by query heads 0, 1"), "{s}");
    assert!(s.contains("next after"), "{s}");
    insta::assert_snapshot!("llama_grid_120x40", s);
    // Head 0 of layer 0 is a previous-token head; the tag says so.
    assert!(s.contains("previous-token head"), "{s}");
    key(&mut app, KeyCode::Right);
    key(&mut app, KeyCode::Right);
    let s = screen(&app);
    assert!(s.contains("1, shared by query heads 2, 3"), "{s}");
    key(&mut app, KeyCode::Char('p'));
    let s = screen(&app);
    assert!(s.contains("rotation angle per frequency pair"), "{s}");
    insta::assert_snapshot!("llama_positional_120x40", s);
    key(&mut app, KeyCode::Char('p'));
    // The logit lens asks the worker, then shows what comes back.
    let fx = key(&mut app, KeyCode::Char('e'));
    assert_eq!(app.view, View::Lens);
    let (generation, pos) = match &fx[..] {
        [
            attn::tui::app::Effect::Job(attn::tui::worker::Job::Lens {
                generation, pos, ..
            }),
        ] => (*generation, *pos),
        other => panic!("{other:?}"),
    };
    assert!(screen(&app).contains("computing the logit lens"));
    let rows = (0..synthetic::LAYERS)
        .map(|l| {
            vec![attn::trace::TopToken {
                id: 1,
                text: format!(" guess{l}"),
                prob: 0.25 + 0.25 * l as f32,
            }]
        })
        .collect();
    app.update(
        Event::Lens(Box::new(attn::tui::worker::LensOutcome {
            generation,
            pos,
            rows: Some(rows),
        })),
        Instant::now(),
    );
    let s = screen(&app);
    assert!(s.contains("guess0") && s.contains("guess1"), "{s}");
    insta::assert_snapshot!("llama_lens_120x40", s);
    // j moves the position and asks again.
    let fx = key(&mut app, KeyCode::Char('k'));
    assert!(
        matches!(
            &fx[..],
            [attn::tui::app::Effect::Job(
                attn::tui::worker::Job::Lens { .. }
            )]
        ),
        "{fx:?}"
    );
    assert!(matches!(app.lens, Some(Lens { rows: None, .. })));
}

#[test]
fn gpt2_like_learned_positions_and_every_size() {
    let words = ["Hello", ",", "world", "!"];
    let mut app = synthetic_app(Kind::Gpt2, &words, (80, 24));
    key(&mut app, KeyCode::Char('p'));
    let s = screen(&app);
    assert!(s.contains("Positional (learned)"), "{s}");
    insta::assert_snapshot!("gpt2_positional_80x24", s);
    key(&mut app, KeyCode::Char('p'));
    for v in ['m', 'm', 'n', 'n', 'e', 'e'] {
        key(&mut app, KeyCode::Char(v));
        for (w, h) in SIZES {
            resize(&mut app, w, h);
            screen(&app);
        }
    }
    resize(&mut app, 200, 60);
    insta::assert_snapshot!("gpt2_grid_200x60", screen(&app));
}

#[test]
fn encoders_have_no_logit_lens() {
    let mut app = synthetic_app(Kind::Encoder, &["a", "b"], (80, 24));
    let fx = key(&mut app, KeyCode::Char('e'));
    assert!(fx.is_empty());
    assert_eq!(app.view, View::Grid);
    assert!(app.status.as_ref().unwrap().text.contains("decoder"));
}

#[test]
fn long_sequences_scroll_and_zoom_out() {
    let text = (0..60)
        .map(|i| format!("w{i}"))
        .collect::<Vec<_>>()
        .join(" ");
    let mut app = textbook_app(&text, None, (80, 24), Palette::TrueColor);
    let n = app.grid.visible.len();
    assert!(n > 60);
    let s = screen(&app);
    assert!(s.contains(&format!("of {n}")), "position indicator: {s}");
    key(&mut app, KeyCode::End);
    assert_eq!(app.grid.cur, (n - 1, n - 1));
    let (rows, cols) = attn::tui::app::layout::grid_capacity(&app);
    assert_eq!(app.grid.scroll, (n - rows, n - cols));
    let s = screen(&app);
    assert!(s.contains(&format!("{}", n - 1)), "{s}");
    insta::assert_snapshot!("long_end_80x24", s);
    key(&mut app, KeyCode::Char('z'));
    let s = screen(&app);
    assert!(s.contains("zoomed out"), "{s}");
    insta::assert_snapshot!("long_zoom_80x24", s);
    key(&mut app, KeyCode::Home);
    assert_eq!(app.grid.cur, (0, 0));
}

#[test]
fn navigation_wraps_and_number_keys_jump() {
    let mut app = textbook_app("I love AI", None, (80, 24), Palette::TrueColor);
    let (nl, nh) = (app.n_layers(), app.n_heads());
    key(&mut app, KeyCode::Left);
    assert_eq!(app.sel.head, nh - 1);
    key(&mut app, KeyCode::Right);
    assert_eq!(app.sel.head, 0);
    key(&mut app, KeyCode::Up);
    assert_eq!(app.sel.layer, nl - 1);
    key(&mut app, KeyCode::Down);
    assert_eq!(app.sel.layer, 0);
    key(&mut app, KeyCode::Char('5'));
    assert_eq!(app.sel.head, 5);
    key(&mut app, KeyCode::Char('g'));
    key(&mut app, KeyCode::Char('3'));
    assert_eq!((app.sel.layer, app.sel.head), (3, 5));
    assert!(screen(&app).contains(&format!("Layer 3 of 0–{} · Head 5 of 0–{}", nl - 1, nh - 1)));
    key(&mut app, KeyCode::Char('a'));
    assert!(app.sel.mean);
    let s = screen(&app);
    assert!(
        s.contains("mean of 8 heads") && s.contains("Head mean of 0–7"),
        "{s}"
    );
    // The mean's rows still sum to 1.
    for r in app.grid.matrix.rows() {
        assert!((r.sum() - 1.0).abs() < 1e-4);
    }
    key(&mut app, KeyCode::Char('s'));
    assert_eq!(app.grid.scale, attn::colormap::Scale::Log);
    key(&mut app, KeyCode::Char('s'));
    assert_eq!(app.grid.scale, attn::colormap::Scale::RowMax);
    key(&mut app, KeyCode::Char('s'));
    assert_eq!(app.grid.scale, attn::colormap::Scale::Linear);
}

#[test]
fn hiding_special_tokens_renormalises() {
    let mut app = textbook_app("I love AI", None, (80, 24), Palette::TrueColor);
    assert_eq!(app.grid.visible.len(), 5);
    key(&mut app, KeyCode::Char('x'));
    assert_eq!(app.grid.visible, vec![1, 2, 3]);
    assert_eq!(app.grid.matrix.dim(), (3, 3));
    for r in app.grid.matrix.rows() {
        assert!((r.sum() - 1.0).abs() < 1e-5, "{r}");
    }
    let s = screen(&app);
    assert!(!s.contains("[CLS]") && s.contains("specials hidden"), "{s}");
    insta::assert_snapshot!("hidden_specials_80x24", s);
    assert_eq!(app.head_stem(), "layer00_head00_nospecial");
}

#[test]
fn mouse_click_moves_the_cell_cursor() {
    let mut app = textbook_app("I love AI", None, (80, 24), Palette::TrueColor);
    let g = attn::tui::app::layout::grid_geom(&app, attn::tui::app::layout::grid_panes(&app).grid);
    let click = |col, row| {
        Event::Mouse(MouseEvent {
            kind: MouseEventKind::Down(MouseButton::Left),
            column: col,
            row,
            modifiers: KeyModifiers::NONE,
        })
    };
    app.update(
        click(g.cells.x + 2 * g.cell_w, g.cells.y + 3 * g.row_h),
        Instant::now(),
    );
    assert_eq!(app.grid.cur, (3, 2));
    let s = screen(&app);
    assert!(s.contains("«ai»") && s.contains("«love»"), "{s}");
    // Clicking the input focuses it.
    let input = attn::tui::app::layout::screen(&app).input;
    app.update(click(10, input.y + 1), Instant::now());
    assert_eq!(app.focus, Focus::Input);
}

#[test]
fn tiny_terminals_and_resize_storms_never_panic() {
    let mut app = textbook_app(
        "안녕하세요 🤖 The cat sat on the mat",
        None,
        (20, 6),
        Palette::TrueColor,
    );
    assert!(screen(&app).contains("too small"));
    let mut t = Terminal::new(TestBackend::new(1, 1)).unwrap();
    let views = ['m', 'p', 'n', '?', 'z'];
    let mut x: u32 = 7;
    for i in 0..400u32 {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
        let (w, h) = ((x >> 8) % 230 + 1, (x >> 20) % 70 + 1);
        if i % 37 == 0 {
            let v = views[(i as usize / 37) % views.len()];
            key(&mut app, KeyCode::Char(v));
            if app.help.open {
                key(&mut app, KeyCode::Esc);
            }
        }
        if i % 5 == 0 {
            key(
                &mut app,
                KeyCode::Char(['h', 'j', 'k', 'l'][(i as usize / 5) % 4]),
            );
        }
        resize(&mut app, w as u16, h as u16);
        t.backend_mut().resize(w as u16, h as u16);
        t.draw(|f| ui::draw(f, &app)).unwrap();
    }
}

#[test]
fn input_editing_and_escaped_control_characters() {
    let m = textbook();
    let mut app = tui::new_app(m.info(), "The cat", None, Palette::TrueColor, (80, 24));
    app.start(Instant::now());
    // F1 opens the help from the input too (where `?` types a question mark).
    key(&mut app, KeyCode::F(1));
    assert!(app.help.open);
    key(&mut app, KeyCode::Esc);
    assert!(!app.help.open && app.focus == Focus::Input);
    // The starting text is selected: the first key replaces it.
    key(&mut app, KeyCode::Char('x'));
    assert_eq!(app.input.lines[0].text, "x");
    for c in "yz".chars() {
        key(&mut app, KeyCode::Char(c));
    }
    key(&mut app, KeyCode::Left);
    key(&mut app, KeyCode::Backspace);
    assert_eq!(app.input.lines[0].text, "xz");
    key(&mut app, KeyCode::Home);
    key(&mut app, KeyCode::Delete);
    assert_eq!(app.input.lines[0].text, "z");
    key(&mut app, KeyCode::End);
    app.update(Event::Paste("안녕\n하세요 e\u{301}".into()), Instant::now());
    assert_eq!(app.input.lines[0].text, "z안녕 하세요 e\u{301}");
    // Backspace removes the whole "e + combining accent" grapheme.
    key(&mut app, KeyCode::Backspace);
    assert_eq!(app.input.lines[0].text, "z안녕 하세요 ");
    app.update(Event::ctrl('w'), Instant::now());
    assert_eq!(app.input.lines[0].text, "z안녕 ");
    app.update(Event::Paste("a\u{1b}[31mb".into()), Instant::now());
    let s = screen(&app);
    assert!(s.contains("a\\u{1b}[31mb"), "{s}");
    assert!(!s.contains('\u{1b}'));
    app.update(Event::ctrl('u'), Instant::now());
    assert_eq!(app.input.lines[0].text, "");
    // The cursor sits after the wide characters, measured in columns.
    app.update(Event::Paste("한국".into()), Instant::now());
    let (x, _) = ui::input_cursor(&app).unwrap();
    assert_eq!(x, 1 + 4 + 4, "border + prefix + two wide characters");
    // Typing debounces: a run is asked for only once the pause is long enough.
    let later = Instant::now() + Duration::from_secs(1);
    let fx = app.update(Event::Tick, later);
    assert!(
        matches!(&fx[..], [attn::tui::app::Effect::Job(attn::tui::worker::Job::Run { text, .. })] if text == "한국"),
        "{fx:?}"
    );
}

#[test]
fn stale_results_are_dropped_and_errors_keep_the_app_running() {
    let m = textbook();
    let mut app = tui::new_app(m.info(), "first", None, Palette::TrueColor, (80, 24));
    app.start(Instant::now());
    let first = app.runs.generation;
    key(&mut app, KeyCode::Char('a'));
    let fx = key(&mut app, KeyCode::Enter);
    assert_eq!(fx.len(), 1);
    assert_eq!(app.runs.generation, first + 1);
    // The older run finishing late is ignored; the app keeps waiting for the newer one.
    let old = model::run(m.as_ref(), "first", None, &Default::default()).unwrap();
    app.update(outcome(old, first), Instant::now());
    assert!(app.data.is_none() && app.busy());
    let new = model::run(m.as_ref(), "a", None, &Default::default()).unwrap();
    app.update(outcome(new, app.runs.generation), Instant::now());
    assert_eq!(app.trace().unwrap().text, "a");
    // A model error lands in the status line; the last good trace stays.
    key(&mut app, KeyCode::Tab);
    key(&mut app, KeyCode::Char('b'));
    key(&mut app, KeyCode::Enter);
    app.update(
        Event::Traced(Box::new(Outcome {
            generation: app.runs.generation,
            result: Err("the text is 600 tokens long; textbook takes at most 512".into()),
            total: Duration::ZERO,
        })),
        Instant::now(),
    );
    assert!(!app.busy());
    let st = app.status.clone().unwrap();
    assert!(st.error && st.text.contains("600 tokens"), "{st:?}");
    assert_eq!(app.trace().unwrap().text, "a");
    assert!(screen(&app).contains("600 tokens"));
}

#[test]
fn too_long_text_is_an_error_in_the_status_line() {
    let small: Arc<dyn Model> = Arc::from(
        model::load(
            "textbook",
            &TextbookConfig {
                layers: 1,
                heads: 2,
                d_model: 8,
                d_ff: 16,
                max_len: 6,
                ..Default::default()
            },
        )
        .unwrap(),
    );
    let r = attn::tui::worker::prepare(
        small.as_ref(),
        "one two three four five six seven",
        None,
        None,
    );
    assert!(r.unwrap_err().contains("at most 6"));
}

/// Run the real loop (TestBackend, scripted keys, the real worker thread) and return the app.
fn run_script(
    app: App,
    script: Vec<Event>,
    dump_root: &std::path::Path,
) -> (App, Terminal<TestBackend>) {
    let m = textbook();
    let (tx, rx) = std::sync::mpsc::channel();
    let env = tui::Env {
        model: m.clone().into(),
        worker: Worker::spawn(m, tx),
        dump_root: dump_root.to_path_buf(),
    };
    let mut app = app;
    let mut terminal = Terminal::new(TestBackend::new(app.size.0, app.size.1)).unwrap();
    let mut source = ScriptSource::new(script, rx);
    tui::run(&mut terminal, &mut app, &mut source, &env).unwrap();
    (app, terminal)
}

#[test]
fn scripted_session_types_runs_navigates_opens_and_dumps() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("dumps");
    let app = tui::new_app(
        textbook().info(),
        tui::DEFAULT_TEXT,
        None,
        Palette::TrueColor,
        (100, 30),
    );
    let mut script = Event::typed("I love AI");
    script.extend([
        Event::key(KeyCode::Enter),
        Event::key(KeyCode::Right),
        Event::key(KeyCode::Down),
        Event::ch('m'),
        Event::key(KeyCode::Enter),
        Event::ch('d'),
    ]);
    let (app, terminal) = run_script(app, script, &root);
    assert_eq!(app.input.lines[0].text, "I love AI");
    assert_eq!(app.focus, Focus::Explorer);
    assert_eq!(app.view, View::Grid);
    assert_eq!((app.sel.layer, app.sel.head, app.sel.mean), (1, 1, false));
    let t = app.trace().unwrap();
    let labels: Vec<&str> = t.tokens.iter().map(|t| t.label.as_str()).collect();
    assert_eq!(labels, ["[CLS]", "i", "love", "ai", "[SEP]"]);
    // The dump: one fresh timestamped directory with the head's .npy and .csv.
    let dirs: Vec<_> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    let npy = dirs[0].join("layer01_head01.npy");
    let csv = std::fs::read_to_string(dirs[0].join("layer01_head01.csv")).unwrap();
    assert!(
        csv.starts_with("query\\key,[CLS],i,love,ai,[SEP]\n"),
        "{csv}"
    );
    let arr = common::Npy::read(&npy);
    assert_eq!(arr.shape, vec![5, 5]);
    let vals: Vec<f32> = arr.f32().iter().copied().collect();
    let expect = attn::model::layer_attention(textbook().as_ref(), t, 1).unwrap();
    for (i, v) in expect.index_axis(ndarray::Axis(0), 1).iter().enumerate() {
        assert_eq!(vals[i], *v);
    }
    let status = app.status.clone().unwrap();
    assert!(
        !status.error
            && status.text.contains("wrote")
            && status.text.contains("layer01_head01.npy")
    );
    let s = terminal.backend().to_string();
    assert!(
        s.contains("Layer 1 of 0–5 · Head 1 of 0–7") && s.contains("wrote"),
        "{s}"
    );
}

#[test]
fn dumps_never_overwrite_and_failures_show_in_the_status_line() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("d");
    let app = tui::new_app(
        textbook().info(),
        "I love AI",
        None,
        Palette::TrueColor,
        (100, 30),
    );
    let script = vec![
        Event::key(KeyCode::Tab),
        Event::ch('d'),
        Event::ch('d'),
        Event::ch('D'),
    ];
    let (app, _) = run_script(app, script, &root);
    let mut dirs: Vec<_> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    dirs.sort();
    assert_eq!(dirs.len(), 3, "each dump gets its own directory: {dirs:?}");
    let full = dirs
        .iter()
        .find(|d| d.join("attention.npy").exists())
        .expect("D wrote a full dump");
    for f in [
        "tokens.json",
        "hidden.npy",
        "positional.npy",
        "residual_norms.csv",
        "meta.json",
    ] {
        assert!(full.join(f).exists(), "{f}");
    }
    assert!(app.status.unwrap().text.contains("wrote"));

    // An unwritable dump root (a file) is an error in the status line; the app keeps going.
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, "x").unwrap();
    let app = tui::new_app(
        textbook().info(),
        "I love AI",
        None,
        Palette::TrueColor,
        (100, 30),
    );
    let script = vec![
        Event::key(KeyCode::Tab),
        Event::ch('d'),
        Event::key(KeyCode::Right),
    ];
    let (app, terminal) = run_script(app, script, &file);
    let st = app.status.clone().unwrap();
    assert!(st.error && st.text.contains("dump failed"), "{st:?}");
    assert_eq!(app.sel.head, 1, "still running after the failure");
    assert!(terminal.backend().to_string().contains("dump failed"));
}

#[test]
fn default_model_hint_mentions_random_weights_and_fetching() {
    let app = textbook_app("I love AI", None, (120, 30), Palette::TrueColor);
    let s = screen(&app);
    assert!(
        s.contains("random weights") && s.contains("scripts/fetch-models"),
        "{s}"
    );
    assert!(s.contains("textbook"), "{s}");
}

#[test]
fn ctrl_c_and_q_quit() {
    let mut app = textbook_app("I love AI", None, (80, 24), Palette::TrueColor);
    key(&mut app, KeyCode::Tab);
    key(&mut app, KeyCode::Char('q'));
    assert!(!app.quit, "q types in the input");
    app.update(Event::ctrl('c'), Instant::now());
    assert!(app.quit);
    let mut app = textbook_app("I love AI", None, (80, 24), Palette::TrueColor);
    app.update(
        Event::Key(KeyEvent::new(KeyCode::Char('q'), KeyModifiers::NONE)),
        Instant::now(),
    );
    assert!(app.quit);
}

#[test]
fn real_minilm_in_the_explorer() {
    let Some(dir) = common::real_model("minilm") else {
        return;
    };
    let m: Arc<dyn Model> =
        Arc::from(model::load(dir.to_str().unwrap(), &TextbookConfig::default()).unwrap());
    let text = "The cat sat on the mat because it was tired.";
    let mut app = tui::new_app(m.info(), text, None, Palette::TrueColor, (120, 40));
    assert!(app.hint.is_none(), "real weights: no random-weights hint");
    app.start(Instant::now());
    let prepared = attn::tui::worker::prepare(m.as_ref(), text, None, None).unwrap();
    app.update(
        Event::Traced(Box::new(Outcome {
            generation: app.runs.generation,
            result: Ok(prepared),
            total: Duration::ZERO,
        })),
        Instant::now(),
    );
    app.focus = Focus::Explorer;
    let s = screen(&app);
    assert!(
        s.to_lowercase().contains("minilm") && s.contains("Layer 0 of 0–5 · Head 0 of 0–11"),
        "{s}"
    );
    assert!(s.contains("Positional (learned)"), "{s}");
    // Every head of the real model has rows that sum to 1, and many heads are tagged (sinks on [CLS]/[SEP]).
    let d = app.data.as_ref().unwrap();
    let tagged = d
        .stats
        .iter()
        .flatten()
        .filter(|s| attn::analysis::head_tag(s).is_some())
        .count();
    assert!(tagged > 10, "{tagged}");
    key(&mut app, KeyCode::Char('m'));
    assert!(screen(&app).contains("6 layers × 12 heads"));
}

fn dump_stem(fx: &[attn::tui::app::Effect]) -> (String, Vec<String>, Vec<String>, (usize, usize)) {
    match fx {
        [
            attn::tui::app::Effect::DumpTable {
                stem,
                rows,
                cols,
                matrix,
                ..
            },
        ] => (stem.clone(), rows.clone(), cols.clone(), matrix.dim()),
        other => panic!("{other:?}"),
    }
}

// Issue 9, bug 1: `d` writes what the screen shows; the header follows the overview's selection.
#[test]
fn d_writes_the_selection_on_screen_in_every_view() {
    let mut app = textbook_app("The cat sat on the mat.", None, (120, 40), Palette::Mono);
    key(&mut app, KeyCode::Char('m'));
    for _ in 0..3 {
        key(&mut app, KeyCode::Down);
    }
    for _ in 0..5 {
        key(&mut app, KeyCode::Right);
    }
    let s = screen(&app);
    assert!(s.contains("Layer 3 of 0–5 · Head 5 of 0–7"), "{s}");
    assert!(s.contains("layer 3 · head 5"), "{s}");
    let (stem, rows, _, dim) = dump_stem(&key(&mut app, KeyCode::Char('d')));
    assert_eq!(stem, "layer03_head05");
    let n = app.trace().unwrap().n_tokens();
    assert_eq!(dim, (n, n));
    // Repeated tokens carry their position in the labels (`the#1`, `the#5`).
    assert!(
        rows.contains(&"the#1".to_string()) && rows.contains(&"the#5".to_string()),
        "{rows:?}"
    );
    // `p`: the positional matrix, tokens × dimensions.
    key(&mut app, KeyCode::Char('p'));
    let (stem, rows, cols, dim) = dump_stem(&key(&mut app, KeyCode::Char('d')));
    assert_eq!(stem, "positional_sinusoidal");
    assert_eq!(dim, (n, 512));
    assert_eq!((rows.len(), cols.len()), (n, 512));
    // `n`: the norms of the token under the cursor, layers × 4.
    key(&mut app, KeyCode::Char('n'));
    let (stem, rows, cols, dim) = dump_stem(&key(&mut app, KeyCode::Char('d')));
    assert_eq!(
        stem,
        format!("norms_token{:03}", app.query_token().unwrap())
    );
    assert_eq!(dim, (6, 4));
    assert_eq!(rows[5], "layer5");
    assert_eq!(cols, ["resid_in", "attn_update", "ffn_update", "resid_out"]);
}

// Issue 9, bug 4: a pending `g` prompt is cancelled visibly by any other key; Esc only cancels it.
#[test]
fn a_pending_go_to_prompt_never_goes_stale() {
    let mut app = textbook_app("I love AI", None, (80, 24), Palette::Mono);
    key(&mut app, KeyCode::Char('g'));
    assert!(screen(&app).contains("go to layer"));
    key(&mut app, KeyCode::Esc);
    assert_eq!(app.focus, Focus::Explorer, "Esc only cancels the prompt");
    assert!(app.jump.is_none());
    let s = screen(&app);
    assert!(s.contains("go to layer cancelled"), "{s}");
    key(&mut app, KeyCode::Char('2'));
    assert_eq!(app.sel.head, 2, "a digit after the cancel is a head number");
    assert_eq!(app.input.lines[0].text, "I love AI");
    // `g l`: l cancels the prompt (visibly) and moves the cursor.
    std::thread::sleep(attn::tui::app::JUMP_TIMEOUT);
    app.update(Event::Tick, Instant::now());
    let before = app.grid.cur;
    key(&mut app, KeyCode::Char('g'));
    key(&mut app, KeyCode::Char('l'));
    assert!(app.jump.is_none());
    assert_eq!(app.grid.cur.1, before.1 + 1);
    let s = screen(&app);
    assert!(
        !s.contains("go to layer:") && s.contains("cancelled"),
        "{s}"
    );
}

// Issue 9, bug 5: the positions footer names the rows on screen.
#[test]
fn positions_footer_names_the_rows_shown() {
    let text = (0..30)
        .map(|i| format!("w{i}"))
        .collect::<Vec<_>>()
        .join(" ");
    let mut app = textbook_app(&text, None, (80, 24), Palette::Mono);
    key(&mut app, KeyCode::Char('p'));
    for _ in 0..20 {
        key(&mut app, KeyCode::Char('j'));
    }
    let s = screen(&app);
    let line = s.lines().find(|l| l.contains("rows ")).unwrap();
    let range = line
        .split("rows ")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap();
    let (a, b) = range.split_once('–').unwrap();
    let (a, b): (usize, usize) = (a.parse().unwrap(), b.parse().unwrap());
    assert!(a > 0, "{line}");
    for r in a..=b {
        assert!(
            s.contains(&format!("{r:>3} ")),
            "row {r} is not on screen: {s}"
        );
    }
    assert!(!s.contains(&format!("{:>3} w", a - 1)), "{s}");
    // Fast pan: a screen of dimensions at a time.
    key(&mut app, KeyCode::Char('L'));
    assert_eq!(
        app.panes.pos_scroll,
        attn::tui::app::layout::positional_page(&app)
    );
    key(&mut app, KeyCode::PageUp);
    assert_eq!(app.panes.pos_scroll, 0);
}

// Issue 9: the bottom hint follows the view.
#[test]
fn the_hint_line_follows_the_view() {
    let mut app = textbook_app("I love AI", None, (100, 30), Palette::Mono);
    app.hint = None;
    assert!(screen(&app).contains("←→ head"));
    key(&mut app, KeyCode::Char('p'));
    assert!(screen(&app).contains("pan dimensions"));
    key(&mut app, KeyCode::Char('n'));
    assert!(screen(&app).contains("j/k token"));
    key(&mut app, KeyCode::Char('m'));
    assert!(screen(&app).contains("Enter opens it"));
}

// Issue 9: the sample sentence is a visible placeholder.
#[test]
fn the_sample_sentence_is_a_placeholder() {
    let m = textbook();
    let mut app = tui::new_app(m.info(), tui::DEFAULT_TEXT, None, Palette::Mono, (120, 30));
    app.start(Instant::now());
    let s = screen(&app);
    assert!(s.contains("(sample · typing replaces it)"), "{s}");
    key(&mut app, KeyCode::Char('H'));
    assert_eq!(app.input.lines[0].text, "H");
    assert!(!screen(&app).contains("typing replaces it"));
}

// Issue 9: `x` on a model without special tokens hides the first token; statistics follow what is shown.
#[test]
fn hiding_without_specials_hides_the_first_token_and_stats_follow() {
    let mut app = synthetic_app(Kind::Llama, &["The", "cat", "sat", "on"], (120, 40));
    let specials = app.trace().unwrap().tokens.iter().any(|t| t.special);
    let before = app.current_stats().unwrap();
    key(&mut app, KeyCode::Char('x'));
    let first = if specials {
        "special tokens"
    } else {
        "the first token"
    };
    assert!(
        app.status.as_ref().unwrap().text.contains(first),
        "{:?}",
        app.status
    );
    assert!(
        !app.grid.visible.is_empty() && app.grid.visible.len() < app.trace().unwrap().n_tokens()
    );
    let after = app.current_stats().unwrap();
    assert_eq!(after, attn::analysis::head_stats(&app.grid.matrix.view()));
    assert_ne!(before, after);
}

// Issue 9: no special tokens at all (a plain decoder's first token is the sink) → `x` hides token 0.
#[test]
fn x_hides_the_sink_when_there_are_no_specials() {
    let mut app = synthetic_app(Kind::Gpt2, &["Hello", ",", "world", "!"], (120, 40));
    if let Some(d) = &mut app.data {
        let t = Arc::get_mut(&mut d.trace).unwrap();
        for tok in &mut t.tokens {
            tok.special = false;
        }
    }
    key(&mut app, KeyCode::Char('x'));
    assert!(!app.grid.visible.contains(&0));
    assert_eq!(app.grid.visible.len(), 3);
    assert!(
        app.status
            .as_ref()
            .unwrap()
            .text
            .contains("the first token")
    );
    assert_eq!(app.head_stem(), "layer00_head00_nofirst");
}

// Issue 9: a causal query lists only the tokens it can see.
#[test]
fn causal_where_it_looks_lists_only_visible_keys() {
    let mut app = synthetic_app(Kind::Gpt2, &["a", "b", "c", "d", "e"], (120, 40));
    app.grid.cur = (1, 1);
    app.refresh();
    let lines = ui::panels::focus_lines(&app, 40, 5);
    assert_eq!(lines.len(), 2, "query 1 sees tokens 0 and 1 only");
}

// Issue 9: the norms view offers median / mean without the first token and log bars.
#[test]
fn norms_offer_robust_summaries_and_log_bars() {
    let mut app = textbook_app("I love AI", None, (120, 40), Palette::Mono);
    key(&mut app, KeyCode::Char('n'));
    assert!(screen(&app).contains("mean over tokens"));
    key(&mut app, KeyCode::Char('o'));
    assert!(screen(&app).contains("median over tokens"));
    key(&mut app, KeyCode::Char('o'));
    assert!(screen(&app).contains("mean without the first token"));
    key(&mut app, KeyCode::Char('b'));
    assert!(screen(&app).contains("log (4 decades)"));
}

// Issue 9: the overview's thumbnails take the width; per-layer counts list every layer.
#[test]
fn overview_fills_the_width_and_counts_every_layer() {
    let m: Arc<dyn Model> = Arc::from(
        model::load(
            "textbook",
            &TextbookConfig {
                layers: 30,
                heads: 9,
                d_model: 36,
                d_ff: 16,
                ..Default::default()
            },
        )
        .unwrap(),
    );
    let text = "the cat sat on the mat";
    let mut app = tui::new_app(m.info(), text, None, Palette::Mono, (120, 40));
    app.start(Instant::now());
    let trace = model::run(m.as_ref(), text, None, &Default::default()).unwrap();
    app.update(outcome(trace, app.runs.generation), Instant::now());
    app.focus = Focus::Explorer;
    key(&mut app, KeyCode::Char('m'));
    let g = attn::tui::app::layout::overview_geom(&app);
    assert!(
        g.step_w as usize * 9 * 10 >= 114 * 7,
        "thumbnails use at least 70% of the width: {g:?}"
    );
    assert!(g.layers >= 4);
    let d = app.data.as_ref().unwrap();
    assert_eq!(d.pattern_counts.len(), 30);
}

// Issue 9, progress: a long forward shows which layer it is in.
#[test]
fn a_running_forward_shows_its_layer() {
    let m = textbook();
    let mut app = tui::new_app(m.info(), "I love AI", None, Palette::Mono, (100, 30));
    app.start(Instant::now());
    let generation = app.runs.generation;
    app.update(
        Event::Progress {
            generation,
            done: 2,
            total: 6,
        },
        Instant::now(),
    );
    let s = screen(&app);
    assert!(s.contains("layer 3 of 6"), "{s}");
    // Progress of an older run is ignored.
    app.update(
        Event::Progress {
            generation: generation - 1,
            done: 5,
            total: 6,
        },
        Instant::now(),
    );
    assert_eq!(app.runs.progress, Some((2, 6)));
}

// The worker reports progress per block through the event channel.
#[test]
fn the_worker_reports_progress_per_block() {
    let m = textbook();
    let (tx, rx) = std::sync::mpsc::channel();
    let ev = attn::tui::worker::run_job(
        m.as_ref(),
        attn::tui::worker::Job::Run {
            generation: 7,
            text: "I love AI".into(),
            text_b: None,
        },
        Some(&tx),
    );
    assert!(matches!(ev, Event::Traced(_)));
    let steps: Vec<(usize, usize)> = rx
        .try_iter()
        .filter_map(|e| match e {
            Event::Progress {
                generation: 7,
                done,
                total,
            } => Some((done, total)),
            _ => None,
        })
        .collect();
    assert_eq!(steps.last(), Some(&(6, 6)), "{steps:?}");
    assert!(steps.len() >= 6, "{steps:?}");
}

// Issue 9: clicking anywhere on the sentence box focuses it; one token is "1 token".
#[test]
fn clicking_the_sentence_box_focuses_it() {
    let mut app = textbook_app("I love AI", None, (100, 30), Palette::Mono);
    let input = attn::tui::app::layout::screen(&app).input;
    app.update(
        Event::Mouse(MouseEvent {
            kind: MouseEventKind::Down(MouseButton::Left),
            column: 60,
            row: input.y,
            modifiers: KeyModifiers::NONE,
        }),
        Instant::now(),
    );
    assert_eq!(app.focus, Focus::Input);
}

// Issue 9, bug 7 and the keymap: README's key table is the keymap's, and its links resolve.
#[test]
fn readme_key_table_is_the_keymap() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let table = attn::tui::keymap::markdown();
    assert!(
        readme.contains(&table),
        "README's key table differs from the keymap; paste this:\n{table}"
    );
    for (i, _) in readme.match_indices("](") {
        let rest = &readme[i + 2..];
        let target = &rest[..rest.find(')').unwrap()];
        if target.starts_with("http") || target.starts_with('#') {
            continue;
        }
        let path = target.split('#').next().unwrap();
        assert!(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join(path)
                .exists(),
            "README links to {target}, which does not exist"
        );
    }
}

// Issue 9, positions: a value axis on the bars, the RoPE plot uses the width, the learned colour scale is the data's.
#[test]
fn positions_have_an_axis_use_the_width_and_follow_the_data() {
    let mut app = synthetic_app(Kind::Llama, &["The", "cat", "sat", "on"], (120, 40));
    key(&mut app, KeyCode::Char('p'));
    let s = screen(&app);
    assert!(s.contains("full bar 2π"), "{s}");
    let lines: Vec<&str> = s.lines().collect();
    let note = lines
        .iter()
        .position(|l| l.contains("full bar 2π"))
        .unwrap();
    // The bottom bar row: 4 pairs, each widened (before: one column per pair).
    let last = lines[note - 1]
        .chars()
        .collect::<Vec<_>>()
        .iter()
        .rposition(|c| "▁▂▃▄▅▆▇█".contains(*c))
        .unwrap_or(0);
    assert!(last > 50, "the RoPE bars stop at column {last}:\n{s}");
    let mut app = synthetic_app(Kind::Gpt2, &["Hello", ",", "world", "!"], (120, 40));
    key(&mut app, KeyCode::Char('p'));
    let s = screen(&app);
    let m = app.trace().unwrap().positional.matrix().clone();
    let max = m.iter().fold(0.0f32, |a, v| a.max(v.abs()));
    assert!(
        s.contains("full bar ±") && s.contains("square-root scale"),
        "{s}"
    );
    assert!(
        s.contains(&format!("bright: +{max:.2}")),
        "the scale is the data's maximum {max}: {s}"
    );
}
