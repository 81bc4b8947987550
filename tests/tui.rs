//! The explorer, headless: whole-screen snapshots of every view at several sizes (TestBackend + insta), scripted key
//! sequences through the real run loop and worker, and the robustness cases (tiny terminals, resize storms, wide and
//! control characters, model errors, failed dumps).

mod common;

use attn::model::{self, Model, TextbookConfig};
use attn::tui::app::{App, ColorMode, Focus, Lens, Prepared, View};
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
        result: Prepared::new(trace),
        total: Duration::ZERO,
    }))
}

/// An app that has run `text` on the textbook model.
fn textbook_app(text: &str, text_b: Option<&str>, size: (u16, u16), color: ColorMode) -> App {
    let m = textbook();
    let mut app = tui::new_app(m.info(), text, text_b, color, size);
    let fx = app.start(Instant::now());
    assert_eq!(fx.len(), 1, "the first run is asked for");
    let trace = model::run(m.as_ref(), text, text_b, &Default::default()).unwrap();
    app.update(outcome(trace, app.generation), Instant::now());
    assert!(app.data.is_some() && !app.busy());
    app.focus = Focus::Explorer;
    app
}

fn synthetic_app(kind: Kind, words: &[&str], size: (u16, u16)) -> App {
    let mut app = tui::new_app(
        &synthetic::info(kind),
        &words.join(" "),
        None,
        ColorMode::TrueColor,
        size,
    );
    app.start(Instant::now());
    app.update(
        outcome(synthetic::trace(kind, words), app.generation),
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
        ColorMode::TrueColor,
    );
    snap_all("grid", &mut app);
}

#[test]
fn grid_without_colour_uses_shades() {
    let mut app = textbook_app("The cat sat on the mat.", None, (80, 24), ColorMode::Mono);
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
        ColorMode::TrueColor,
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
        ColorMode::TrueColor,
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
        ColorMode::TrueColor,
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
        ColorMode::TrueColor,
    );
    key(&mut app, KeyCode::Char('?'));
    assert!(app.help);
    snap_all("help", &mut app);
    // Every key of the list is on the big screen.
    resize(&mut app, 200, 60);
    let s = screen(&app);
    for (k, _) in ui::KEYS.iter().filter(|(k, _)| !k.is_empty()) {
        assert!(s.contains(k), "help lacks {k}");
    }
    // On a small terminal the help scrolls with ↓/↑ (the last key comes into view).
    resize(&mut app, 80, 24);
    assert!(!screen(&app).contains("q Ctrl-C"));
    for _ in 0..40 {
        key(&mut app, KeyCode::Down);
    }
    let s = screen(&app);
    assert!(
        app.help && s.contains("q Ctrl-C") && s.contains(" end "),
        "{s}"
    );
    insta::assert_snapshot!("help_scrolled_80x24", s);
    key(&mut app, KeyCode::Char('x'));
    assert!(
        !app.help && !app.hide_special,
        "a key closes help and does nothing else"
    );
}

#[test]
fn korean_sentence_stays_aligned() {
    let text = "안녕하세요 세계 🤖 中文 e\u{301}";
    let mut app = textbook_app(text, None, (80, 24), ColorMode::TrueColor);
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
    let mut app = textbook_app("a cat", Some("a dog"), (80, 24), ColorMode::TrueColor);
    let s = screen(&app);
    assert!(s.contains("A ❯ a cat") && s.contains("B ❯ a dog"), "{s}");
    let t = app.trace().unwrap();
    assert_eq!(t.text_b.as_deref(), Some("a dog"));
    assert!(t.tokens.iter().any(|t| t.type_id == 1));
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
    let mut app = textbook_app(&text, None, (80, 24), ColorMode::TrueColor);
    let n = app.visible.len();
    assert!(n > 60);
    let s = screen(&app);
    assert!(s.contains(&format!("of {n}")), "position indicator: {s}");
    key(&mut app, KeyCode::End);
    assert_eq!(app.cur, (n - 1, n - 1));
    let (rows, cols) = ui::layout::grid_capacity(&app);
    assert_eq!(app.scroll, (n - rows, n - cols));
    let s = screen(&app);
    assert!(s.contains(&format!("{}", n - 1)), "{s}");
    insta::assert_snapshot!("long_end_80x24", s);
    key(&mut app, KeyCode::Char('z'));
    let s = screen(&app);
    assert!(s.contains("zoomed out"), "{s}");
    insta::assert_snapshot!("long_zoom_80x24", s);
    key(&mut app, KeyCode::Home);
    assert_eq!(app.cur, (0, 0));
}

#[test]
fn navigation_wraps_and_number_keys_jump() {
    let mut app = textbook_app("I love AI", None, (80, 24), ColorMode::TrueColor);
    let (nl, nh) = (app.n_layers(), app.n_heads());
    key(&mut app, KeyCode::Left);
    assert_eq!(app.head, nh - 1);
    key(&mut app, KeyCode::Right);
    assert_eq!(app.head, 0);
    key(&mut app, KeyCode::Up);
    assert_eq!(app.layer, nl - 1);
    key(&mut app, KeyCode::Down);
    assert_eq!(app.layer, 0);
    key(&mut app, KeyCode::Char('5'));
    assert_eq!(app.head, 5);
    key(&mut app, KeyCode::Char('g'));
    key(&mut app, KeyCode::Char('3'));
    assert_eq!((app.layer, app.head), (3, 5));
    assert!(screen(&app).contains(&format!("Layer 3/{} · Head 5/{}", nl - 1, nh - 1)));
    key(&mut app, KeyCode::Char('a'));
    assert!(app.mean);
    let s = screen(&app);
    assert!(
        s.contains("mean of 8 heads") && s.contains("Head mean of 0–7"),
        "{s}"
    );
    // The mean's rows still sum to 1.
    for r in app.matrix.rows() {
        assert!((r.sum() - 1.0).abs() < 1e-4);
    }
    key(&mut app, KeyCode::Char('s'));
    assert_eq!(app.scale, attn::colormap::Scale::Log);
    key(&mut app, KeyCode::Char('s'));
    assert_eq!(app.scale, attn::colormap::Scale::RowMax);
    key(&mut app, KeyCode::Char('s'));
    assert_eq!(app.scale, attn::colormap::Scale::Linear);
}

#[test]
fn hiding_special_tokens_renormalises() {
    let mut app = textbook_app("I love AI", None, (80, 24), ColorMode::TrueColor);
    assert_eq!(app.visible.len(), 5);
    key(&mut app, KeyCode::Char('x'));
    assert_eq!(app.visible, vec![1, 2, 3]);
    assert_eq!(app.matrix.dim(), (3, 3));
    for r in app.matrix.rows() {
        assert!((r.sum() - 1.0).abs() < 1e-5, "{r}");
    }
    let s = screen(&app);
    assert!(!s.contains("[CLS]") && s.contains("specials hidden"), "{s}");
    insta::assert_snapshot!("hidden_specials_80x24", s);
    assert_eq!(app.head_stem(), "layer00_head00_nospecial");
}

#[test]
fn mouse_click_moves_the_cell_cursor() {
    let mut app = textbook_app("I love AI", None, (80, 24), ColorMode::TrueColor);
    let g = ui::layout::grid_geom(&app, ui::layout::grid_panes(&app).grid);
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
    assert_eq!(app.cur, (3, 2));
    let s = screen(&app);
    assert!(s.contains("«ai»") && s.contains("«love»"), "{s}");
    // Clicking the input focuses it.
    let input = ui::layout::screen(&app).input;
    app.update(click(10, input.y + 1), Instant::now());
    assert_eq!(app.focus, Focus::Input);
}

#[test]
fn tiny_terminals_and_resize_storms_never_panic() {
    let mut app = textbook_app(
        "안녕하세요 🤖 The cat sat on the mat",
        None,
        (20, 6),
        ColorMode::TrueColor,
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
            if app.help {
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
    let mut app = tui::new_app(m.info(), "The cat", None, ColorMode::TrueColor, (80, 24));
    app.start(Instant::now());
    // F1 opens the help from the input too (where `?` types a question mark).
    key(&mut app, KeyCode::F(1));
    assert!(app.help);
    key(&mut app, KeyCode::Esc);
    assert!(!app.help && app.focus == Focus::Input);
    // The starting text is selected: the first key replaces it.
    key(&mut app, KeyCode::Char('x'));
    assert_eq!(app.inputs[0].text, "x");
    for c in "yz".chars() {
        key(&mut app, KeyCode::Char(c));
    }
    key(&mut app, KeyCode::Left);
    key(&mut app, KeyCode::Backspace);
    assert_eq!(app.inputs[0].text, "xz");
    key(&mut app, KeyCode::Home);
    key(&mut app, KeyCode::Delete);
    assert_eq!(app.inputs[0].text, "z");
    key(&mut app, KeyCode::End);
    app.update(Event::Paste("안녕\n하세요 e\u{301}".into()), Instant::now());
    assert_eq!(app.inputs[0].text, "z안녕 하세요 e\u{301}");
    // Backspace removes the whole "e + combining accent" grapheme.
    key(&mut app, KeyCode::Backspace);
    assert_eq!(app.inputs[0].text, "z안녕 하세요 ");
    app.update(Event::ctrl('w'), Instant::now());
    assert_eq!(app.inputs[0].text, "z안녕 ");
    app.update(Event::Paste("a\u{1b}[31mb".into()), Instant::now());
    let s = screen(&app);
    assert!(s.contains("a\\u{1b}[31mb"), "{s}");
    assert!(!s.contains('\u{1b}'));
    app.update(Event::ctrl('u'), Instant::now());
    assert_eq!(app.inputs[0].text, "");
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
    let mut app = tui::new_app(m.info(), "first", None, ColorMode::TrueColor, (80, 24));
    app.start(Instant::now());
    let first = app.generation;
    key(&mut app, KeyCode::Char('a'));
    let fx = key(&mut app, KeyCode::Enter);
    assert_eq!(fx.len(), 1);
    assert_eq!(app.generation, first + 1);
    // The older run finishing late is ignored; the app keeps waiting for the newer one.
    let old = model::run(m.as_ref(), "first", None, &Default::default()).unwrap();
    app.update(outcome(old, first), Instant::now());
    assert!(app.data.is_none() && app.busy());
    let new = model::run(m.as_ref(), "a", None, &Default::default()).unwrap();
    app.update(outcome(new, app.generation), Instant::now());
    assert_eq!(app.trace().unwrap().text, "a");
    // A model error lands in the status line; the last good trace stays.
    key(&mut app, KeyCode::Tab);
    key(&mut app, KeyCode::Char('b'));
    key(&mut app, KeyCode::Enter);
    app.update(
        Event::Traced(Box::new(Outcome {
            generation: app.generation,
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
    let r = attn::tui::worker::prepare(small.as_ref(), "one two three four five six seven", None);
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
        model: m.clone(),
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
        ColorMode::TrueColor,
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
    assert_eq!(app.inputs[0].text, "I love AI");
    assert_eq!(app.focus, Focus::Explorer);
    assert_eq!(app.view, View::Grid);
    assert_eq!((app.layer, app.head, app.mean), (1, 1, false));
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
        s.contains("Layer 1/5 · Head 1/7") && s.contains("wrote"),
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
        ColorMode::TrueColor,
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
        ColorMode::TrueColor,
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
    assert_eq!(app.head, 1, "still running after the failure");
    assert!(terminal.backend().to_string().contains("dump failed"));
}

#[test]
fn default_model_hint_mentions_random_weights_and_fetching() {
    let app = textbook_app("I love AI", None, (120, 30), ColorMode::TrueColor);
    let s = screen(&app);
    assert!(
        s.contains("random weights") && s.contains("scripts/fetch-models"),
        "{s}"
    );
    assert!(s.contains("textbook"), "{s}");
}

#[test]
fn ctrl_c_and_q_quit() {
    let mut app = textbook_app("I love AI", None, (80, 24), ColorMode::TrueColor);
    key(&mut app, KeyCode::Tab);
    key(&mut app, KeyCode::Char('q'));
    assert!(!app.quit, "q types in the input");
    app.update(Event::ctrl('c'), Instant::now());
    assert!(app.quit);
    let mut app = textbook_app("I love AI", None, (80, 24), ColorMode::TrueColor);
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
    let mut app = tui::new_app(m.info(), text, None, ColorMode::TrueColor, (120, 40));
    assert!(app.hint.is_none(), "real weights: no random-weights hint");
    app.start(Instant::now());
    let prepared = attn::tui::worker::prepare(m.as_ref(), text, None).unwrap();
    app.update(
        Event::Traced(Box::new(Outcome {
            generation: app.generation,
            result: Ok(prepared),
            total: Duration::ZERO,
        })),
        Instant::now(),
    );
    app.focus = Focus::Explorer;
    let s = screen(&app);
    assert!(
        s.to_lowercase().contains("minilm") && s.contains("Layer 0/5 · Head 0/11"),
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
