//! The explorer's state in small parts: what is selected, the grid's view of it, the overview's scroll, the
//! positions view, the input lines, the run in flight.

use crate::analysis::{LayerNorms, NormStat};
use crate::colormap::Scale;
use crate::trace::TopToken;
use crate::tui::line_edit::LineEdit;
use ndarray::Array2;
use std::time::{Duration, Instant};

/// Where keys go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Focus {
    Input,
    Explorer,
}

/// The main area.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    /// One head's attention grid with the side panels.
    Grid,
    /// Every layer × head as a thumbnail (`m`).
    Overview,
    /// Positional encodings: bars for one position and a positions × dimensions heatmap (`p`).
    Positional,
    /// Residual-stream norms per layer (`n`).
    Norms,
    /// Decoders: the logit lens at the cursor's position (`e`).
    Lens,
    /// How the weight under the cursor is computed (`E`).
    Weight,
    /// What the head writes for the cursor's query: Σ α·v, through W_O (`o`).
    Writes,
    /// The embedding of the cursor's query token, part by part (`b`).
    Embedding,
    /// The cursor's query token through the selected block (`B`).
    Walk,
    /// Every head ablated in turn, ranked by Δ logit (`S`).
    Sweep,
    /// Direct logit attribution at the cursor's position (`T`).
    Attribution,
}

impl View {
    /// One of the explanation views (`E o b B`), which share their keys.
    pub fn explains(self) -> bool {
        matches!(
            self,
            View::Weight | View::Writes | View::Embedding | View::Walk
        )
    }
}

/// The head on screen: the header, `d`, the grid, the panels and the overview's frame all show this one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Selection {
    pub layer: usize,
    pub head: usize,
    /// The mean over the layer's heads instead of one head.
    pub mean: bool,
}

/// The grid: display options, the tokens shown, the cursor and the matrix on screen.
#[derive(Debug, Clone)]
pub struct Grid {
    pub scale: Scale,
    /// Hide the special tokens (or, on models without any, the first token) and renormalise rows.
    pub hide_special: bool,
    /// Zoomed-out block view of the whole matrix.
    pub zoom: bool,
    /// Weights as numbers in the cells (when they are wide enough).
    pub numbers: bool,
    /// Token indices shown as rows (all, or all but the hidden ones).
    pub visible: Vec<usize>,
    /// Token indices shown as columns: `visible` for self-attention, source tokens for cross-attention.
    pub cols: Vec<usize>,
    /// Cell cursor in `visible` coordinates: (query row, key column).
    pub cur: (usize, usize),
    /// First visible (row, column).
    pub scroll: (usize, usize),
    /// The matrix on screen: `visible × visible`, renormalised when tokens are hidden (shared with the head it shows
    /// when nothing is hidden: a long input's head is not copied).
    pub matrix: std::sync::Arc<Array2<f32>>,
    /// Per layer norms of the token under the cursor.
    pub norms_tok: Vec<LayerNorms>,
}

impl Default for Grid {
    fn default() -> Self {
        Grid {
            scale: Scale::Linear,
            hide_special: false,
            zoom: false,
            numbers: true,
            visible: vec![],
            cols: vec![],
            cur: (0, 0),
            scroll: (0, 0),
            matrix: Default::default(),
            norms_tok: vec![],
        }
    }
}

/// The positions and norms views.
#[derive(Debug, Clone, Copy, Default)]
pub struct Panes {
    /// First dimension shown in the positional heatmap.
    pub pos_scroll: usize,
    /// How the norms view sums up all tokens.
    pub norm_stat: NormStat,
    /// Log-scaled norm bars.
    pub log_bars: bool,
}

/// The two sentence lines.
#[derive(Debug, Clone)]
pub struct Input {
    /// Sentence A and sentence B (sentence pairs; empty = none).
    pub lines: [LineEdit; 2],
    /// Which line the input focus edits.
    pub field: usize,
    /// Sentence A is still the sample: shown dim as a placeholder; the first typed key replaces it.
    pub fresh: bool,
}

/// The help overlay.
#[derive(Debug, Clone, Copy, Default)]
pub struct Help {
    pub open: bool,
    /// First line shown (it scrolls on small terminals).
    pub scroll: usize,
}

/// Runs of the model: which one is wanted, which one is shown, how far the one in flight is.
#[derive(Debug, Clone, Default)]
pub struct Runs {
    /// Latest generation asked for; outcomes of older ones are dropped.
    pub generation: u64,
    /// Generation of the trace on screen.
    pub shown: u64,
    pub busy_since: Option<Instant>,
    /// Blocks done of all, for the run in flight.
    pub progress: Option<(usize, usize)>,
    /// Debounced run deadline.
    pub run_at: Option<Instant>,
    /// Wall time of the last run (tokenize + forward + analysis).
    pub total: Duration,
}

/// A message in the status line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub text: String,
    pub error: bool,
}

/// A number being typed to jump to a head (digits) or a layer (`g` then digits).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Jump {
    pub layer: bool,
    pub digits: String,
    pub since: Instant,
}

/// The logit lens at one position.
#[derive(Debug, Clone)]
pub struct Lens {
    pub generation: u64,
    pub pos: usize,
    /// `None` while computing; `Some(None)` when the model has no LM head.
    pub rows: Option<Option<Vec<Vec<TopToken>>>>,
}
