//! The interactive explorer. `app` holds the state and a pure update function, `ui` draws it, `worker` runs the
//! model off the UI thread, `event` brings keys and results into one channel. [`run`] is the loop; it is generic over
//! the ratatui backend and the event source, so tests drive it with a `TestBackend` and scripted keys. Setting the
//! terminal's modes (raw mode, alternate screen) is left to the binary.

pub mod app;
pub mod event;
mod export_table;
pub mod keymap;
pub mod line_edit;
pub mod synthetic;
pub mod ui;
pub mod worker;

use crate::export;
use crate::model::{Model, ModelInfo};
use app::{App, Effect, Palette};
use event::{Event, EventSource};
use ratatui::Terminal;
use ratatui::backend::Backend;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};
use worker::Worker;

/// The sentence the explorer starts with when none is given.
pub const DEFAULT_TEXT: &str = "The cat sat on the mat because it was tired.";

/// What the run loop needs besides the app: the model (for dumps), the worker, where dumps go.
pub struct Env {
    pub model: Arc<dyn Model>,
    pub worker: Worker,
    pub dump_root: PathBuf,
}

/// The status-line hint for a model: the textbook model's weights are random.
pub fn hint_for(info: &ModelInfo) -> Option<String> {
    (info.spec == "textbook")
        .then(|| "textbook = random weights · real models: scripts/fetch-models".to_string())
}

/// A new app for a model.
pub fn new_app(
    info: &ModelInfo,
    text: &str,
    text_b: Option<&str>,
    color: Palette,
    size: (u16, u16),
) -> App {
    let mut app = App::new(info.clone(), text, text_b, color, size);
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

/// Create a fresh, empty directory `<root>/<stamp>` (or `<stamp>-2`, `-3`… when taken). Never reuses one.
pub fn fresh_dump_dir(root: &Path, stamp: &str) -> crate::Result<PathBuf> {
    std::fs::create_dir_all(root).map_err(|e| crate::Error::io(root, e))?;
    for k in 1..1000 {
        let name = if k == 1 {
            stamp.to_string()
        } else {
            format!("{stamp}-{k}")
        };
        let dir = root.join(name);
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(crate::Error::io(&dir, e)),
        }
    }
    Err(crate::Error::Input(format!(
        "{}: too many dumps in one second",
        root.display()
    )))
}

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
                    let r = fresh_dump_dir(&self.dump_root, &utc_stamp(SystemTime::now()))
                        .and_then(|dir| {
                            let t = export_table::Table {
                                stem: &stem,
                                corner: &corner,
                                rows: &rows,
                                cols: &cols,
                            };
                            let r = export_table::write(&dir, &t, &matrix.view());
                            if r.is_err() {
                                let _ = std::fs::remove_dir(&dir);
                            }
                            r
                        });
                    app.dumped(r.map_err(|e| e.to_string()));
                }
                Effect::DumpAll { trace } => {
                    let r = fresh_dump_dir(&self.dump_root, &utc_stamp(SystemTime::now()))
                        .and_then(|dir| {
                            let r = export::dump(
                                self.model.as_ref(),
                                &trace,
                                &dir,
                                export::Format::Npy,
                                false,
                            );
                            if r.is_err() {
                                let _ = std::fs::remove_dir(&dir);
                            }
                            r
                        });
                    app.dumped(r.map_err(|e| e.to_string()));
                }
            }
        }
    }
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
            let fx = app.update(e, Instant::now());
            env.apply(fx, app);
            if app.quit {
                break;
            }
        }
    }
}
