//! Issue 13 in the explorer: ablation and its effect (decoder and encoder), the sweep heatmap, the rollout grid mode,
//! direct logit attribution and generation — each one key away, computed by the worker's own code (run on this
//! thread here), checked against the library's numbers, with snapshots of each view. The tiny GPT-2 fixture is the
//! decoder; a small textbook model the encoder.

mod common;

use attn::analysis::{ablation, attribution, rollout};
use attn::model::generate::{Sampling, generate};
use attn::model::{self, Model, TextbookConfig};
use attn::trace::ForwardOptions;
use attn::tui::app::{App, Effect, Focus, Palette, Summary, View};
use attn::tui::event::Event;
use attn::tui::interp::InterpOutcome;
use attn::tui::worker::{Outcome, run_job};
use attn::tui::{self, ui};
use common::{assert_same_run, repo};
use crossterm::event::KeyCode;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn gpt2() -> Box<dyn Model> {
    let p = repo().join("fixtures/tiny-gpt2");
    model::load(&p.display().to_string(), &TextbookConfig::default()).unwrap()
}

fn encoder() -> Box<dyn Model> {
    model::load(
        "textbook",
        &TextbookConfig {
            layers: 2,
            heads: 2,
            d_model: 8,
            d_ff: 16,
            ..Default::default()
        },
    )
    .unwrap()
}

const TEXT: &str = "Hello world, this is a test of the";

/// An app that has run `text` (timings zeroed), as the worker would have run it.
fn app_for(m: &dyn Model, text: &str, size: (u16, u16)) -> App {
    // The fixture's path, which differs between checkouts, is shown relative to the repository.
    let mut info = m.info().clone();
    let root = format!("{}/", repo().display());
    info.spec = info.spec.replace(&root, "");
    info.source = info.source.replace(&root, "");
    let mut app = tui::new_app(&info, text, None, Palette::Mono, size);
    app.input.fresh = false;
    let fx = app.start(Instant::now());
    let mut ev = None;
    for e in fx {
        if let Effect::Job(j) = e {
            ev = Some(run_job(m, j, None));
        }
    }
    let Some(Event::Traced(mut o)) = ev else {
        panic!("no run")
    };
    if let Ok(s) = &mut o.result {
        let mut t = (*s.trace).clone();
        t.elapsed = Duration::ZERO;
        *s = Summary::new(t).unwrap();
    }
    app.update(
        Event::Traced(Box::new(Outcome {
            total: Duration::ZERO,
            ..*o
        })),
        Instant::now(),
    );
    app.focus = Focus::Explorer;
    app
}

/// Zero what depends on the clock, so screens are reproducible.
fn steady(ev: &mut Event) {
    if let Event::Interp(o) = ev {
        match o.as_mut() {
            InterpOutcome::Swept { elapsed, .. } => *elapsed = Duration::ZERO,
            InterpOutcome::Generated {
                total,
                result: Ok(g),
                ..
            } => {
                *total = Duration::ZERO;
                let mut t = (*g.summary.trace).clone();
                t.elapsed = Duration::ZERO;
                g.summary = Summary::new(t).unwrap();
            }
            _ => {}
        }
    }
}

/// Press a key; run every job it asks for on this thread (as the worker would) and feed the results back.
/// Returns how many jobs ran.
fn press(app: &mut App, m: &dyn Model, code: KeyCode) -> usize {
    let fx = app.update(Event::key(code), Instant::now());
    drain(app, m, fx)
}

fn drain(app: &mut App, m: &dyn Model, mut fx: Vec<Effect>) -> usize {
    let mut jobs = 0;
    while let Some(e) = fx.pop() {
        if let Effect::Job(j) = e {
            jobs += 1;
            let mut ev = run_job(m, j, None);
            steady(&mut ev);
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
    for (w, h) in [(80u16, 24u16), (160, 45)] {
        app.update(Event::Resize(w, h), Instant::now());
        insta::assert_snapshot!(format!("{name}_{w}x{h}"), screen(app));
    }
}

fn no_time() -> ForwardOptions {
    ForwardOptions {
        keep_attention: false,
        top_k: 0,
        ..Default::default()
    }
}

#[test]
fn ablating_a_head_shows_the_effect_and_every_view_the_ablated_run() {
    let m = gpt2();
    let mut app = app_for(m.as_ref(), TEXT, (160, 45));
    let clean = app.data.as_ref().unwrap().trace.clone();
    let last = clean.n_tokens() - 1;
    // Layer 1, head 2; the cursor on the last token.
    press(&mut app, m.as_ref(), KeyCode::Down);
    press(&mut app, m.as_ref(), KeyCode::Right);
    press(&mut app, m.as_ref(), KeyCode::Right);
    press(&mut app, m.as_ref(), KeyCode::End);
    assert_eq!(app.watched_position(), last);
    assert_eq!(press(&mut app, m.as_ref(), KeyCode::Char('A')), 1);
    let s = screen(&app);
    assert!(s.contains("1 head ablated (zero, shown)"), "{s}");
    assert!(s.contains("Ablation effect"), "{s}");
    // The run on screen is the ablated one: the library's ablated forward pass gives the same final state.
    let mut opts = no_time();
    opts.hooks.ablate(&[(1, 2)], 2, 4, false).unwrap();
    let want = model::run(m.as_ref(), TEXT, None, &opts).unwrap();
    let shown = app.data.as_ref().unwrap().trace.clone();
    let d = (&shown.hidden[2] - &want.hidden[2])
        .mapv(f32::abs)
        .fold(0f32, |a, b| a.max(*b));
    assert!(d < 1e-4, "ablated hidden differs by {d}");
    // The effect's Δ logit is the library's.
    let e = m.engine();
    let lc = e.logits(&clean.hidden[2]).unwrap();
    let la = e.logits(&want.hidden[2]).unwrap();
    let top = attn::model::generate::argmax(&lc.row(last));
    let delta = la[[last, top]] - lc[[last, top]];
    let line = format!("Δ {delta:+.2}");
    assert!(s.contains(&line), "{line} not in\n{s}");
    snap_both("ablation_effect", &mut app);
    // f flips to the clean run and back.
    press(&mut app, m.as_ref(), KeyCode::Char('f'));
    assert!(Arc::ptr_eq(&app.data.as_ref().unwrap().trace, &clean));
    assert!(screen(&app).contains("clean shown"));
    press(&mut app, m.as_ref(), KeyCode::Char('f'));
    assert!(Arc::ptr_eq(&app.data.as_ref().unwrap().trace, &shown));
    // The overview marks the ablated head.
    press(&mut app, m.as_ref(), KeyCode::Char('m'));
    let s = screen(&app);
    assert!(s.contains("✗ off"), "{s}");
    press(&mut app, m.as_ref(), KeyCode::Char('m'));
    // A second head: both ablated in one run; mean-ablation re-runs.
    press(&mut app, m.as_ref(), KeyCode::Left);
    press(&mut app, m.as_ref(), KeyCode::Char('A'));
    assert!(screen(&app).contains("2 heads ablated (zero"));
    assert_eq!(press(&mut app, m.as_ref(), KeyCode::Char('M')), 1);
    assert!(screen(&app).contains("2 heads ablated (mean"));
    // U restores everything: the clean run is back, the note is gone.
    press(&mut app, m.as_ref(), KeyCode::Char('U'));
    assert!(Arc::ptr_eq(&app.data.as_ref().unwrap().trace, &clean));
    assert!(!screen(&app).contains("ablated ("));
}

#[test]
fn encoders_show_the_cosine_to_the_clean_states() {
    let m = encoder();
    let mut app = app_for(m.as_ref(), "the cat sat on the mat", (160, 45));
    press(&mut app, m.as_ref(), KeyCode::Char('A'));
    let s = screen(&app);
    assert!(
        s.contains("cosine of each final state to the clean one"),
        "{s}"
    );
    let Some(attn::tui::interp::Effect::Cosine(c)) = app.ablation_effect() else {
        panic!("no cosine effect")
    };
    assert_eq!(c.len(), app.trace().unwrap().n_tokens());
    assert!(c.iter().all(|v| (-1.0..=1.0001).contains(v)));
    assert!(
        c.iter().any(|v| *v < 0.9999),
        "ablating a head changed nothing: {c:?}"
    );
    snap_both("ablation_encoder", &mut app);
}

#[test]
fn the_sweep_ranks_every_head_as_the_library_does_and_can_be_cancelled() {
    let m = gpt2();
    let mut app = app_for(m.as_ref(), TEXT, (160, 45));
    press(&mut app, m.as_ref(), KeyCode::End);
    // Cancelled before the worker gets to it: nothing is shown.
    let fx = app.update(Event::ch('S'), Instant::now());
    assert_eq!(app.view, View::Sweep);
    assert!(screen(&app).contains("S or Esc cancels"));
    app.update(Event::key(KeyCode::Esc), Instant::now());
    drain(&mut app, m.as_ref(), fx);
    assert!(app.interp.sweep.is_none());
    app.update(Event::ch('S'), Instant::now()); // leaves the (empty) sweep view
    assert_eq!(app.view, View::Grid);
    assert_eq!(press(&mut app, m.as_ref(), KeyCode::Char('S')), 1);
    let clean = app.data.as_ref().unwrap().trace.clone();
    let want = ablation::sweep(m.as_ref(), &clean, None, false, &|_, _| {}).unwrap();
    let got = match &app.interp.sweep.as_ref().unwrap().result {
        Some(Ok(s)) => s.clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(got.heads, want.heads);
    let best = want.ranked()[0];
    let s = screen(&app);
    let name = format!("L{}.H{}", best.layer, best.head);
    assert!(s.contains("heads by |Δ logit|") && s.contains(&name), "{s}");
    snap_both("sweep", &mut app);
}

#[test]
fn rollout_mode_shows_r_l_of_the_layer() {
    let m = gpt2();
    let mut app = app_for(m.as_ref(), TEXT, (160, 45));
    press(&mut app, m.as_ref(), KeyCode::Down);
    press(&mut app, m.as_ref(), KeyCode::Char('R'));
    let t = app.data.as_ref().unwrap().trace.clone();
    let r = rollout::rollout(
        t.layers
            .iter()
            .map(|l| l.attention.as_ref().unwrap().view()),
    );
    assert_eq!(*app.grid.matrix, r[1]);
    assert!(screen(&app).contains("Rollout R_1"));
    snap_both("rollout", &mut app);
    press(&mut app, m.as_ref(), KeyCode::Char('R'));
    assert_ne!(*app.grid.matrix, r[1]);
}

#[test]
fn attribution_view_sums_to_the_logit() {
    let m = gpt2();
    let mut app = app_for(m.as_ref(), TEXT, (160, 45));
    press(&mut app, m.as_ref(), KeyCode::End);
    assert_eq!(press(&mut app, m.as_ref(), KeyCode::Char('C')), 1);
    assert_eq!(app.view, View::Attribution);
    let want = attribution::attribute(m.as_ref(), TEXT, None, None).unwrap();
    let s = screen(&app);
    let line = format!("logit {:.3} = Σ components {:.3}", want.logit, want.total());
    assert!(s.contains(&line), "{line} not in\n{s}");
    snap_both("attribution", &mut app);
    // Moving the cursor's position asks again (k moves the query row up, in the grid's terms).
    app.update(Event::key(KeyCode::Char('C')), Instant::now());
    press(&mut app, m.as_ref(), KeyCode::Char('k'));
    assert_eq!(press(&mut app, m.as_ref(), KeyCode::Char('C')), 1);
}

#[test]
fn generation_appends_the_greedy_token_and_removes_it() {
    let m = gpt2();
    let mut app = app_for(m.as_ref(), TEXT, (160, 45));
    let prompt: Vec<u32> = app.trace().unwrap().tokens.iter().map(|t| t.id).collect();
    let n = prompt.len();
    let want = generate(m.as_ref(), &prompt, 2, &Sampling::default(), false).unwrap();
    assert_eq!(press(&mut app, m.as_ref(), KeyCode::Char('+')), 1);
    assert_eq!(press(&mut app, m.as_ref(), KeyCode::Char('+')), 1);
    // Appended by KV-cache steps: the app holds the cache of the trace on screen.
    assert_eq!(
        app.interp.generation.cache.as_ref().map(|c| c.len()),
        Some(n + 2)
    );
    let ids: Vec<u32> = app.trace().unwrap().tokens.iter().map(|t| t.id).collect();
    assert_eq!(ids[..n], prompt[..]);
    assert_eq!(ids[n..], want.new_ids[..]);
    // The new row is highlighted (the cursor is on it); the status names the token and the candidates.
    assert_eq!(app.query_token(), Some(n + 1));
    let s = screen(&app);
    assert!(s.contains("greedy · candidates:"), "{s}");
    snap_both("generation", &mut app);
    // The attention recorded (by two KV-cache steps) is the full matrix of the longer sequence.
    let full = model::run_ids(m.as_ref(), &ids, &Default::default()).unwrap();
    assert_same_run(app.trace().unwrap(), &full, m.as_ref());
    let one = app.interp.generation.history.last().unwrap().trace.clone();
    press(&mut app, m.as_ref(), KeyCode::Char('-'));
    assert_eq!(app.trace().unwrap().n_tokens(), n + 1);
    // `-` restores the previous run itself (no re-run), and `+` from there appends the same token again.
    assert!(std::ptr::eq(app.trace().unwrap(), &*one));
    assert_eq!(
        app.interp.generation.cache.as_ref().map(|c| c.len()),
        Some(n + 1)
    );
    assert_eq!(press(&mut app, m.as_ref(), KeyCode::Char('+')), 1);
    assert_same_run(app.trace().unwrap(), &full, m.as_ref());
    press(&mut app, m.as_ref(), KeyCode::Char('-'));
    press(&mut app, m.as_ref(), KeyCode::Char('-'));
    assert_eq!(app.trace().unwrap().n_tokens(), n);
    assert!(screen(&app).contains("removed"));
    // Sampling settings.
    press(&mut app, m.as_ref(), KeyCode::Char('}'));
    press(&mut app, m.as_ref(), KeyCode::Char('>'));
    assert!(screen(&app).contains("sampled: T 0.3 · top-k 5"));
}

#[test]
fn induction_tag_in_the_overview() {
    // A repeated random sequence: the tiny GPT-2 has no clear induction head, so the check is the score itself:
    // the overview's summary line shows the head's induction score on the text, computed as analysis::scans does.
    let m = gpt2();
    let text = "alpha beta gamma delta alpha beta gamma delta";
    let mut app = app_for(m.as_ref(), text, (160, 45));
    press(&mut app, m.as_ref(), KeyCode::Char('m'));
    let t = app.trace().unwrap();
    let ids: Vec<u32> = t.tokens.iter().map(|t| t.id).collect();
    let a = t.layers[0].attention.as_ref().unwrap();
    let v = attn::analysis::scans::text_induction_score(&a.index_axis(ndarray::Axis(0), 0), &ids)
        .unwrap();
    assert_eq!(app.interp.induction(0, 0), Some(v));
    let s = screen(&app);
    assert!(s.contains(&format!("induction {v:.2}")), "{s}");
}
