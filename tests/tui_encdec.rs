//! The explorer on an encoder–decoder (`textbook-dates`): whole-screen snapshots of the three attention kinds, the
//! kind selector and the decode key through scripted keys, the real run loop and the encoder–decoder worker, and the
//! `D` dump in the encoder–decoder contract.

mod common;

use attn::model::encdec::EncoderDecoder;
use attn::tui::app::{App, Focus, Palette, View};
use attn::tui::encdec::{AttnKind, DEFAULT_SOURCE, EncDecOutcome};
use attn::tui::event::{Event, ScriptSource};
use attn::tui::worker::Worker;
use attn::tui::{self, ui};
use crossterm::event::KeyCode;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

fn dates() -> Arc<EncoderDecoder> {
    static M: OnceLock<Arc<EncoderDecoder>> = OnceLock::new();
    M.get_or_init(|| Arc::new(attn::model::arch::textbook_dates::load().unwrap()))
        .clone()
}

fn screen(app: &App) -> String {
    let mut t = Terminal::new(TestBackend::new(app.size.0, app.size.1)).unwrap();
    t.draw(|f| ui::draw(f, app)).unwrap();
    t.backend().to_string()
}

fn new_app(size: (u16, u16), color: Palette) -> App {
    app_of(&dates(), size, color)
}

fn app_of(m: &EncoderDecoder, size: (u16, u16), color: Palette) -> App {
    let mut app = tui::new_app(&m.info, tui::default_text(&m.info), None, color, size);
    app.enable_encdec();
    app
}

/// An app that has run `source` (greedy target) with timings zeroed, so screens are reproducible.
fn dates_app(source: &str, size: (u16, u16), color: Palette) -> App {
    ran(&dates(), source, size, color)
}

/// [`dates_app`] on any encoder–decoder.
fn ran(m: &EncoderDecoder, source: &str, size: (u16, u16), color: Palette) -> App {
    let mut app = app_of(m, size, color);
    app.input.lines[0] = attn::tui::app::LineEdit::new(source);
    let fx = app.start(Instant::now());
    assert_eq!(fx.len(), 1, "the first run is asked for");
    let mut run = attn::tui::encdec::prepare(m, source, None, u64::MAX, None).unwrap();
    for s in &mut run.kinds {
        Arc::get_mut(&mut s.trace).unwrap().elapsed = Duration::ZERO;
    }
    app.update(
        Event::EncDecTraced(Box::new(EncDecOutcome {
            generation: app.runs.generation,
            result: Ok(run),
            total: Duration::ZERO,
        })),
        Instant::now(),
    );
    assert!(app.data.is_some() && !app.busy());
    app.focus = Focus::Explorer;
    app
}

#[test]
fn the_three_attention_kinds_snapshots() {
    let mut app = dates_app(DEFAULT_SOURCE, (100, 32), Palette::Mono);
    assert_eq!(app.input.lines[1].text, "2026년 11월 22일");
    let kinds = [
        (
            AttnKind::EncoderSelf,
            "[enc]",
            "Encoder self-attention",
            "encoder_self",
        ),
        (
            AttnKind::DecoderSelf,
            "[dec]",
            "Decoder self-attention",
            "decoder_self",
        ),
        (
            AttnKind::Cross,
            "[cross]",
            "Cross-attention (target × source)",
            "cross",
        ),
    ];
    let mut s = String::new();
    for (i, (kind, selected, title, name)) in kinds.into_iter().enumerate() {
        if i > 0 {
            app.update(Event::ch('t'), Instant::now());
        }
        assert_eq!(app.kind(), Some(kind));
        s = screen(&app);
        assert!(s.contains(selected) && s.contains(title), "{s}");
        insta::assert_snapshot!(format!("dates_{name}_100x32"), s);
    }
    // Cross-attention is target rows × source columns, not square.
    let (nt, ns) = (app.trace().unwrap().n_tokens(), app.key_tokens().len());
    assert_ne!(nt, ns);
    assert_eq!(app.grid.matrix.dim(), (nt, ns));
    // d writes the cross-attention on screen: target labels down, source labels across.
    let fx = app.update(Event::ch('d'), Instant::now());
    match fx.as_slice() {
        [
            attn::tui::app::Effect::DumpTable {
                stem,
                corner,
                rows,
                cols,
                matrix,
            },
        ] => {
            assert_eq!(
                (stem.as_str(), corner.as_str()),
                ("cross_layer00_head00", "target\\source")
            );
            assert_eq!((rows.len(), cols.len(), matrix.dim()), (nt, ns, (nt, ns)));
            assert!(cols.iter().any(|c| c == "november") && rows.iter().any(|r| r == "년"));
        }
        other => panic!("d asked for {other:?}"),
    }
    // Its statistics keep entropy and row max and say the positional scores do not apply.
    let st = app.current_stats().unwrap();
    assert!(st.prev.is_nan() && st.max_weight > 0.0);
    assert!(s.contains("sink, previous, self, distance: —"), "{s}");
    // The overview and the narrow layout draw the non-square matrices too.
    app.update(Event::ch('m'), Instant::now());
    let s = screen(&app);
    assert!(s.contains("do not apply to cross-attention"), "{s}");
    insta::assert_snapshot!("dates_cross_overview_100x32", s);
    app.update(Event::ch('m'), Instant::now());
    app.update(Event::Resize(60, 20), Instant::now());
    insta::assert_snapshot!("dates_cross_60x20", screen(&app));
    // t wraps back to the encoder.
    app.update(Event::ch('t'), Instant::now());
    assert_eq!(app.kind(), Some(AttnKind::EncoderSelf));
}

#[test]
fn year_rows_of_the_cross_attention_point_at_the_end_of_the_source() {
    // The decoder writes the year first; its cross-attention (mean over heads, last layer) looks at the source's
    // year, which comes last in "22 November 2026".
    let mut app = dates_app(DEFAULT_SOURCE, (100, 32), Palette::Mono);
    app.update(Event::ch('t'), Instant::now());
    app.update(Event::ch('t'), Instant::now());
    app.update(Event::ch('a'), Instant::now());
    app.update(Event::key(KeyCode::Up), Instant::now());
    let keys: Vec<String> = app.key_tokens().iter().map(|t| t.label.clone()).collect();
    let year_start = keys.iter().position(|k| k == "november").unwrap() + 1;
    // Rows 1..=4 are the decoder inputs "2 0 2 6" after <s>: each looks mostly at source positions after the month.
    for row in 1..=3 {
        let r = app.grid.matrix.row(row);
        let after: f32 = r.iter().skip(year_start).sum();
        assert!(after > 0.5, "row {row} looks {after} at the year; {keys:?}");
    }
}

#[test]
fn keys_that_do_not_apply_say_why() {
    let mut app = dates_app(DEFAULT_SOURCE, (100, 32), Palette::Mono);
    // The logit lens reads the decoder: on the encoder's kind it says so.
    app.update(Event::ch('e'), Instant::now());
    assert_eq!(app.view, View::Grid, "e opened the lens on the encoder");
    let st = app.status.clone().unwrap();
    assert!(
        st.text.contains("logit lens reads the decoder"),
        "{}",
        st.text
    );
    // On an encoder, t and T say they are for encoder–decoders.
    let m = attn::model::load("textbook", &Default::default()).unwrap();
    let mut enc = tui::new_app(m.info(), "a b", None, Palette::Mono, (80, 24));
    enc.focus = Focus::Explorer;
    enc.update(Event::ch('t'), Instant::now());
    assert!(
        enc.status
            .clone()
            .unwrap()
            .text
            .contains("encoder–decoders")
    );
    let fx = enc.update(Event::ch('T'), Instant::now());
    assert!(
        fx.is_empty()
            && enc
                .status
                .clone()
                .unwrap()
                .text
                .contains("not an encoder–decoder")
    );
}

/// Press a key and run every job it asks for on this thread with the encoder–decoder worker's body.
fn press(app: &mut App, ev: Event) -> usize {
    let m = dates();
    let mut fx = app.update(ev, Instant::now());
    let mut jobs = 0;
    while let Some(e) = fx.pop() {
        if let attn::tui::app::Effect::Job(j) = e {
            jobs += 1;
            let mut ev = attn::tui::worker::run_encdec_job(&m, j, u64::MAX, None);
            if let Event::Explained(x) = &mut ev {
                x.elapsed = Duration::ZERO;
            }
            fx.extend(app.update(ev, Instant::now()));
        }
    }
    jobs
}

#[test]
fn the_computation_views_and_the_lens_open_on_every_kind() {
    let mut app = dates_app(DEFAULT_SOURCE, (110, 40), Palette::Mono);
    for kind in AttnKind::ALL {
        app.set_kind(kind);
        app.view = View::Grid;
        let name = kind.stem();
        for (key, view, needle) in [
            ('E', View::Weight, "How weight"),
            ('o', View::Writes, "What head"),
            ('B', View::Walk, "resid_post"),
            ('b', View::Embedding, "token"),
        ] {
            press(&mut app, Event::ch(key));
            assert_eq!(app.view, view, "{name}: {key}");
            let s = screen(&app);
            assert!(s.contains(needle), "{name} {key}:\n{s}");
            assert!(
                !s.contains("explain:") && !s.contains("computing"),
                "{name} {key}:\n{s}"
            );
            if kind == AttnKind::Cross && key == 'B' {
                assert!(s.contains("cross-attention output"), "{s}");
            }
        }
        app.view = View::Grid;
        // The value-weighted grid: cross-attention's is target × source.
        press(&mut app, Event::ch('v'));
        let r = app.explain.result.as_ref().expect("explained");
        let vw = r.value_weighted.as_ref().expect("value-weighted");
        assert_eq!(
            (vw.dim().1, vw.dim().2),
            (app.trace().unwrap().n_tokens(), app.key_tokens().len()),
            "{name}"
        );
        press(&mut app, Event::ch('v'));
    }
    // The cross weight step by step: rows are target characters, columns source tokens.
    app.set_kind(AttnKind::Cross);
    app.view = View::Grid;
    press(&mut app, Event::ch('E'));
    let s = screen(&app);
    insta::assert_snapshot!("dates_cross_weight", s);
    // The logit lens on the decoder: at the last layer, every position reads the next character.
    app.set_kind(AttnKind::DecoderSelf);
    app.view = View::Grid;
    press(&mut app, Event::ch('e'));
    assert_eq!(app.view, View::Lens);
    let rows = app.lens.as_ref().unwrap().rows.clone().unwrap().unwrap();
    assert_eq!(rows.len(), 2);
    insta::assert_snapshot!("dates_decoder_lens", screen(&app));
}

/// Run the real loop (TestBackend, scripted keys, the encoder–decoder worker) and return the app.
fn run_script(app: App, script: Vec<Event>, dump_root: &std::path::Path) -> (App, String) {
    let m = dates();
    let (tx, rx) = std::sync::mpsc::channel();
    let env = tui::Env {
        model: tui::Loaded::EncDec(m.clone()),
        worker: Worker::spawn_encdec(m, tx, attn::model::budget::DEFAULT_BUDGET),
        dump_root: dump_root.to_path_buf(),
    };
    let mut app = app;
    app.quit = false;
    let mut terminal = Terminal::new(TestBackend::new(app.size.0, app.size.1)).unwrap();
    let mut source = ScriptSource::new(script, rx);
    tui::run(&mut terminal, &mut app, &mut source, &env).unwrap();
    let s = terminal.backend().to_string();
    (app, s)
}

#[test]
fn scripted_session_decodes_cycles_kinds_and_dumps() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("dumps");
    let app = new_app((110, 32), Palette::TrueColor);
    // Type a date over the sample, run (empty target: greedy), then a typed target, then T decodes again.
    let mut script = Event::typed("November 5, 1999");
    script.push(Event::key(KeyCode::Enter));
    script.extend([Event::key(KeyCode::Tab), Event::key(KeyCode::Down)]);
    script.extend(Event::typed("x"));
    script.push(Event::key(KeyCode::Enter));
    script.extend([
        Event::ch('T'),
        Event::ch('t'),
        Event::ch('t'),
        Event::ch('D'),
    ]);
    let (app, s) = run_script(app, script, &root);
    assert_eq!(app.input.lines[0].text, "November 5, 1999");
    assert_eq!(
        app.input.lines[1].text, "1999년 11월 5일",
        "T refilled the target"
    );
    assert_eq!(app.kind(), Some(AttnKind::Cross));
    assert!(
        s.contains("[cross]") && s.contains("T ❯ 1999년 11월 5일"),
        "{s}"
    );
    // D wrote the encoder–decoder dump contract.
    let dirs: Vec<_> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    for f in attn::export::encdec::FILES {
        assert!(dirs[0].join(f).exists(), "{f} missing");
    }
    let cross = common::Npy::read(&dirs[0].join("cross_attention.npy"));
    let nt = app.trace().unwrap().n_tokens();
    let ns = app.key_tokens().len();
    assert_eq!(cross.shape, vec![2, 4, nt, ns]);
    let meta = std::fs::read_to_string(dirs[0].join("meta.json")).unwrap();
    assert!(
        meta.contains("\"kind\": \"encoder-decoder\"") && meta.contains("greedy output"),
        "{meta}"
    );
}

#[test]
fn a_new_source_decodes_again_but_a_typed_target_stays() {
    let dir = tempfile::tempdir().unwrap();
    let app = new_app((100, 30), Palette::TrueColor);
    let mut script = Event::typed("1 May 2000");
    script.push(Event::key(KeyCode::Enter));
    let (app, _) = run_script(app, script, dir.path());
    assert_eq!(app.input.lines[1].text, "2000년 5월 1일");
    // Now type a target of one's own, then change the source: the typed target is kept.
    let mut script = vec![
        Event::key(KeyCode::Tab),
        Event::key(KeyCode::Down),
        Event::ctrl('u'),
    ];
    script.extend(Event::typed("2000년"));
    script.push(Event::key(KeyCode::Up));
    script.push(Event::ctrl('u'));
    script.extend(Event::typed("2 May 2000"));
    script.push(Event::key(KeyCode::Enter));
    let (app, _) = run_script(app, script, dir.path());
    assert_eq!(app.input.lines[1].text, "2000년");
    let mut app = app;
    app.set_kind(AttnKind::DecoderSelf);
    let ids: Vec<u32> = app.trace().unwrap().tokens.iter().map(|t| t.id).collect();
    assert_eq!(
        ids,
        dates().decoder_input("2000년").unwrap().ids,
        "the typed target, shifted right"
    );
    // Ctrl-T in the input decodes the new source into the target line.
    let script = vec![Event::key(KeyCode::Tab), Event::ctrl('t')];
    let (app, _) = run_script(app, script, dir.path());
    assert_eq!(app.input.lines[1].text, "2000년 5월 2일");
}

/// T5 has no positional vectors: the positions view draws its relative bias, one row per head, by distance.
#[test]
fn t5_positions_view_draws_the_relative_bias_per_head() {
    let dir = common::repo().join("fixtures").join("tiny-t5");
    let cfg = attn::model::TextbookConfig::default();
    let m = attn::model::load_encoder_decoder(dir.to_str().unwrap(), &cfg, None)
        .unwrap()
        .expect("tiny-t5 is an encoder–decoder");
    let mut app = ran(&m, "the cat sat", (130, 36), Palette::Mono);
    app.view = View::Positional;
    // ↓ twice: the head, since the rows are heads.
    for _ in 0..2 {
        app.update(Event::key(KeyCode::Down), Instant::now());
    }
    assert_eq!(app.sel.head, 2);
    let s = screen(&app);
    let rows: Vec<&str> = s.lines().collect();
    let t = app.trace().unwrap();
    let n = t.n_tokens();
    assert_eq!(
        t.positional.matrix().dim(),
        (4, 2 * n - 1),
        "[heads, 2n − 1]"
    );
    assert!(
        s.contains("Positional (relative) · head 2 · bias added to the scores by distance"),
        "{s}"
    );
    assert!(
        s.contains(&format!(
            "distance key − query from −{0} (left) to +{0}",
            n - 1
        )),
        "{s}"
    );
    assert!(
        s.contains("relative bias: heads × distance key − query"),
        "{s}"
    );
    for h in 0..4 {
        assert!(
            rows.iter().any(|r| r.contains(&format!("{h} head {h}"))),
            "{s}"
        );
    }
    // The bars are head 2's biases: the tallest bar stands at the distance of its largest bias.
    let row = t.positional.matrix().row(2).to_vec();
    let (max, min) = row
        .iter()
        .fold((f32::MIN, f32::MAX), |(a, b), &v| (a.max(v), b.min(v)));
    assert!(max > min, "head 2's bias varies with distance");
    let m = t.positional.matrix();
    let full = m.iter().fold(0f32, |a, &v| a.max(v.abs()));
    assert!(s.contains(&format!("full bar ±{full:.2}")), "{s}");
    assert!(s.contains("j/k head"), "{s}");
}
