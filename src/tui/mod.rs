//! The interactive explorer. `app` holds the state and a pure update function, `ui` draws it, `worker` runs the
//! model off the UI thread, `event` brings keys and results into one channel. [`run`] is the loop; it is generic over
//! the ratatui backend and the event source, so tests drive it with a `TestBackend` and scripted keys. The binary
//! calls [`enter_terminal`] / [`restore_terminal`] and [`spawn_signal_thread`], which keep the terminal usable
//! through every signal: SIGINT, SIGQUIT, SIGTERM, SIGHUP restore it and exit with 128 + the signal's number;
//! SIGTSTP (Ctrl-Z) restores it and stops; SIGCONT (`fg`) sets it up again and redraws the whole screen.

pub mod app;
pub mod encdec;
pub mod event;
pub mod explained;
mod export_table;
pub mod interp;
pub mod keymap;
pub mod line_edit;
pub mod loading;
pub mod streamed;
pub mod synthetic;
pub mod ui;
pub mod worker;

use crate::export;
use crate::model::encdec::EncoderDecoder;
use crate::model::{Model, ModelInfo};
use app::{App, Effect, Palette};
use event::{Event, EventSource};
use ratatui::Terminal;
use ratatui::backend::Backend;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};
use worker::Worker;

/// The sentence the explorer starts with when none is given.
pub const DEFAULT_TEXT: &str = "The cat sat on the mat because it was tired.";

/// What the run loop needs besides the app: the model (for dumps), the worker, where dumps go.
pub struct Env {
    pub model: Loaded,
    pub worker: Worker,
    pub dump_root: PathBuf,
}

/// The model the explorer runs: an encoder or decoder, or an encoder–decoder.
#[derive(Clone)]
pub enum Loaded {
    Model(Arc<dyn Model>),
    EncDec(Arc<EncoderDecoder>),
}

impl From<Arc<dyn Model>> for Loaded {
    fn from(m: Arc<dyn Model>) -> Self {
        Loaded::Model(m)
    }
}

impl Loaded {
    pub fn info(&self) -> &ModelInfo {
        match self {
            Loaded::Model(m) => m.info(),
            Loaded::EncDec(m) => &m.info,
        }
    }

    /// The worker that runs this model (`budget`: bytes of attention a run may keep, for encoders and decoders).
    pub fn worker(&self, events: std::sync::mpsc::Sender<event::Event>, budget: u64) -> Worker {
        match self {
            Loaded::Model(m) => Worker::spawn_with_budget(m.clone(), events, budget),
            Loaded::EncDec(m) => Worker::spawn_encdec(m.clone(), events, budget),
        }
    }
}

/// Write a dump into a fresh time-stamped directory under `root`; a failure leaves no directory behind.
fn dump_fresh(
    root: &std::path::Path,
    write: impl FnOnce(&std::path::Path) -> crate::Result<Vec<PathBuf>>,
) -> crate::Result<Vec<PathBuf>> {
    fresh_dump_dir(root, &utc_stamp(SystemTime::now())).and_then(|dir| {
        let r = write(&dir);
        if r.is_err() {
            let _ = std::fs::remove_dir(&dir);
        }
        r
    })
}

/// The status-line hint for a model: the textbook model's weights are random; textbook-dates reads dates.
pub fn hint_for(info: &ModelInfo) -> Option<String> {
    match info.spec.as_str() {
        "textbook" => Some("textbook = random weights · real models: scripts/fetch-models".to_string()),
        "textbook-dates" => Some(
            "type a date (22 November 2026 or November 22, 2026) · T decodes · t: encoder/decoder/cross".to_string(),
        ),
        _ => None,
    }
}

/// The text the explorer starts with when none is given: a date for textbook-dates, else a sentence.
pub fn default_text(info: &ModelInfo) -> &'static str {
    if info.spec == "textbook-dates" {
        encdec::DEFAULT_SOURCE
    } else {
        DEFAULT_TEXT
    }
}

/// A new app for a model.
pub fn new_app(
    info: &ModelInfo,
    text: &str,
    text_b: Option<&str>,
    color: Palette,
    size: (u16, u16),
) -> App {
    let mut app = App::new(crate::show::escaped_info(info), text, text_b, color, size);
    app.hint = hint_for(info);
    app
}

/// `YYYYmmdd-HHMMSS` in UTC.
pub fn utc_stamp(t: SystemTime) -> String {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}{m:02}{d:02}-{:02}{:02}{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

pub use crate::export::fresh_dump_dir;

impl Env {
    /// Do what the app asked.
    pub fn apply(&self, effects: Vec<Effect>, app: &mut App) {
        for e in effects {
            match e {
                Effect::Job(job) => self.worker.submit(job),
                Effect::DumpTable {
                    stem,
                    corner,
                    rows,
                    cols,
                    matrix,
                } => {
                    let r = dump_fresh(&self.dump_root, |dir| {
                        let t = export_table::Table {
                            stem: &stem,
                            corner: &corner,
                            rows: &rows,
                            cols: &cols,
                        };
                        export_table::write(dir, &t, &matrix.view())
                    });
                    app.dumped(r.map_err(|e| e.to_string()));
                }
                Effect::DumpAll { trace } => {
                    let r = match &self.model {
                        Loaded::Model(m) => dump_fresh(&self.dump_root, |dir| {
                            export::dump(
                                m.as_ref(),
                                &trace,
                                dir,
                                &export::DumpOptions::new(export::Format::Npy, false),
                            )
                        })
                        .map_err(|e| e.to_string()),
                        Loaded::EncDec(_) => {
                            Err("an encoder–decoder run is dumped whole by D".into())
                        }
                    };
                    app.dumped(r);
                }
                Effect::DumpEncDec(d) => {
                    let r = match &self.model {
                        Loaded::EncDec(m) => dump_fresh(&self.dump_root, |dir| {
                            export::encdec::dump(
                                m,
                                &d.trace,
                                &d.source,
                                d.target.as_deref(),
                                dir,
                                false,
                            )
                        })
                        .map_err(|e| e.to_string()),
                        Loaded::Model(_) => Err("this model is not an encoder–decoder".into()),
                    };
                    app.dumped(r);
                }
            }
        }
    }
}

/// Raw mode on, alternate screen, mouse reporting and bracketed paste.
pub fn enter_terminal() -> std::io::Result<()> {
    use crossterm::{event as cev, execute, terminal};
    terminal::enable_raw_mode()?;
    execute!(
        std::io::stdout(),
        terminal::EnterAlternateScreen,
        cev::EnableMouseCapture,
        cev::EnableBracketedPaste
    )
}

/// Put the terminal back: raw mode off, alternate screen left, mouse and paste modes off, cursor shown.
pub fn restore_terminal() {
    use crossterm::{cursor, event as cev, execute, terminal};
    let _ = terminal::disable_raw_mode();
    let _ = execute!(
        std::io::stdout(),
        cev::DisableMouseCapture,
        cev::DisableBracketedPaste,
        terminal::LeaveAlternateScreen,
        cursor::Show
    );
}

/// Set when the whole screen must be redrawn (after SIGCONT): the terminal's content is unknown.
static FULL_REDRAW: AtomicBool = AtomicBool::new(false);
/// The signal that asked the explorer to quit, if any (0: none).
static QUIT_SIGNAL: AtomicI32 = AtomicI32::new(0);

/// Set by [`spawn_signal_thread`]: Ctrl-Z suspends (only when a SIGTSTP handler restores the terminal).
static SUSPEND_ON_CTRL_Z: AtomicBool = AtomicBool::new(false);

/// The signal (SIGINT, SIGQUIT, SIGTERM, SIGHUP) that made the explorer quit, for the exit status 128 + n.
pub fn quit_signal() -> Option<i32> {
    match QUIT_SIGNAL.load(Ordering::SeqCst) {
        0 => None,
        s => Some(s),
    }
}

/// Handle the explorer's signals on a thread: SIGINT, SIGQUIT, SIGTERM and SIGHUP send [`Event::Quit`] (the loop
/// ends and the binary restores the terminal; if that has not happened within 2 s the terminal is restored here and
/// the process exits with 128 + n). SIGTSTP restores the terminal and stops the process; on SIGCONT the terminal is
/// set up again and the next frame redraws everything.
pub fn spawn_signal_thread(tx: std::sync::mpsc::Sender<Event>) -> std::io::Result<()> {
    use signal_hook::consts::{SIGCONT, SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGTSTP};
    let mut signals =
        signal_hook::iterator::Signals::new([SIGINT, SIGQUIT, SIGTERM, SIGHUP, SIGTSTP, SIGCONT])?;
    SUSPEND_ON_CTRL_Z.store(true, Ordering::SeqCst);
    std::thread::Builder::new()
        .name("attn-signals".into())
        .spawn(move || {
            for sig in signals.forever() {
                match sig {
                    SIGTSTP => {
                        restore_terminal();
                        // SAFETY: raising SIGSTOP stops this process; it cannot be caught.
                        unsafe {
                            libc::raise(libc::SIGSTOP);
                        }
                    }
                    SIGCONT => {
                        let _ = enter_terminal();
                        FULL_REDRAW.store(true, Ordering::SeqCst);
                        let _ = tx.send(Event::Tick);
                    }
                    _ => {
                        QUIT_SIGNAL.store(sig, Ordering::SeqCst);
                        let _ = tx.send(Event::Quit);
                        let quit_tx = tx.clone();
                        std::thread::spawn(move || {
                            std::thread::sleep(std::time::Duration::from_secs(2));
                            restore_terminal();
                            drop(quit_tx);
                            std::process::exit(128 + sig);
                        });
                    }
                }
            }
        })?;
    Ok(())
}

fn backend_err(e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

fn sync_size<B: Backend>(terminal: &Terminal<B>, app: &mut App) -> std::io::Result<()> {
    let s = terminal.size().map_err(backend_err)?;
    if (s.width, s.height) != app.size {
        app.update(Event::Resize(s.width, s.height), Instant::now());
    }
    Ok(())
}

/// The explorer's loop: draw, wait for events (coalescing bursts such as resize storms and pastes), update, apply
/// effects, until the app quits.
pub fn run<B: Backend>(
    terminal: &mut Terminal<B>,
    app: &mut App,
    source: &mut dyn EventSource,
    env: &Env,
) -> std::io::Result<()> {
    sync_size(terminal, app)?;
    let fx = app.start(Instant::now());
    env.apply(fx, app);
    loop {
        sync_size(terminal, app)?;
        if FULL_REDRAW.swap(false, Ordering::SeqCst) {
            // The screen's content is unknown (after `fg`): wipe it and draw a blank frame, so the next frame is
            // sent whole. (`Terminal::clear` would ask the terminal for the cursor position, racing the input
            // thread for the answer.)
            terminal
                .backend_mut()
                .clear_region(ratatui::backend::ClearType::All)
                .map_err(backend_err)?;
            terminal.draw(|_| {}).map_err(backend_err)?;
        }
        terminal.draw(|f| ui::draw(f, app)).map_err(backend_err)?;
        if app.quit {
            return Ok(());
        }
        let timeout = app.timeout(Instant::now());
        let mut events: Vec<Event> = source
            .next(app.busy(), app.pending(), timeout)
            .into_iter()
            .collect();
        while events.len() < 1024 {
            match source.try_next() {
                Some(e) => events.push(e),
                None => break,
            }
        }
        if events.is_empty() {
            events.push(Event::Tick);
        }
        for e in events {
            // Ctrl-Z arrives as a key in raw mode: suspend like a shell job (see `spawn_signal_thread`).
            if let Event::Key(k) = &e
                && k.code == crossterm::event::KeyCode::Char('z')
                && k.modifiers
                    .contains(crossterm::event::KeyModifiers::CONTROL)
                && SUSPEND_ON_CTRL_Z.load(Ordering::SeqCst)
            {
                // SAFETY: raising SIGTSTP only delivers it to this process's handler.
                unsafe {
                    libc::raise(libc::SIGTSTP);
                }
                continue;
            }
            let fx = app.update(e, Instant::now());
            env.apply(fx, app);
            if app.quit {
                break;
            }
        }
    }
}
