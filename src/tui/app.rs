//! The explorer's state and its update function. Pure: no terminal, no threads, no files. Events go in; what must
//! happen outside (run the model, compute a logit lens, write a dump) comes out as [`Effect`]s for the run loop.

use super::event::Event;
use super::ui::layout;
use super::worker::Job;
use crate::analysis::{self, HeadStats, LayerNorms};
use crate::colormap::Scale;
use crate::model::ModelInfo;
use crate::trace::{TopToken, Trace};
use crossterm::event::{
    KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseButton, MouseEvent, MouseEventKind,
};
use ndarray::{Array2, Array3, Axis};
use std::sync::Arc;
use std::time::{Duration, Instant};
use unicode_segmentation::UnicodeSegmentation;

/// How long typing must pause before the model re-runs.
pub const DEBOUNCE: Duration = Duration::from_millis(180);
/// How long a pending number jump waits for another digit.
pub const JUMP_TIMEOUT: Duration = Duration::from_millis(1500);

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
}

/// How colours reach the terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColorMode {
    TrueColor,
    Ansi256,
    /// No colour at all (NO_COLOR, `--color never`): shade characters ░▒▓█ and bold/reverse.
    Mono,
}

impl ColorMode {
    pub fn next(self) -> Self {
        match self {
            ColorMode::TrueColor => ColorMode::Ansi256,
            ColorMode::Ansi256 => ColorMode::Mono,
            ColorMode::Mono => ColorMode::TrueColor,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            ColorMode::TrueColor => "true colour",
            ColorMode::Ansi256 => "256 colours",
            ColorMode::Mono => "no colour (shades)",
        }
    }
}

/// A trace with everything the views need computed once per forward pass.
#[derive(Debug)]
pub struct Prepared {
    pub trace: Arc<Trace>,
    /// `stats[layer][head]`.
    pub stats: Vec<Vec<HeadStats>>,
    /// Per layer: statistics of the mean over heads.
    pub mean_stats: Vec<HeadStats>,
    /// Per layer: norms averaged over tokens.
    pub norms_mean: Vec<LayerNorms>,
    pub n_heads: usize,
    /// Where NaN/Inf first appear in the trace, if anywhere (shown as a warning in the status line).
    pub non_finite: Option<analysis::NonFinite>,
}

impl Prepared {
    /// Check that the trace is complete (every layer's attention kept, shapes agree) and analyse it.
    pub fn new(trace: Trace) -> Result<Prepared, String> {
        let n = trace.n_tokens();
        let nl = trace.n_layers();
        if trace.hidden.len() != nl + 1 {
            return Err(format!(
                "the trace has {} hidden states for {nl} layers",
                trace.hidden.len()
            ));
        }
        let mut n_heads = None;
        let mut stats = Vec::with_capacity(nl);
        let mut mean_stats = Vec::with_capacity(nl);
        for (l, lt) in trace.layers.iter().enumerate() {
            let a = lt
                .attention
                .as_ref()
                .ok_or_else(|| format!("layer {l}: the attention was not kept"))?;
            let (h, r, c) = a.dim();
            if r != n || c != n || h == 0 || n_heads.is_some_and(|k| k != h) {
                return Err(format!(
                    "layer {l}: attention has shape [{h}, {r}, {c}] for {n} tokens"
                ));
            }
            n_heads = Some(h);
            if lt.attn_update_norm.len() != n || lt.ffn_update_norm.len() != n {
                return Err(format!(
                    "layer {l}: update norms do not cover the {n} tokens"
                ));
            }
            stats.push(a.outer_iter().map(|m| analysis::head_stats(&m)).collect());
            mean_stats.push(analysis::head_stats(&analysis::mean_over_heads(a).view()));
        }
        for (l, h) in trace.hidden.iter().enumerate() {
            if h.nrows() != n {
                return Err(format!(
                    "hidden state {l} has {} rows for {n} tokens",
                    h.nrows()
                ));
            }
        }
        let n_heads = n_heads.unwrap_or(0);
        if !trace.kv_group.is_empty() && trace.kv_group.len() != n_heads {
            return Err(format!(
                "kv_group has {} entries for {n_heads} heads",
                trace.kv_group.len()
            ));
        }
        let norms_mean = if n > 0 {
            analysis::layer_norms(&trace, None)
        } else {
            vec![]
        };
        let mut trace = trace;
        for t in &mut trace.tokens {
            t.label = display_label(&t.label);
        }
        Ok(Prepared {
            non_finite: analysis::first_non_finite(&trace),
            trace: Arc::new(trace),
            stats,
            mean_stats,
            norms_mean,
            n_heads,
        })
    }

    pub fn att(&self, layer: usize) -> Option<&Array3<f32>> {
        self.trace
            .layers
            .get(layer)
            .and_then(|l| l.attention.as_ref())
    }

    pub fn n_layers(&self) -> usize {
        self.trace.n_layers()
    }
}

/// The visible compatibility form of a lone conjoining Hangul vowel or final consonant (U+1160–U+11FF), which
/// terminals draw with zero width when no syllable precedes it.
fn compat_jamo(c: char) -> Option<char> {
    const FINALS: [u32; 27] = [
        0x3131, 0x3132, 0x3133, 0x3134, 0x3135, 0x3136, 0x3137, 0x3139, 0x313A, 0x313B, 0x313C,
        0x313D, 0x313E, 0x313F, 0x3140, 0x3141, 0x3142, 0x3144, 0x3145, 0x3146, 0x3147, 0x3148,
        0x314A, 0x314B, 0x314C, 0x314D, 0x314E,
    ];
    const INITIALS: [u32; 19] = [
        0x3131, 0x3132, 0x3134, 0x3137, 0x3138, 0x3139, 0x3141, 0x3142, 0x3143, 0x3145, 0x3146,
        0x3147, 0x3148, 0x3149, 0x314A, 0x314B, 0x314C, 0x314D, 0x314E,
    ];
    let u = c as u32;
    match u {
        0x1100..=0x1112 => INITIALS
            .get((u - 0x1100) as usize)
            .and_then(|&v| char::from_u32(v)),
        0x1161..=0x1175 => char::from_u32(u - 0x1161 + 0x314F),
        0x11A8..=0x11C2 => FINALS
            .get((u - 0x11A8) as usize)
            .and_then(|&v| char::from_u32(v)),
        _ => None,
    }
}

/// A token label made safe to lay out: lone conjoining jamo (the uncased BERT tokenizer splits Hangul into them)
/// become their visible compatibility forms, so the label takes the columns it is measured to take.
pub fn display_label(label: &str) -> String {
    let chars: Vec<char> = label.chars().collect();
    let jamo = |c: Option<&char>| c.is_some_and(|c| (0x1100..=0x11FF).contains(&(*c as u32)));
    let mut out = String::with_capacity(label.len());
    for (i, c) in chars.iter().enumerate() {
        // A jamo that joins a neighbour into a syllable stays; a lone one becomes its visible form.
        let joined = (i > 0 && jamo(chars.get(i - 1))) || jamo(chars.get(i + 1));
        let mapped = if joined { None } else { compat_jamo(*c) };
        out.push(mapped.unwrap_or(*c));
    }
    out
}

/// A one-line text field edited in place. `cursor` is a byte offset that always sits on a grapheme boundary.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LineEdit {
    pub text: String,
    pub cursor: usize,
}

impl LineEdit {
    pub fn new(text: &str) -> Self {
        LineEdit {
            text: text.to_string(),
            cursor: text.len(),
        }
    }
    fn prev(&self) -> usize {
        self.text[..self.cursor]
            .grapheme_indices(true)
            .next_back()
            .map(|(i, _)| i)
            .unwrap_or(0)
    }
    fn next(&self) -> usize {
        self.cursor
            + self.text[self.cursor..]
                .graphemes(true)
                .next()
                .map(str::len)
                .unwrap_or(0)
    }
    /// Insert text at the cursor; line breaks become spaces (the input is one line).
    pub fn insert(&mut self, s: &str) {
        let clean: String = s
            .chars()
            .map(|c| if c == '\n' || c == '\r' { ' ' } else { c })
            .collect();
        self.text.insert_str(self.cursor, &clean);
        self.cursor += clean.len();
        // Combining marks typed after a base join its grapheme: keep the cursor on a boundary.
        self.snap();
    }
    fn snap(&mut self) {
        if !self.text.is_char_boundary(self.cursor) || self.cursor > self.text.len() {
            self.cursor = self.text.len();
        }
        let mut pos = 0;
        for g in self.text.graphemes(true) {
            if pos + g.len() > self.cursor {
                break;
            }
            pos += g.len();
        }
        self.cursor = pos;
    }
    pub fn backspace(&mut self) {
        let p = self.prev();
        self.text.replace_range(p..self.cursor, "");
        self.cursor = p;
    }
    pub fn delete(&mut self) {
        let n = self.next();
        self.text.replace_range(self.cursor..n, "");
    }
    pub fn left(&mut self) {
        self.cursor = self.prev();
    }
    pub fn right(&mut self) {
        self.cursor = self.next();
    }
    pub fn home(&mut self) {
        self.cursor = 0;
    }
    pub fn end(&mut self) {
        self.cursor = self.text.len();
    }
    /// Ctrl-U: delete from the start of the line to the cursor.
    pub fn kill_to_start(&mut self) {
        self.text.replace_range(..self.cursor, "");
        self.cursor = 0;
    }
    /// Ctrl-K: delete from the cursor to the end.
    pub fn kill_to_end(&mut self) {
        self.text.truncate(self.cursor);
    }
    /// Ctrl-W: delete the word before the cursor.
    pub fn delete_word(&mut self) {
        let before = &self.text[..self.cursor];
        let trimmed = before.trim_end();
        let start = trimmed
            .char_indices()
            .rev()
            .find(|(_, c)| c.is_whitespace())
            .map(|(i, c)| i + c.len_utf8())
            .unwrap_or(0);
        self.text.replace_range(start..self.cursor, "");
        self.cursor = start;
    }
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

/// What the run loop must do after an update.
#[derive(Debug)]
pub enum Effect {
    /// Hand a job (a run, a logit lens) to the worker.
    Job(Job),
    /// Write the matrix on screen as `<stem>.npy` + `<stem>.csv`.
    DumpHead {
        stem: String,
        labels: Vec<String>,
        matrix: Array2<f32>,
    },
    /// Write the whole trace in the `attn dump` format.
    DumpAll { trace: Arc<Trace> },
}

/// The explorer's whole state.
#[derive(Debug)]
pub struct App {
    pub info: ModelInfo,
    /// Shown in the status line when nothing else is (e.g. "the textbook model has random weights").
    pub hint: Option<String>,
    /// Sentence A and sentence B (BERT pairs; empty = none).
    pub inputs: [LineEdit; 2],
    /// Which sentence the input focus edits.
    pub field: usize,
    /// The next typed character replaces sentence A (the starting example is "selected").
    pub fresh: bool,
    pub focus: Focus,
    pub view: View,
    pub help: bool,
    /// First line of the help shown (it scrolls on small terminals).
    pub help_scroll: usize,
    pub data: Option<Prepared>,
    /// Generation of the trace in `data`.
    pub data_gen: u64,
    /// Wall time of the last run (tokenize + forward + analysis).
    pub total: Duration,
    pub layer: usize,
    pub head: usize,
    /// Show the mean over the layer's heads.
    pub mean: bool,
    pub scale: Scale,
    pub hide_special: bool,
    /// Zoomed-out block view of the whole matrix.
    pub zoom: bool,
    /// Weights as numbers in the cells (when they are wide enough).
    pub numbers: bool,
    pub color: ColorMode,
    /// Token indices shown in the grid (all, or all but the special tokens).
    pub visible: Vec<usize>,
    /// Cell cursor in `visible` coordinates: (query row, key column).
    pub cur: (usize, usize),
    /// First visible (row, column) of the grid.
    pub scroll: (usize, usize),
    /// The matrix on screen: `visible × visible`, renormalised when special tokens are hidden.
    pub matrix: Array2<f32>,
    /// Per layer norms of the token under the cursor.
    pub norms_tok: Vec<LayerNorms>,
    /// Overview cursor (layer, head) and first layer shown.
    pub ov: (usize, usize),
    pub ov_scroll: usize,
    /// First dimension shown in the positional heatmap.
    pub pos_scroll: usize,
    pub lens: Option<Lens>,
    /// The explanation views and the value-weighted grid mode.
    pub explain: crate::tui::explained::ExplainState,
    pub status: Option<Status>,
    /// Latest generation asked for; outcomes of older ones are dropped.
    pub generation: u64,
    pub busy_since: Option<Instant>,
    /// Debounced run deadline.
    pub run_at: Option<Instant>,
    pub jump: Option<Jump>,
    /// Terminal size (columns, rows).
    pub size: (u16, u16),
    pub now: Instant,
    pub quit: bool,
    /// Where dumps go (shown in help).
    pub dump_root: std::path::PathBuf,
}

impl App {
    pub fn new(
        info: ModelInfo,
        text: &str,
        text_b: Option<&str>,
        color: ColorMode,
        size: (u16, u16),
    ) -> App {
        App {
            info,
            hint: None,
            inputs: [LineEdit::new(text), LineEdit::new(text_b.unwrap_or(""))],
            field: 0,
            fresh: true,
            focus: Focus::Input,
            view: View::Grid,
            help: false,
            help_scroll: 0,
            data: None,
            data_gen: 0,
            total: Duration::ZERO,
            layer: 0,
            head: 0,
            mean: false,
            scale: Scale::Linear,
            hide_special: false,
            zoom: false,
            numbers: true,
            color,
            visible: vec![],
            cur: (0, 0),
            scroll: (0, 0),
            matrix: Array2::zeros((0, 0)),
            norms_tok: vec![],
            ov: (0, 0),
            ov_scroll: 0,
            pos_scroll: 0,
            lens: None,
            explain: Default::default(),
            status: None,
            generation: 0,
            busy_since: None,
            run_at: None,
            jump: None,
            size,
            now: Instant::now(),
            quit: false,
            dump_root: std::path::PathBuf::from("attn-dumps"),
        }
    }

    /// The first run, for the starting text.
    pub fn start(&mut self, now: Instant) -> Vec<Effect> {
        self.now = now;
        self.run_now().into_iter().collect()
    }

    pub fn busy(&self) -> bool {
        self.busy_since.is_some()
    }

    /// A debounced run or a number jump is waiting for time to pass.
    pub fn pending(&self) -> bool {
        self.run_at.is_some() || self.jump.is_some()
    }

    /// How long the run loop may sleep before something needs a redraw or a tick.
    pub fn timeout(&self, now: Instant) -> Duration {
        let mut t = Duration::from_secs(1);
        if let Some(at) = self.run_at {
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

    /// Token index under the cursor's query row / key column.
    pub fn query_token(&self) -> Option<usize> {
        self.visible.get(self.cur.0).copied()
    }
    pub fn key_token(&self) -> Option<usize> {
        self.visible.get(self.cur.1).copied()
    }

    pub fn trace(&self) -> Option<&Trace> {
        self.data.as_ref().map(|d| d.trace.as_ref())
    }

    /// The full `n × n` matrix of the current layer and head (or mean), before hiding.
    pub fn full_matrix(&self) -> Option<Array2<f32>> {
        if !self.mean
            && let Some(m) = self.explain.grid(self.data_gen, self.layer, self.head)
        {
            return Some(m);
        }
        let a = self.data.as_ref()?.att(self.layer)?;
        if self.mean {
            Some(analysis::mean_over_heads(a))
        } else if self.head < a.dim().0 {
            Some(a.index_axis(Axis(0), self.head).to_owned())
        } else {
            None
        }
    }

    /// Recompute everything derived from the selection.
    pub fn refresh(&mut self) {
        let Some(d) = &self.data else {
            self.visible.clear();
            self.matrix = Array2::zeros((0, 0));
            self.norms_tok.clear();
            return;
        };
        let nl = d.n_layers();
        let nh = d.n_heads;
        self.layer = self.layer.min(nl.saturating_sub(1));
        self.head = self.head.min(nh.saturating_sub(1));
        self.ov = (
            self.ov.0.min(nl.saturating_sub(1)),
            self.ov.1.min(nh.saturating_sub(1)),
        );
        let tokens = &d.trace.tokens;
        let old_q = self.query_token();
        let old_k = self.key_token();
        self.visible = (0..tokens.len())
            .filter(|&i| !(self.hide_special && tokens[i].special))
            .collect();
        let find = |t: Option<usize>, vis: &[usize], keep: usize| -> usize {
            match t {
                Some(t) => vis
                    .iter()
                    .position(|&v| v >= t)
                    .unwrap_or(vis.len().saturating_sub(1)),
                None => keep,
            }
        };
        self.cur = (
            find(old_q, &self.visible, self.cur.0),
            find(old_k, &self.visible, self.cur.1),
        );
        let m = self.full_matrix().unwrap_or_else(|| Array2::zeros((0, 0)));
        let m = if self.hide_special && m.nrows() == tokens.len() {
            let mask: Vec<bool> = tokens.iter().map(|t| t.special).collect();
            analysis::hide_and_renormalize(&m.view(), &mask)
        } else {
            m
        };
        self.matrix = if m.nrows() == tokens.len() {
            m.select(Axis(0), &self.visible)
                .select(Axis(1), &self.visible)
        } else {
            Array2::zeros((0, 0))
        };
        self.norms_tok = match self.query_token() {
            Some(t) => analysis::layer_norms(&d.trace, Some(t)),
            None => vec![],
        };
        self.ensure_visible();
    }

    /// Scroll so the cursor is on screen.
    pub fn ensure_visible(&mut self) {
        let n = self.visible.len();
        self.cur = (
            self.cur.0.min(n.saturating_sub(1)),
            self.cur.1.min(n.saturating_sub(1)),
        );
        let (rows, cols) = layout::grid_capacity(self);
        let fit = |cur: usize, off: usize, cap: usize| -> usize {
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
        self.scroll = (
            fit(self.cur.0, self.scroll.0, rows),
            fit(self.cur.1, self.scroll.1, cols),
        );
        // Overview: keep the selected layer on screen.
        let ov_rows = layout::overview_layers(self).max(1);
        let l = self.ov.0;
        if l < self.ov_scroll {
            self.ov_scroll = l;
        } else if l >= self.ov_scroll + ov_rows {
            self.ov_scroll = l + 1 - ov_rows;
        }
        self.ov_scroll = self.ov_scroll.min(self.n_layers().saturating_sub(ov_rows));
    }

    fn say(&mut self, text: impl Into<String>) {
        self.status = Some(Status {
            text: text.into(),
            error: false,
        });
    }
    fn fail(&mut self, text: impl Into<String>) {
        self.status = Some(Status {
            text: text.into(),
            error: true,
        });
    }

    /// Ask for a run of the current text right away.
    fn run_now(&mut self) -> Option<Effect> {
        self.run_at = None;
        let text = self.inputs[0].text.clone();
        if text.trim().is_empty() {
            self.say("type a sentence (Tab switches between the input and the explorer)");
            return None;
        }
        let b = self.inputs[1].text.clone();
        self.generation += 1;
        self.busy_since = Some(self.now);
        Some(Effect::Job(Job::Run {
            generation: self.generation,
            text,
            text_b: (!b.trim().is_empty()).then_some(b),
        }))
    }

    fn edited(&mut self) {
        self.run_at = Some(self.now + DEBOUNCE);
    }

    /// Handle one event.
    pub fn update(&mut self, ev: Event, now: Instant) -> Vec<Effect> {
        self.now = now;
        let mut fx = vec![];
        match ev {
            Event::Key(k) => {
                if k.kind != KeyEventKind::Release {
                    fx.extend(self.key(k));
                }
            }
            Event::Paste(s) => {
                self.focus = Focus::Input;
                if self.fresh && self.field == 0 {
                    self.inputs[0] = LineEdit::default();
                }
                self.fresh = false;
                self.inputs[self.field].insert(&s);
                self.edited();
            }
            Event::Mouse(m) => fx.extend(self.mouse(m)),
            Event::Resize(w, h) => {
                self.size = (w, h);
                self.ensure_visible();
            }
            Event::Traced(o) => {
                if o.generation == self.generation {
                    self.busy_since = None;
                    match o.result {
                        Ok(p) => {
                            let first = self.data.is_none();
                            self.data = Some(p);
                            if first {
                                self.cur = (1, 1);
                            }
                            self.data_gen = o.generation;
                            self.total = o.total;
                            self.lens = None;
                            self.explain.reset();
                            if self.status.as_ref().is_some_and(|s| s.error) {
                                self.status = None;
                            }
                            self.refresh();
                            if self.view == View::Lens {
                                fx.extend(self.want_lens());
                            }
                        }
                        Err(e) => self.fail(format!("error: {e}")),
                    }
                }
            }
            Event::Lens(o) => {
                if let Some(l) = &mut self.lens
                    && l.generation == o.generation
                    && l.pos == o.pos
                {
                    l.rows = Some(o.rows);
                }
            }
            Event::Explained(e) => {
                if self.explain.receive(*e) {
                    self.refresh();
                }
            }
            Event::Tick => {}
            Event::Quit => self.quit = true,
        }
        if self.run_at.is_some_and(|t| t <= now) {
            fx.extend(self.run_now());
        }
        fx.extend(self.want_explain());
        if self
            .jump
            .as_ref()
            .is_some_and(|j| now >= j.since + JUMP_TIMEOUT)
        {
            self.jump = None;
        }
        fx
    }

    fn key(&mut self, k: KeyEvent) -> Vec<Effect> {
        let ctrl = k.modifiers.contains(KeyModifiers::CONTROL);
        if ctrl && matches!(k.code, KeyCode::Char('c') | KeyCode::Char('q')) {
            self.quit = true;
            return vec![];
        }
        if self.help {
            match k.code {
                KeyCode::Down | KeyCode::Char('j') => self.help_scroll += 1,
                KeyCode::Up | KeyCode::Char('k') => {
                    self.help_scroll = self.help_scroll.saturating_sub(1)
                }
                KeyCode::PageDown => self.help_scroll += 10,
                KeyCode::PageUp => self.help_scroll = self.help_scroll.saturating_sub(10),
                _ => self.help = false,
            }
            self.help_scroll = self.help_scroll.min(super::ui::KEYS.len());
            return vec![];
        }
        if k.code == KeyCode::F(1) {
            self.help = true;
            self.help_scroll = 0;
            return vec![];
        }
        match self.focus {
            Focus::Input => self.input_key(k),
            Focus::Explorer => self.explorer_key(k),
        }
    }

    fn input_key(&mut self, k: KeyEvent) -> Vec<Effect> {
        let ctrl = k.modifiers.contains(KeyModifiers::CONTROL);
        let alt = k.modifiers.contains(KeyModifiers::ALT);
        let f = self.field;
        let was_fresh = self.fresh;
        self.fresh = false;
        let e = &mut self.inputs[f];
        match k.code {
            KeyCode::Enter => {
                self.focus = Focus::Explorer;
                return self.run_now().into_iter().collect();
            }
            KeyCode::Tab | KeyCode::Esc | KeyCode::BackTab => self.focus = Focus::Explorer,
            KeyCode::Down => self.field = 1,
            KeyCode::Up => self.field = 0,
            KeyCode::Left => e.left(),
            KeyCode::Right => e.right(),
            KeyCode::Home => e.home(),
            KeyCode::End => e.end(),
            KeyCode::Backspace => {
                e.backspace();
                self.edited();
            }
            KeyCode::Delete => {
                e.delete();
                self.edited();
            }
            KeyCode::Char(c) if ctrl => match c {
                'u' => {
                    e.kill_to_start();
                    self.edited();
                }
                'k' => {
                    e.kill_to_end();
                    self.edited();
                }
                'w' | 'h' => {
                    e.delete_word();
                    self.edited();
                }
                'a' => e.home(),
                'e' => e.end(),
                _ => {}
            },
            KeyCode::Char(_) if alt => {}
            KeyCode::Char(c) => {
                if was_fresh && f == 0 {
                    *e = LineEdit::default();
                }
                let mut b = [0u8; 4];
                self.inputs[f].insert(c.encode_utf8(&mut b));
                self.edited();
            }
            _ => {}
        }
        vec![]
    }

    fn explorer_key(&mut self, k: KeyEvent) -> Vec<Effect> {
        let mut fx = vec![];
        // A pending number jump eats digits.
        if let KeyCode::Char(c @ '0'..='9') = k.code {
            self.digit(c);
            return fx;
        }
        if k.code == KeyCode::Char('g') {
            self.jump = Some(Jump {
                layer: true,
                digits: String::new(),
                since: self.now,
            });
            self.say("go to layer: type its number");
            return fx;
        }
        if self.jump.take().is_some() && k.code == KeyCode::Enter {
            return fx;
        }
        match k.code {
            KeyCode::Char('q') => self.quit = true,
            KeyCode::Char('?') => {
                self.help = true;
                self.help_scroll = 0;
            }
            KeyCode::Tab | KeyCode::BackTab | KeyCode::Char('i') | KeyCode::Char('/') => {
                self.focus = Focus::Input
            }
            KeyCode::Esc => {
                if self.view == View::Grid {
                    self.focus = Focus::Input;
                } else {
                    self.view = View::Grid;
                }
            }
            KeyCode::Char('m') => self.toggle_view(View::Overview),
            KeyCode::Char('p') => self.toggle_view(View::Positional),
            KeyCode::Char('n') => self.toggle_view(View::Norms),
            KeyCode::Char('e') => {
                if self.info.causal || self.trace().is_some_and(|t| t.next_tokens.is_some()) {
                    self.toggle_view(View::Lens);
                    if self.view == View::Lens {
                        fx.extend(self.want_lens());
                    }
                } else {
                    self.say("the logit lens needs a decoder with an LM head (GPT-2, Llama); this model is an encoder");
                }
            }
            KeyCode::Char('E') => self.toggle_view(View::Weight),
            KeyCode::Char('o') => self.toggle_view(View::Writes),
            KeyCode::Char('b') => self.toggle_view(View::Embedding),
            KeyCode::Char('B') => self.toggle_view(View::Walk),
            KeyCode::Char('v') => {
                self.explain.value_weighted = !self.explain.value_weighted;
                self.refresh();
                self.say(if self.explain.value_weighted {
                    "value-weighted: ‖α·v W_O‖ per key (Kobayashi et al. 2020), rows normalised"
                } else {
                    "attention weights α"
                });
            }
            KeyCode::Char('s') => {
                self.scale = self.scale.next();
                self.say(format!("colour scale: {}", self.scale.name()));
            }
            KeyCode::Char('x') => {
                self.hide_special = !self.hide_special;
                self.refresh();
                self.say(if self.hide_special {
                    "special tokens hidden; rows renormalised over the rest"
                } else {
                    "special tokens shown"
                });
            }
            KeyCode::Char('a') => {
                self.mean = !self.mean;
                self.refresh();
            }
            KeyCode::Char('z') => {
                self.zoom = !self.zoom;
                self.ensure_visible();
            }
            KeyCode::Char('w') => self.numbers = !self.numbers,
            KeyCode::Char('c') => {
                self.color = self.color.next();
                self.say(format!("colours: {}", self.color.name()));
            }
            KeyCode::Char('d') => fx.extend(self.dump_head()),
            KeyCode::Char('D') => match &self.data {
                Some(d) => fx.push(Effect::DumpAll {
                    trace: d.trace.clone(),
                }),
                None => self.fail("nothing to dump yet"),
            },
            _ => match self.view {
                View::Overview => fx.extend(self.overview_key(k)),
                View::Grid => self.grid_key(k),
                View::Positional | View::Norms => self.rows_key(k),
                View::Weight | View::Writes | View::Embedding | View::Walk => self.explain_key(k),
                View::Lens => {
                    let before = self.cur.0;
                    self.rows_key(k);
                    if self.cur.0 != before {
                        fx.extend(self.want_lens());
                    }
                }
            },
        }
        fx
    }

    fn toggle_view(&mut self, v: View) {
        self.view = if self.view == v { View::Grid } else { v };
        if self.view == View::Overview {
            self.ov = (self.layer, self.head);
        }
        self.ensure_visible();
    }

    fn digit(&mut self, c: char) {
        let layer = self.jump.as_ref().is_some_and(|j| j.layer);
        let mut digits = self
            .jump
            .as_ref()
            .map(|j| j.digits.clone())
            .unwrap_or_default();
        digits.push(c);
        let limit = if layer {
            self.n_layers()
        } else {
            self.n_heads()
        };
        let mut v: usize = digits.parse().unwrap_or(usize::MAX);
        if v >= limit {
            // Start over with this digit (e.g. "1" "5" with 12 heads → 15 is out of range → head 5).
            digits = c.to_string();
            v = digits.parse().unwrap_or(0);
        }
        if v >= limit {
            self.fail(format!(
                "{} {v} does not exist: numbers run 0–{}",
                if layer { "layer" } else { "head" },
                limit.saturating_sub(1)
            ));
            self.jump = None;
            return;
        }
        if layer {
            self.set_layer(v);
        } else {
            self.mean = false;
            self.set_head(v);
        }
        // Keep waiting for another digit only if one could still make a valid number.
        self.jump = (v * 10 < limit).then_some(Jump {
            layer,
            digits,
            since: self.now,
        });
        self.status = None;
    }

    fn set_layer(&mut self, l: usize) {
        self.layer = l;
        self.ov.0 = l;
        self.refresh();
    }
    fn set_head(&mut self, h: usize) {
        self.head = h;
        self.ov.1 = h;
        self.refresh();
    }

    fn grid_key(&mut self, k: KeyEvent) {
        let nl = self.n_layers().max(1);
        let nh = self.n_heads().max(1);
        let n = self.visible.len();
        let (page_r, page_c) = layout::grid_capacity(self);
        match k.code {
            KeyCode::Right => {
                self.mean = false;
                self.set_head((self.head + 1) % nh);
            }
            KeyCode::Left => {
                self.mean = false;
                self.set_head((self.head + nh - 1) % nh);
            }
            KeyCode::Down => self.set_layer((self.layer + 1) % nl),
            KeyCode::Up => self.set_layer((self.layer + nl - 1) % nl),
            KeyCode::Char('h') => self.move_cur(0, -1),
            KeyCode::Char('l') => self.move_cur(0, 1),
            KeyCode::Char('k') => self.move_cur(-1, 0),
            KeyCode::Char('j') => self.move_cur(1, 0),
            KeyCode::PageDown => self.move_cur(page_r.max(1) as isize, 0),
            KeyCode::PageUp => self.move_cur(-(page_r.max(1) as isize), 0),
            KeyCode::Char(']') => self.move_cur(0, page_c.max(1) as isize),
            KeyCode::Char('[') => self.move_cur(0, -(page_c.max(1) as isize)),
            KeyCode::Home => self.move_cur(-(n as isize), -(n as isize)),
            KeyCode::End => self.move_cur(n as isize, n as isize),
            _ => {}
        }
    }

    fn rows_key(&mut self, k: KeyEvent) {
        match k.code {
            KeyCode::Char('j') | KeyCode::Down => self.move_cur(1, 0),
            KeyCode::Char('k') | KeyCode::Up => self.move_cur(-1, 0),
            KeyCode::Char('l') | KeyCode::Right => self.pos_scroll += 8,
            KeyCode::Char('h') | KeyCode::Left => {
                self.pos_scroll = self.pos_scroll.saturating_sub(8)
            }
            _ => {}
        }
        let d = self
            .trace()
            .map(|t| t.positional.matrix().ncols())
            .unwrap_or(0);
        self.pos_scroll = self.pos_scroll.min(d.saturating_sub(1));
    }

    fn overview_key(&mut self, k: KeyEvent) -> Vec<Effect> {
        let nl = self.n_layers().max(1);
        let nh = self.n_heads().max(1);
        match k.code {
            KeyCode::Right | KeyCode::Char('l') => self.ov.1 = (self.ov.1 + 1) % nh,
            KeyCode::Left | KeyCode::Char('h') => self.ov.1 = (self.ov.1 + nh - 1) % nh,
            KeyCode::Down | KeyCode::Char('j') => self.ov.0 = (self.ov.0 + 1) % nl,
            KeyCode::Up | KeyCode::Char('k') => self.ov.0 = (self.ov.0 + nl - 1) % nl,
            KeyCode::Enter => {
                self.layer = self.ov.0;
                self.head = self.ov.1;
                self.mean = false;
                self.view = View::Grid;
                self.refresh();
            }
            _ => {}
        }
        self.ensure_visible();
        vec![]
    }

    /// Move the cell cursor by (rows, cols), clamped.
    pub fn move_cur(&mut self, dr: isize, dc: isize) {
        let n = self.visible.len();
        if n == 0 {
            return;
        }
        let mv =
            |v: usize, d: isize| -> usize { (v as isize + d).clamp(0, n as isize - 1) as usize };
        let old_row = self.cur.0;
        self.cur = (mv(self.cur.0, dr), mv(self.cur.1, dc));
        if self.cur.0 != old_row
            && let (Some(d), Some(t)) = (&self.data, self.query_token())
        {
            self.norms_tok = analysis::layer_norms(&d.trace, Some(t));
        }
        self.ensure_visible();
    }

    /// The explanation request for the cursor's cell, when an explanation view or the value-weighted mode needs one.
    pub fn explain_request(&self) -> Option<crate::tui::explained::ExplainRequest> {
        let needed = matches!(
            self.view,
            View::Weight | View::Writes | View::Embedding | View::Walk
        ) || self.explain.value_weighted;
        (needed && self.data.is_some()).then_some(())?;
        Some(crate::tui::explained::ExplainRequest {
            generation: self.data_gen,
            layer: self.layer,
            head: self.head,
            query: self.query_token()?,
            key: self.key_token()?,
        })
    }

    fn want_explain(&mut self) -> Option<Effect> {
        let want = self.explain_request()?;
        let trace = &self.data.as_ref()?.trace;
        let (req, trace, w_o) = self.explain.next(want, trace)?;
        Some(Effect::Job(Job::Explain { req, trace, w_o }))
    }

    /// Keys of the explanation views: hjkl move the cell (as in the grid), J/K scroll, [ ] pan dimensions, t: W_O.
    fn explain_key(&mut self, k: KeyEvent) {
        match k.code {
            KeyCode::Char('J') | KeyCode::PageDown => self.explain.scroll.0 += 1,
            KeyCode::Char('K') | KeyCode::PageUp => {
                self.explain.scroll.0 = self.explain.scroll.0.saturating_sub(1)
            }
            KeyCode::Char(']') => self.explain.scroll.1 += 16,
            KeyCode::Char('[') => self.explain.scroll.1 = self.explain.scroll.1.saturating_sub(16),
            KeyCode::Char('t') => self.explain.through_wo = !self.explain.through_wo,
            _ => self.grid_key(k),
        }
    }

    fn want_lens(&mut self) -> Option<Effect> {
        let d = self.data.as_ref()?;
        let pos = self.query_token()?;
        if self
            .lens
            .as_ref()
            .is_some_and(|l| l.generation == self.data_gen && l.pos == pos)
        {
            return None;
        }
        self.lens = Some(Lens {
            generation: self.data_gen,
            pos,
            rows: None,
        });
        Some(Effect::Job(Job::Lens {
            generation: self.data_gen,
            pos,
            trace: d.trace.clone(),
        }))
    }

    /// The file stem of the matrix on screen: `layer02_head03`, `layer02_mean`, `…_nospecial`.
    pub fn head_stem(&self) -> String {
        let what = if self.mean {
            "mean".to_string()
        } else {
            format!("head{:02}", self.head)
        };
        let hidden = if self.hide_special { "_nospecial" } else { "" };
        format!("layer{:02}_{what}{hidden}", self.layer)
    }

    fn dump_head(&mut self) -> Option<Effect> {
        let Some(d) = &self.data else {
            self.fail("nothing to dump yet");
            return None;
        };
        let labels = self
            .visible
            .iter()
            .filter_map(|&i| d.trace.tokens.get(i).map(|t| t.label.clone()))
            .collect();
        Some(Effect::DumpHead {
            stem: self.head_stem(),
            labels,
            matrix: self.matrix.clone(),
        })
    }

    /// Report a finished dump.
    pub fn dumped(&mut self, result: Result<Vec<std::path::PathBuf>, String>) {
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

    fn mouse(&mut self, m: MouseEvent) -> Vec<Effect> {
        if self.help {
            if matches!(m.kind, MouseEventKind::Down(_)) {
                self.help = false;
            }
            return vec![];
        }
        match m.kind {
            MouseEventKind::Down(MouseButton::Left) | MouseEventKind::Drag(MouseButton::Left) => {
                if let Some(f) = layout::input_field_at(self, m.column, m.row) {
                    self.focus = Focus::Input;
                    self.field = f;
                    return vec![];
                }
                match self.view {
                    View::Grid => {
                        if let Some((r, c)) = layout::grid_cell_at(self, m.column, m.row) {
                            self.focus = Focus::Explorer;
                            let (dr, dc) = (
                                r as isize - self.cur.0 as isize,
                                c as isize - self.cur.1 as isize,
                            );
                            self.move_cur(dr, dc);
                        }
                    }
                    View::Overview => {
                        if let Some((l, h)) = layout::overview_cell_at(self, m.column, m.row) {
                            self.focus = Focus::Explorer;
                            if self.ov == (l, h) && matches!(m.kind, MouseEventKind::Down(_)) {
                                // A second click on the selected thumbnail opens it.
                                return self.overview_key(KeyEvent::new(
                                    KeyCode::Enter,
                                    KeyModifiers::NONE,
                                ));
                            }
                            self.ov = (l, h);
                        }
                    }
                    _ => {}
                }
            }
            MouseEventKind::ScrollDown => match self.view {
                View::Overview => {
                    return self.overview_key(KeyEvent::new(KeyCode::Down, KeyModifiers::NONE));
                }
                _ => self.move_cur(3, 0),
            },
            MouseEventKind::ScrollUp => match self.view {
                View::Overview => {
                    return self.overview_key(KeyEvent::new(KeyCode::Up, KeyModifiers::NONE));
                }
                _ => self.move_cur(-3, 0),
            },
            _ => {}
        }
        vec![]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lone_jamo_become_visible_forms() {
        assert_eq!(display_label("##\u{1161}"), "##ㅏ");
        assert_eq!(display_label("\u{110B}"), "ㅇ");
        assert_eq!(display_label("##\u{11AB}"), "##ㄴ");
        // A conjoining sequence (a syllable spelled in jamo) stays as it is; so do composed syllables.
        assert_eq!(display_label("\u{110B}\u{1161}"), "\u{110B}\u{1161}");
        assert_eq!(display_label("안녕"), "안녕");
        assert_eq!(display_label("[CLS]"), "[CLS]");
    }

    #[test]
    fn line_edit_moves_by_grapheme() {
        let mut e = LineEdit::new("ae\u{301}한");
        e.left();
        assert_eq!(&e.text[e.cursor..], "한");
        e.left();
        assert_eq!(&e.text[e.cursor..], "e\u{301}한");
        e.delete();
        assert_eq!(e.text, "a한");
        e.end();
        e.insert("x\ny");
        assert_eq!(e.text, "a한x y");
        e.home();
        e.right();
        e.kill_to_end();
        assert_eq!(e.text, "a");
        let mut w = LineEdit::new("one two  ");
        w.delete_word();
        assert_eq!(w.text, "one ");
    }
}
