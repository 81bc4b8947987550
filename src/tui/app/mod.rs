//! The explorer's state and its update function. Pure: no terminal, no threads, no files. Events go in; what must
//! happen outside (run the model, compute a logit lens, write a dump) comes out as [`Effect`]s for the run loop.
//! `state` holds the small parts, `update` the event and key handling (through the keymap), `layout` the screen
//! geometry that drawing and mouse hit-testing share.

mod encdec;
mod explain;
pub mod interp;
mod interp_results;
pub mod layout;
pub mod runs;
mod state;
mod update;

pub use crate::analysis::Summary;
pub use crate::colormap::Palette;
pub use crate::tui::line_edit::LineEdit;
pub use encdec::EncDec;
pub use state::{Focus, Grid, Help, Input, Jump, Lens, Panes, Runs, Selection, Status, View};

use crate::analysis::{self, HeadStats};
use crate::model::ModelInfo;
use crate::tokenize::token_labels;
use crate::trace::Trace;
use crate::tui::event::Job;
use ndarray::{Array2, Axis};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long typing must pause before the model re-runs.
pub const DEBOUNCE: Duration = Duration::from_millis(180);
/// How long a pending number jump waits for another digit.
pub const JUMP_TIMEOUT: Duration = Duration::from_millis(1500);

/// What the run loop must do after an update.
#[derive(Debug)]
pub enum Effect {
    /// Hand a job (a run, a logit lens) to the worker.
    Job(Job),
    /// Write the table on screen as `<stem>.npy` + `<stem>.csv` (`corner` heads the label column).
    DumpTable {
        stem: String,
        corner: String,
        rows: Vec<String>,
        cols: Vec<String>,
        matrix: Array2<f32>,
    },
    /// Write the whole trace in the `attn dump` format.
    DumpAll { trace: Arc<Trace> },
    /// Write an encoder–decoder run in the `attn dump` encoder–decoder format.
    DumpEncDec(Box<crate::tui::encdec::EncDecDump>),
}

/// The label of `tokens[i]` as lists show it (`#position` added when another token reads the same).
fn position_tagged(tokens: &[crate::tokenize::TokenInfo], i: usize) -> String {
    crate::tokenize::tagged_label(tokens.iter().map(|t| t.label.as_str()), i).unwrap_or_default()
}

/// The labels of `tokens[i]` for `i` in `which`, `#position` added where two tokens read the same.
fn tagged_subset(tokens: &[crate::tokenize::TokenInfo], which: &[usize]) -> Vec<String> {
    let tagged = token_labels(tokens);
    which
        .iter()
        .filter_map(|&i| tagged.get(i).cloned())
        .collect()
}

/// The explorer's whole state.
#[derive(Debug)]
pub struct App {
    pub info: ModelInfo,
    /// Shown in the status line when nothing else is (e.g. "the textbook model has random weights").
    pub hint: Option<String>,
    pub input: Input,
    pub focus: Focus,
    pub view: View,
    pub help: Help,
    pub data: Option<Summary>,
    pub sel: Selection,
    pub grid: Grid,
    pub panes: Panes,
    /// First layer shown in the overview.
    pub ov_scroll: usize,
    pub lens: Option<Lens>,
    /// The explanation views and the value-weighted grid mode.
    pub explain: crate::tui::explained::ExplainState,
    /// Ablation, sweep, rollout, attribution, generation.
    pub interp: interp::Interp,
    pub runs: Runs,
    pub status: Option<Status>,
    pub jump: Option<Jump>,
    pub color: Palette,
    /// Terminal size (columns, rows).
    pub size: (u16, u16),
    pub now: Instant,
    pub quit: bool,
    /// Where dumps go (shown in help).
    pub dump_root: PathBuf,
    /// Encoder–decoders: the attention kinds and the target line's state.
    pub encdec: Option<EncDec>,
    /// A long input's heads, computed on demand.
    pub long: runs::Long,
}

impl App {
    pub fn new(
        info: ModelInfo,
        text: &str,
        text_b: Option<&str>,
        color: Palette,
        size: (u16, u16),
    ) -> App {
        App {
            info,
            hint: None,
            input: Input {
                lines: [LineEdit::new(text), LineEdit::new(text_b.unwrap_or(""))],
                field: 0,
                fresh: true,
            },
            focus: Focus::Input,
            view: View::Grid,
            help: Help::default(),
            data: None,
            sel: Selection::default(),
            grid: Grid::default(),
            panes: Panes::default(),
            ov_scroll: 0,
            lens: None,
            explain: Default::default(),
            interp: Default::default(),
            runs: Runs::default(),
            status: None,
            jump: None,
            color,
            size,
            now: Instant::now(),
            quit: false,
            dump_root: PathBuf::from("attn-dumps"),
            encdec: None,
            long: Default::default(),
        }
    }

    /// The first run, for the starting text.
    pub fn start(&mut self, now: Instant) -> Vec<Effect> {
        self.now = now;
        self.run_now().into_iter().collect()
    }

    pub fn busy(&self) -> bool {
        self.runs.busy_since.is_some() || self.interp.busy()
    }

    /// A debounced run or a number jump is waiting for time to pass.
    pub fn pending(&self) -> bool {
        self.runs.run_at.is_some() || self.jump.is_some()
    }

    /// How long the run loop may sleep before something needs a redraw or a tick.
    pub fn timeout(&self, now: Instant) -> Duration {
        let mut t = Duration::from_secs(1);
        if let Some(at) = self.runs.run_at {
            t = t.min(at.saturating_duration_since(now));
        }
        if let Some(j) = &self.jump {
            t = t.min((j.since + JUMP_TIMEOUT).saturating_duration_since(now));
        }
        if self.busy() {
            t = t.min(Duration::from_millis(80));
        }
        t
    }

    pub fn n_layers(&self) -> usize {
        self.data
            .as_ref()
            .map(|d| d.n_layers())
            .unwrap_or(self.info.n_layers)
    }
    pub fn n_heads(&self) -> usize {
        self.data
            .as_ref()
            .map(|d| d.n_heads)
            .unwrap_or(self.info.n_heads)
    }

    /// T5's positions view draws its relative bias, a row per head: there ↑/↓ (j/k) pick the head.
    fn positions_head_key(&mut self, a: crate::tui::keymap::Action) {
        use crate::tui::keymap::Action;
        let relative = |t: &Trace| matches!(t.positional, crate::trace::Positional::Relative(_));
        if self.view != View::Positional || !self.trace().is_some_and(relative) {
            return;
        }
        let nh = self.n_heads().max(1);
        match a {
            Action::Down => self.set_head((self.sel.head + 1).min(nh - 1)),
            Action::Up => self.set_head(self.sel.head.saturating_sub(1)),
            _ => {}
        }
    }

    /// Whether the model reads sentence pairs (token types): only then is sentence B offered.
    pub fn pairs(&self) -> bool {
        self.info.takes_sentence_pairs() || self.encdec.is_some()
    }

    /// Token index under the cursor's query row / key column.
    pub fn query_token(&self) -> Option<usize> {
        self.grid.visible.get(self.grid.cur.0).copied()
    }
    pub fn key_token(&self) -> Option<usize> {
        self.grid.cols.get(self.grid.cur.1).copied()
    }

    pub fn trace(&self) -> Option<&Trace> {
        self.data.as_ref().map(|d| d.trace.as_ref())
    }

    /// Whether the model has special tokens; without them `x` hides the first token (the sink) instead.
    pub fn has_specials(&self) -> bool {
        self.trace()
            .is_some_and(|t| t.tokens.iter().any(|tok| tok.special))
    }

    /// Which tokens `x` hides: the special ones, or the first token when there are none.
    pub fn hidden_mask(&self) -> Vec<bool> {
        let Some(t) = self.trace() else { return vec![] };
        let specials = self.has_specials();
        t.tokens
            .iter()
            .enumerate()
            .map(|(i, tok)| if specials { tok.special } else { i == 0 })
            .collect()
    }

    /// The labels of the visible tokens, with `#position` added where two are alike (`the#0`, `the#4`).
    pub fn visible_labels(&self) -> Vec<String> {
        let Some(t) = self.trace() else { return vec![] };
        tagged_subset(&t.tokens, &self.grid.visible)
    }

    /// The label of token `i` as lists show it (`#position` added when another token reads the same).
    pub fn token_label(&self, i: usize) -> String {
        self.trace()
            .map(|t| position_tagged(&t.tokens, i))
            .unwrap_or_default()
    }

    /// The full `n × n` matrix of the current layer and head (or mean), before hiding.
    pub fn full_matrix(&self) -> Option<Arc<Array2<f32>>> {
        if self.interp.rollout {
            return self.interp.rollout_matrix(self.sel.layer).map(Arc::new);
        }
        if !self.sel.mean
            && let Some(m) = self
                .explain
                .grid(self.runs.shown, self.sel.layer, self.sel.head)
        {
            return Some(Arc::new(m));
        }
        let d = self.data.as_ref()?;
        if d.lazy {
            return self.long.matrix(self.sel.layer, self.sel.head);
        }
        let a = d.att(self.sel.layer)?;
        if self.sel.mean {
            Some(Arc::new(analysis::mean_over_heads(a)))
        } else if self.sel.head < a.dim().0 {
            Some(Arc::new(a.index_axis(Axis(0), self.sel.head).to_owned()))
        } else {
            None
        }
    }

    /// The statistics of the matrix on screen: of what is shown (hidden tokens left out, rows renormalised).
    pub fn current_stats(&self) -> Option<HeadStats> {
        let d = self.data.as_ref()?;
        if self.grid.hide_special {
            let stats = if self.is_cross() {
                analysis::cross::cross_stats
            } else {
                analysis::head_stats
            };
            return (self.grid.matrix.nrows() > 0).then(|| stats(&self.grid.matrix.view()));
        }
        if self.sel.mean {
            d.mean_stats.get(self.sel.layer).copied()
        } else {
            d.stats.get(self.sel.layer)?.get(self.sel.head).copied()
        }
    }

    /// Recompute everything derived from the selection.
    pub fn refresh(&mut self) {
        if let Some(d) = &self.data {
            self.interp.prepare(d);
        }
        let Some(d) = &self.data else {
            self.grid.visible.clear();
            self.grid.matrix = Default::default();
            self.grid.norms_tok.clear();
            return;
        };
        let nl = d.n_layers();
        let nh = d.n_heads;
        self.sel.layer = self.sel.layer.min(nl.saturating_sub(1));
        self.sel.head = self.sel.head.min(nh.saturating_sub(1));
        let n = d.trace.tokens.len();
        let old_q = self.query_token();
        let old_k = self.key_token();
        let mask = self.hidden_mask();
        let key_mask = self.key_hidden_mask();
        let nk = key_mask.len();
        let shown = |mask: &[bool]| -> Vec<usize> {
            (0..mask.len())
                .filter(|&i| !(self.grid.hide_special && mask[i]))
                .collect()
        };
        self.grid.visible = shown(&mask);
        self.grid.cols = shown(&key_mask);
        let find = |t: Option<usize>, vis: &[usize], keep: usize| -> usize {
            match t {
                Some(t) => vis
                    .iter()
                    .position(|&v| v >= t)
                    .unwrap_or(vis.len().saturating_sub(1)),
                None => keep,
            }
        };
        self.grid.cur = (
            find(old_q, &self.grid.visible, self.grid.cur.0),
            find(old_k, &self.grid.cols, self.grid.cur.1),
        );
        let m = self.full_matrix().unwrap_or_default();
        let fits = m.nrows() == n && m.ncols() == nk;
        let all = self.grid.visible.len() == n && self.grid.cols.len() == nk;
        self.grid.matrix = if !fits {
            Default::default()
        } else if all {
            m
        } else {
            let m = analysis::hide_and_renormalize(&m.view(), &key_mask);
            Arc::new(
                m.select(Axis(0), &self.grid.visible)
                    .select(Axis(1), &self.grid.cols),
            )
        };
        self.grid.norms_tok = match (&self.data, self.query_token()) {
            (Some(d), Some(t)) => analysis::layer_norms(&d.trace, Some(t)),
            _ => vec![],
        };
        self.ensure_visible();
    }

    /// Scroll so the cursor is on screen.
    pub fn ensure_visible(&mut self) {
        let n = self.grid.visible.len();
        let nk = self.grid.cols.len();
        self.grid.cur = (
            self.grid.cur.0.min(n.saturating_sub(1)),
            self.grid.cur.1.min(nk.saturating_sub(1)),
        );
        let (rows, cols) = layout::grid_capacity(self);
        let fit = |cur: usize, off: usize, cap: usize, n: usize| -> usize {
            let cap = cap.max(1);
            let off = if cur < off {
                cur
            } else if cur >= off + cap {
                cur + 1 - cap
            } else {
                off
            };
            off.min(n.saturating_sub(cap))
        };
        self.grid.scroll = (
            fit(self.grid.cur.0, self.grid.scroll.0, rows, n),
            fit(self.grid.cur.1, self.grid.scroll.1, cols, nk),
        );
        // Overview: keep the selected layer on screen.
        let ov_rows = layout::overview_layers(self).max(1);
        let l = self.sel.layer;
        if l < self.ov_scroll {
            self.ov_scroll = l;
        } else if l >= self.ov_scroll + ov_rows {
            self.ov_scroll = l + 1 - ov_rows;
        }
        self.ov_scroll = self.ov_scroll.min(self.n_layers().saturating_sub(ov_rows));
    }

    pub(crate) fn say(&mut self, text: impl Into<String>) {
        self.status = Some(Status {
            text: text.into(),
            error: false,
        });
    }
    pub(crate) fn fail(&mut self, text: impl Into<String>) {
        self.status = Some(Status {
            text: text.into(),
            error: true,
        });
    }

    /// Ask for a run of the current text right away.
    fn run_now(&mut self) -> Option<Effect> {
        self.runs.run_at = None;
        self.drop_stale_target();
        let text = self.input.lines[0].text.clone();
        if text.trim().is_empty() {
            self.say("type a sentence (Tab switches between the input and the explorer)");
            return None;
        }
        let b = self.input.lines[1].text.clone();
        self.runs.generation += 1;
        self.runs.busy_since = Some(self.now);
        self.runs.progress = None;
        self.interp.cancel_sweep();
        Some(Effect::Job(Job::Run {
            generation: self.runs.generation,
            text,
            text_b: (self.pairs() && !b.trim().is_empty()).then_some(b),
        }))
    }

    /// The file stem of the matrix on screen: `layer02_head03`, `layer02_mean`, `…_nospecial`.
    pub fn head_stem(&self) -> String {
        let what = if self.interp.rollout {
            "rollout".to_string()
        } else if self.sel.mean {
            "mean".to_string()
        } else {
            format!("head{:02}", self.sel.head)
        };
        let hidden = match (self.grid.hide_special, self.has_specials()) {
            (false, _) => "",
            (true, true) => "_nospecial",
            (true, false) => "_nofirst",
        };
        let kind = self
            .kind()
            .map(|k| format!("{}_", k.stem()))
            .unwrap_or_default();
        format!("{kind}layer{:02}_{what}{hidden}", self.sel.layer)
    }

    /// What `d` writes: the table the current view shows.
    fn dump_view(&mut self) -> Option<Effect> {
        let Some(d) = &self.data else {
            self.fail("nothing to dump yet");
            return None;
        };
        let trace = d.trace.clone();
        let tokens = token_labels(&trace.tokens);
        match self.view {
            View::Grid
            | View::Overview
            | View::Lens
            | View::Weight
            | View::Writes
            | View::Embedding
            | View::Walk
            | View::Sweep
            | View::Attribution => Some(Effect::DumpTable {
                stem: self.head_stem(),
                corner: if self.is_cross() {
                    "target\\source".into()
                } else {
                    "query\\key".into()
                },
                rows: self.visible_labels(),
                cols: self.visible_key_labels(),
                matrix: self.grid.matrix.as_ref().clone(),
            }),
            View::Positional => {
                let m = trace.positional.matrix().clone();
                Some(Effect::DumpTable {
                    stem: format!("positional_{}", trace.positional.kind()),
                    corner: "token\\dim".into(),
                    rows: tokens,
                    cols: (0..m.ncols()).map(|i| i.to_string()).collect(),
                    matrix: m,
                })
            }
            View::Norms => {
                let (stem, norms) = match self.query_token() {
                    Some(t) => (format!("norms_token{t:03}"), self.grid.norms_tok.clone()),
                    None => return None,
                };
                let cols = ["resid_in", "attn_update", "ffn_update", "resid_out"];
                let mut m = Array2::zeros((norms.len(), cols.len()));
                for (l, r) in norms.iter().enumerate() {
                    for (j, v) in [r.resid_in, r.attn_update, r.ffn_update, r.resid_out]
                        .into_iter()
                        .enumerate()
                    {
                        m[[l, j]] = v;
                    }
                }
                Some(Effect::DumpTable {
                    stem,
                    corner: "layer\\norm".into(),
                    rows: (0..norms.len()).map(|l| format!("layer{l}")).collect(),
                    cols: cols.iter().map(|c| c.to_string()).collect(),
                    matrix: m,
                })
            }
        }
    }

    /// Report a finished dump.
    pub fn dumped(&mut self, result: Result<Vec<PathBuf>, String>) {
        match result {
            Ok(files) => {
                let dir = files
                    .first()
                    .and_then(|f| f.parent())
                    .map(|p| p.display().to_string())
                    .unwrap_or_default();
                let names: Vec<String> = files
                    .iter()
                    .filter_map(|f| f.file_name().map(|n| n.to_string_lossy().into_owned()))
                    .collect();
                let shown = if names.len() <= 3 {
                    names.join(", ")
                } else {
                    format!("{} files", names.len())
                };
                self.say(format!("wrote {dir}/ ({shown})"));
            }
            Err(e) => self.fail(format!("dump failed: {e}")),
        }
    }
}
