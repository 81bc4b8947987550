//! Finished runs on screen, and long inputs: a trace that kept no attention (it would not fit the memory budget) is
//! explored one head at a time. The head on screen is asked of the worker ([`Job::Head`]) when the selection reaches
//! it; recent heads are kept within [`HEAD_CACHE_BYTES`]; a streaming pass, one head per job so that a head the user
//! pages to waits for at most one of them, fills in the overview's thumbnails and the head statistics.

use super::{App, Effect, Summary, View};
use crate::tui::event::{HeadOutcome, HeadPart, HeadWant, Job};
use crate::tui::keymap::Action;
use ndarray::Array2;
use std::sync::Arc;

/// Bytes of recently seen heads kept besides the one on screen (one head of 8,192 tokens is 256 MiB, so there only
/// the head on screen is kept and a head switch recomputes).
pub const HEAD_CACHE_BYTES: usize = 256 << 20;
/// Cells per side of an overview thumbnail of a long input.
pub const THUMB_SIDE: usize = 48;

/// A head's matrix by (layer, head).
type HeadMatrix = ((usize, usize), Arc<Array2<f32>>);

/// What the explorer holds of a long input's heads.
#[derive(Debug, Default)]
pub struct Long {
    /// The head on screen (the latest computed), then recently seen ones, newest first.
    heads: Vec<HeadMatrix>,
    /// The head whose matrix was asked for.
    asked: Option<(usize, usize)>,
    /// `thumbs[layer][head]`: the block means of the head's matrix, once the streaming pass reached it.
    pub thumbs: Vec<Vec<Option<Array2<f32>>>>,
    /// The next head of the streaming pass, and whether it was asked for.
    next: Option<(usize, usize)>,
    next_asked: bool,
    /// Heads done by the streaming pass.
    pub done: usize,
}

impl Long {
    pub fn new(layers: usize, heads: usize) -> Self {
        Long {
            thumbs: vec![vec![None; heads]; layers],
            next: (layers > 0 && heads > 0).then_some((0, 0)),
            ..Default::default()
        }
    }

    /// The matrix of `head` at `layer`, when computed and kept.
    pub fn matrix(&self, layer: usize, head: usize) -> Option<Arc<Array2<f32>>> {
        self.heads
            .iter()
            .find(|(at, _)| *at == (layer, head))
            .map(|(_, m)| m.clone())
    }

    /// Heads in the streaming pass, all of them.
    pub fn total(&self) -> usize {
        self.thumbs.iter().map(Vec::len).sum()
    }

    /// Keep `m` as the newest head, and older ones within [`HEAD_CACHE_BYTES`].
    fn keep(&mut self, at: (usize, usize), m: Arc<Array2<f32>>) {
        self.heads.retain(|(a, _)| *a != at);
        self.heads.insert(0, (at, m));
        let mut bytes = 0;
        let mut n = 1;
        for (_, m) in &self.heads[1..] {
            bytes += m.len() * 4;
            if bytes > HEAD_CACHE_BYTES {
                break;
            }
            n += 1;
        }
        self.heads.truncate(n);
    }

    /// The next head of the streaming pass after `at`.
    fn advance(&mut self, at: (usize, usize)) {
        let heads = self.thumbs.first().map_or(0, Vec::len);
        let (l, h) = if at.1 + 1 < heads {
            (at.0, at.1 + 1)
        } else {
            (at.0 + 1, 0)
        };
        self.next = (l < self.thumbs.len()).then_some((l, h));
        self.next_asked = false;
    }
}

impl App {
    /// Put a finished clean run on screen.
    pub(super) fn accept_run(
        &mut self,
        p: Summary,
        generation: u64,
        total: std::time::Duration,
    ) -> Vec<Effect> {
        let mut fx = vec![];
        self.runs.busy_since = None;
        self.runs.progress = None;
        let first = self.data.is_none();
        self.data = Some(p);
        if first {
            self.grid.cur = (1, 1);
        }
        self.runs.shown = generation;
        self.runs.total = total;
        self.lens = None;
        self.explain.reset();
        self.long = Long::default();
        if let Some(d) = self.data.as_ref().filter(|d| d.lazy) {
            self.long = Long::new(d.n_layers(), d.n_heads);
            self.say(format!(
                "long input: {} tokens; attention is computed one head at a time (the overview fills in as it runs)",
                d.trace.n_tokens()
            ));
        }
        if self.status.as_ref().is_some_and(|s| s.error) {
            self.status = None;
        }
        fx.extend(self.interp_new_clean());
        self.refresh();
        if self.view == View::Lens {
            fx.extend(self.want_lens());
        }
        fx
    }

    /// A long input: the jobs for the head on screen (unless kept or asked for) and the streaming pass's next head.
    pub(super) fn want_heads(&mut self) -> Vec<Effect> {
        let Some(d) = self.data.as_ref().filter(|d| d.lazy) else {
            return vec![];
        };
        let (generation, trace) = (self.runs.shown, d.trace.clone());
        let job = |(layer, head), want| {
            Effect::Job(Job::Head {
                generation,
                layer,
                head,
                want,
                trace: trace.clone(),
            })
        };
        let mut fx = vec![];
        let at = (self.sel.layer, self.sel.head);
        let grid = matches!(self.view, View::Grid) && !self.sel.mean;
        if grid && self.long.matrix(at.0, at.1).is_none() && self.long.asked != Some(at) {
            self.long.asked = Some(at);
            fx.push(job(at, HeadWant::Matrix));
        }
        if let Some(next) = self.long.next.filter(|_| !self.long.next_asked) {
            self.long.next_asked = true;
            fx.push(job(next, HeadWant::Thumb { side: THUMB_SIDE }));
        }
        fx
    }

    /// A head of a long input arrived: on screen, or into the overview and the statistics.
    pub(super) fn head_outcome(&mut self, o: HeadOutcome) {
        if o.generation != self.runs.shown || !self.data.as_ref().is_some_and(|d| d.lazy) {
            return;
        }
        let at = (o.layer, o.head);
        match o.result {
            Ok(HeadPart::Matrix(m)) => {
                if self.long.asked == Some(at) {
                    self.long.asked = None;
                }
                self.long.keep(at, m);
                self.refresh();
            }
            Ok(HeadPart::Thumb { stats, thumb }) => {
                if let Some(d) = self.data.as_mut() {
                    d.set_head_stats(o.layer, o.head, stats);
                }
                if let Some(t) = self
                    .long
                    .thumbs
                    .get_mut(o.layer)
                    .and_then(|r| r.get_mut(o.head))
                {
                    *t = Some(thumb);
                }
                self.long.done += 1;
                self.long.advance(at);
            }
            Err(e) => {
                // Nothing more is asked of this run: the error stays in the status line.
                self.long.next = None;
                self.fail(format!("layer {} head {}: {e}", o.layer, o.head));
            }
        }
    }

    /// Why `a` is not offered on a long input: what needs every head's matrix at once, or a re-run keeping them.
    pub(super) fn long_refuses(&self, a: Action) -> Option<String> {
        let d = self.data.as_ref().filter(|d| d.lazy)?;
        use Action::*;
        let what = match a {
            Mean => "the mean over heads",
            ValueWeighted => "the value-weighted grid",
            Weight | Writes | Embedding | Walk => "the computation views",
            Ablate | AblateMode | FlipAblated | Sweep | Attribution | Rollout => {
                "interventions and rollout"
            }
            GenNext | GenBack => "appending tokens",
            DumpAll => {
                return Some(format!(
                    "D: a long input's attention is not kept ({} tokens); `attn dump --attn-layers L --attn-heads H` \
                     writes chosen heads one at a time (d writes the head on screen)",
                    d.trace.n_tokens()
                ));
            }
            DumpView if self.view == View::Grid && self.grid.matrix.nrows() == 0 => {
                return Some("d: the head on screen is still being computed".into());
            }
            _ => return None,
        };
        Some(format!(
            "{what}: not on a long input ({} tokens, attention computed one head at a time); shorten the text, or \
             raise --mem-budget to keep every head",
            d.trace.n_tokens()
        ))
    }
}
