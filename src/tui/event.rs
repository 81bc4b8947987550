//! Everything the explorer reacts to arrives as one [`Event`] in one channel: keys, mouse, paste and resize from the
//! terminal (read on an input thread), and results from the inference worker. The messages between the app and the
//! worker ([`Job`], [`Outcome`], [`LensOutcome`]; the explanations' are in [`super::explained`]) live here too, below both, so neither imports the other.

use crate::analysis::Summary;
use crate::trace::{TopToken, Trace};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers, MouseEvent};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::time::Duration;

/// One thing that happened.
#[derive(Debug)]
pub enum Event {
    Key(KeyEvent),
    Mouse(MouseEvent),
    /// Bracketed paste: the whole pasted text at once.
    Paste(String),
    /// The terminal's new size (columns, rows).
    Resize(u16, u16),
    /// A forward pass finished (or failed).
    Traced(Box<Outcome>),
    /// An encoder–decoder run finished (or failed).
    EncDecTraced(Box<crate::tui::encdec::EncDecOutcome>),
    /// A logit-lens computation finished.
    Lens(Box<LensOutcome>),
    /// The forward pass of `generation` has finished `done` of its `total` blocks.
    Progress {
        generation: u64,
        done: usize,
        total: usize,
    },
    /// An explanation (one layer captured, the cursor's cell computed) finished.
    Explained(Box<crate::tui::explained::Explained>),
    /// Ablation, sweep, attribution or generation ([`crate::tui::interp`]) progressed or finished.
    Interp(Box<crate::tui::interp::InterpOutcome>),
    /// A long input's head ([`Job::Head`]) computed.
    Head(Box<HeadOutcome>),
    /// Time passed (debounce deadlines, spinner).
    Tick,
    /// Leave (SIGTERM, SIGHUP, end of a script).
    Quit,
}

/// What the worker is asked to do.
#[derive(Debug)]
pub enum Job {
    /// Tokenize and run.
    Run {
        generation: u64,
        text: String,
        text_b: Option<String>,
    },
    /// Logit lens at one position of a trace: the top tokens the residual stream leaving each layer predicts.
    Lens {
        generation: u64,
        pos: usize,
        trace: Arc<Trace>,
    },
    /// The explanation views: capture one layer and compute (see [`super::explained`]).
    Explain {
        req: super::explained::ExplainRequest,
        trace: Arc<Trace>,
        w_o: Option<Arc<ndarray::Array2<f32>>>,
        /// Encoder–decoders: which attention, and the encoder memory.
        side: Option<super::explained::EncDecSide>,
    },
    /// Ablation, sweep, attribution, generation (see [`crate::tui::interp`]).
    Interp(crate::tui::interp::InterpJob),
    /// A long input (a trace without attention): one head's matrix, or its statistics and overview thumbnail.
    Head {
        generation: u64,
        layer: usize,
        head: usize,
        want: HeadWant,
        trace: Arc<Trace>,
    },
}

/// What a [`Job::Head`] computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadWant {
    /// The `n × n` matrix, for the grid.
    Matrix,
    /// Its statistics and a `side × side` block-mean thumbnail, for the overview (the streaming pass).
    Thumb { side: usize },
}

/// The result of a [`Job::Head`].
#[derive(Debug)]
pub struct HeadOutcome {
    pub generation: u64,
    pub layer: usize,
    pub head: usize,
    pub result: Result<HeadPart, String>,
}

/// What a [`Job::Head`] produced.
#[derive(Debug)]
pub enum HeadPart {
    Matrix(Arc<ndarray::Array2<f32>>),
    Thumb {
        stats: crate::analysis::HeadStats,
        thumb: ndarray::Array2<f32>,
    },
}

/// The result of a [`Job::Run`].
#[derive(Debug)]
pub struct Outcome {
    pub generation: u64,
    pub result: Result<Summary, String>,
    /// Tokenization + forward + analysis, wall time.
    pub total: Duration,
}

/// The result of a [`Job::Lens`]: `rows[l]` are the top tokens after block `l`.
#[derive(Debug)]
pub struct LensOutcome {
    pub generation: u64,
    pub pos: usize,
    pub rows: Option<Vec<Vec<TopToken>>>,
}

impl Event {
    /// A plain key press (handy in tests and scripts).
    pub fn key(code: KeyCode) -> Self {
        Event::Key(KeyEvent::new(code, KeyModifiers::NONE))
    }
    pub fn ctrl(c: char) -> Self {
        Event::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL))
    }
    pub fn ch(c: char) -> Self {
        Event::key(KeyCode::Char(c))
    }
    /// One key press per character of `s`.
    pub fn typed(s: &str) -> Vec<Event> {
        s.chars().map(Event::ch).collect()
    }
}

/// Translate a crossterm event; focus changes are dropped.
pub fn from_crossterm(e: crossterm::event::Event) -> Option<Event> {
    use crossterm::event::Event as C;
    match e {
        C::Key(k) => Some(Event::Key(k)),
        C::Mouse(m) => Some(Event::Mouse(m)),
        C::Paste(s) => Some(Event::Paste(s)),
        C::Resize(w, h) => Some(Event::Resize(w, h)),
        C::FocusGained | C::FocusLost => None,
    }
}

/// Where the run loop gets its events. The real one reads a channel fed by the terminal and the worker; tests
/// script key presses and wait for the worker in between.
pub trait EventSource {
    /// Wait at most `timeout` for the next event; `None` when the time ran out. `busy` says whether a forward pass
    /// is under way (a scripted source waits for it before its next key).
    fn next(&mut self, busy: bool, pending: bool, timeout: Duration) -> Option<Event>;
    /// An event that is already waiting, without blocking.
    fn try_next(&mut self) -> Option<Event>;
}

/// The live source: one channel that the input thread and the worker both send into.
pub struct ChannelSource {
    pub rx: Receiver<Event>,
}

impl EventSource for ChannelSource {
    fn next(&mut self, _busy: bool, _pending: bool, timeout: Duration) -> Option<Event> {
        match self.rx.recv_timeout(timeout) {
            Ok(e) => Some(e),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => Some(Event::Quit),
        }
    }
    fn try_next(&mut self) -> Option<Event> {
        self.rx.try_recv().ok()
    }
}

/// Read terminal events on their own thread and send them into `tx` until the receiver is gone.
pub fn spawn_input_thread(tx: Sender<Event>) -> std::thread::JoinHandle<()> {
    std::thread::Builder::new()
        .name("attn-input".into())
        .spawn(move || {
            loop {
                match crossterm::event::read() {
                    Ok(e) => {
                        if let Some(ev) = from_crossterm(e)
                            && tx.send(ev).is_err()
                        {
                            return;
                        }
                    }
                    Err(_) => {
                        let _ = tx.send(Event::Quit);
                        return;
                    }
                }
            }
        })
        .unwrap_or_else(|e| panic!("cannot start the input thread: {e}"))
}

/// A scripted source for tests and benchmarks: hands out the scripted events one at a time, waiting for the worker
/// to finish (and pending debounced runs to fire) before each; when the script is done it sends [`Event::Quit`].
pub struct ScriptSource {
    pub script: std::collections::VecDeque<Event>,
    pub rx: Receiver<Event>,
}

impl ScriptSource {
    pub fn new(script: Vec<Event>, rx: Receiver<Event>) -> Self {
        ScriptSource {
            script: script.into(),
            rx,
        }
    }
}

impl EventSource for ScriptSource {
    fn next(&mut self, busy: bool, pending: bool, timeout: Duration) -> Option<Event> {
        if busy {
            return match self.rx.recv_timeout(timeout) {
                Ok(e) => Some(e),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => Some(Event::Quit),
            };
        }
        if let Ok(e) = self.rx.try_recv() {
            return Some(e);
        }
        if let Some(e) = self.script.pop_front() {
            return Some(e);
        }
        if pending {
            std::thread::sleep(timeout);
            return None;
        }
        Some(Event::Quit)
    }
    fn try_next(&mut self) -> Option<Event> {
        None
    }
}
