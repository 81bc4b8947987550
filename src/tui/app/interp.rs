//! The app's side of "what a head does" (see [`crate::tui::interp`]): which heads are ablated and which run is on
//! screen, the sweep, the rollout grid mode, the induction tags, direct logit attribution and generation. Results
//! arrive as [`InterpOutcome`]s; the worker computes them.
//!
//! The ablated run replaces the clean one in `App::data`, so every view shows it; the run not on screen waits in
//! [`Interp::other`] and `f` swaps the two.

use super::{App, Effect, View};
use crate::analysis::Summary;
use crate::analysis::ablation::Sweep;
use crate::analysis::attribution::Attribution;
use crate::analysis::rollout;
use crate::analysis::scans::{self, INDUCTION_CLEAR};
use crate::model::block::KvCache;
use crate::model::generate::Sampling;
use crate::trace::TopToken;
use crate::tui::event::Job;
use crate::tui::interp::{Effect as AblationEffect, Head, InterpJob};
use crate::tui::keymap::Action;
use ndarray::Array2;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Temperatures `{` / `}` step through (0 = greedy).
pub const TEMPERATURES: [f32; 6] = [0.0, 0.3, 0.7, 1.0, 1.5, 2.0];
/// Top-k values `<` / `>` step through (0 = every token).
pub const TOP_KS: [usize; 6] = [0, 5, 10, 20, 50, 100];

/// The ablation in force and its effect.
#[derive(Debug, Default)]
pub struct Ablation {
    /// Heads switched off.
    pub heads: BTreeSet<Head>,
    /// Mean-ablation instead of zero-ablation.
    pub mean: bool,
    /// `App::data` holds the ablated run (else the clean one).
    pub showing_ablated: bool,
    /// The run not on screen (the clean one while the ablated is shown, and the other way round).
    pub other: Option<Summary>,
    /// The effect of the ablated run in `App::data` / `other`, and which heads it is for.
    pub effect: Option<(Vec<Head>, bool, AblationEffect)>,
    /// An ablated run is being computed.
    pub since: Option<Instant>,
}

/// The sweep (`S`).
#[derive(Debug)]
pub struct SweepState {
    pub generation: u64,
    pub position: usize,
    pub mean: bool,
    pub progress: (usize, usize),
    pub cancel: Arc<AtomicBool>,
    /// `None` while it runs.
    pub result: Option<Result<Sweep, String>>,
    /// The text of the heads' top tokens after ablation.
    pub labels: Vec<(u32, String)>,
    pub elapsed: Duration,
}

/// Direct logit attribution (`C`).
#[derive(Debug)]
pub struct Dla {
    pub generation: u64,
    pub position: usize,
    /// `None` while computing.
    pub result: Option<Result<Attribution, String>>,
}

/// Generation (`+` / `-`).
#[derive(Debug, Default)]
pub struct Gen {
    pub temperature: usize,
    pub top_k: usize,
    /// The clean runs before each generated token (`-` goes back to the last one at once).
    pub history: Vec<Summary>,
    /// The tokens generated so far, with their probabilities.
    pub tokens: Vec<TopToken>,
    /// The candidates the last token was chosen from.
    pub candidates: Vec<TopToken>,
    /// The keys and values of the clean trace's positions (after a `+`), for the next `+`.
    pub cache: Option<Arc<KvCache>>,
}

impl Gen {
    pub fn sampling(&self) -> Sampling {
        Sampling {
            temperature: TEMPERATURES[self.temperature % TEMPERATURES.len()],
            top_k: TOP_KS[self.top_k % TOP_KS.len()],
            seed: self.tokens.len() as u64,
        }
    }
    /// `greedy` or `T 0.7 · top-k 20`.
    pub fn describe(&self) -> String {
        let s = self.sampling();
        if s.temperature <= 0.0 {
            "greedy".into()
        } else if s.top_k == 0 {
            format!("sampled: T {} · top-k all", s.temperature)
        } else {
            format!("sampled: T {} · top-k {}", s.temperature, s.top_k)
        }
    }
}

/// Everything of this module's in the app.
#[derive(Debug, Default)]
pub struct Interp {
    pub ablation: Ablation,
    pub sweep: Option<SweepState>,
    /// The grid shows the rollout R_l of the selected layer.
    pub rollout: bool,
    /// R_0..R_{L−1} of the trace on screen (keyed by the trace's address).
    rollout_cache: Option<(usize, Vec<Array2<f32>>)>,
    /// `[layer][head]` induction score on the text on screen (`None`: no token repeats).
    induction_cache: Option<(usize, Vec<Vec<Option<f32>>>)>,
    pub dla: Option<Dla>,
    pub generation: Gen,
}

/// Induction scores are computed for texts up to this many tokens.
const INDUCTION_UP_TO: usize = 512;

impl Interp {
    /// Work in flight that the run loop (and scripted tests) should wait for.
    pub fn busy(&self) -> bool {
        self.ablation.since.is_some()
            || self.sweep.as_ref().is_some_and(|s| s.result.is_none())
            || self.dla.as_ref().is_some_and(|d| d.result.is_none())
    }

    /// The induction score of a head on the text on screen, when computed.
    pub fn induction(&self, layer: usize, head: usize) -> Option<f32> {
        self.induction_cache
            .as_ref()
            .and_then(|(_, v)| v.get(layer)?.get(head).copied().flatten())
    }

    /// Whether the head's induction score on this text is clear.
    pub fn induction_clear(&self, layer: usize, head: usize) -> bool {
        self.induction(layer, head)
            .is_some_and(|v| v >= INDUCTION_CLEAR)
    }

    /// The rollout R_l of the trace on screen.
    pub fn rollout_matrix(&self, layer: usize) -> Option<Array2<f32>> {
        self.rollout_cache.as_ref()?.1.get(layer).cloned()
    }

    /// Fill the caches for the summary on screen.
    pub fn prepare(&mut self, d: &Summary) {
        let key = Arc::as_ptr(&d.trace) as usize;
        if self.rollout && self.rollout_cache.as_ref().is_none_or(|c| c.0 != key) {
            let r = rollout::rollout((0..d.n_layers()).filter_map(|l| d.att(l).map(|a| a.view())));
            self.rollout_cache = Some((key, r));
        }
        if self.induction_cache.as_ref().is_none_or(|c| c.0 != key) {
            let ids: Vec<u32> = d.trace.tokens.iter().map(|t| t.id).collect();
            let scores = if ids.len() <= INDUCTION_UP_TO {
                (0..d.n_layers())
                    .map(|l| match d.att(l) {
                        Some(a) => a
                            .outer_iter()
                            .map(|h| scans::text_induction_score(&h, &ids))
                            .collect(),
                        None => vec![],
                    })
                    .collect()
            } else {
                vec![]
            };
            self.induction_cache = Some((key, scores));
        }
    }

    /// Stop a running sweep; whether one was running.
    pub fn cancel_sweep(&mut self) -> bool {
        match &self.sweep {
            Some(s) if s.result.is_none() => {
                s.cancel.store(true, Ordering::Relaxed);
                true
            }
            _ => false,
        }
    }
}

impl App {
    /// The clean run (on screen or waiting behind the ablated one).
    pub fn clean(&self) -> Option<&Summary> {
        if self.interp.ablation.showing_ablated {
            self.interp.ablation.other.as_ref()
        } else {
            self.data.as_ref()
        }
    }

    /// The ablation's effect, when it is for the heads now ablated.
    pub fn ablation_effect(&self) -> Option<&AblationEffect> {
        let a = &self.interp.ablation;
        let heads: Vec<Head> = a.heads.iter().copied().collect();
        a.effect
            .as_ref()
            .filter(|(h, m, _)| *h == heads && *m == a.mean)
            .map(|(_, _, e)| e)
    }

    /// The position the effect, the sweep and the attribution are about: the cursor's query, else the last token.
    pub fn watched_position(&self) -> usize {
        self.query_token()
            .or_else(|| self.trace().map(|t| t.n_tokens().saturating_sub(1)))
            .unwrap_or(0)
    }

    /// A new clean run is on screen: drop what belonged to the old one and re-ablate.
    pub(super) fn interp_new_clean(&mut self) -> Vec<Effect> {
        self.interp.cancel_sweep();
        self.interp.sweep = None;
        self.interp.dla = None;
        let a = &mut self.interp.ablation;
        a.other = None;
        a.showing_ablated = false;
        a.effect = None;
        a.since = None;
        let mut fx: Vec<Effect> = self.want_ablation().into_iter().collect();
        if self.view == View::Attribution {
            fx.extend(self.want_dla());
        }
        fx
    }

    /// A new text run (not a generated token): forget the generated tokens.
    pub(super) fn interp_text_run(&mut self) {
        self.interp.generation.history.clear();
        self.interp.generation.tokens.clear();
        self.interp.generation.candidates.clear();
        self.interp.generation.cache = None;
    }

    fn want_ablation(&mut self) -> Option<Effect> {
        let heads: Vec<Head> = self.interp.ablation.heads.iter().copied().collect();
        if heads.is_empty() {
            self.interp.ablation.since = None;
            return None;
        }
        let trace = self.clean()?.trace.clone();
        self.interp.ablation.since = Some(self.now);
        Some(Effect::Job(Job::Interp(InterpJob::Ablate {
            generation: self.runs.shown,
            trace,
            heads,
            mean: self.interp.ablation.mean,
            watch: self.watched_position(),
        })))
    }

    fn want_dla(&mut self) -> Option<Effect> {
        let trace = self.clean()?.trace.clone();
        let position = self.watched_position();
        if self
            .interp
            .dla
            .as_ref()
            .is_some_and(|d| d.generation == self.runs.shown && d.position == position)
        {
            return None;
        }
        self.interp.dla = Some(Dla {
            generation: self.runs.shown,
            position,
            result: None,
        });
        Some(Effect::Job(Job::Interp(InterpJob::Attribute {
            generation: self.runs.shown,
            trace,
            position,
        })))
    }

    /// Show the clean run (`false`) or the ablated one (`true`), when both exist.
    pub(super) fn show_ablated(&mut self, ablated: bool) {
        let a = &mut self.interp.ablation;
        if a.showing_ablated != ablated && a.other.is_some() {
            std::mem::swap(&mut self.data, &mut a.other);
            a.showing_ablated = ablated;
            self.lens = None;
            self.explain.reset();
            self.refresh();
        }
    }

    /// Drop the ablated run: the clean one goes back on screen.
    fn drop_ablated(&mut self) {
        self.show_ablated(false);
        let a = &mut self.interp.ablation;
        a.other = None;
        a.effect = None;
        a.since = None;
    }

    /// The keys of this module; `None` when `a` is not one of them.
    pub(super) fn interp_key(&mut self, a: Action) -> Option<Vec<Effect>> {
        let mut fx = vec![];
        match a {
            Action::Ablate => {
                let h = (self.sel.layer, self.sel.head);
                if self.sel.mean {
                    self.say("select one head to ablate (a switches the layer mean off)");
                    return Some(fx);
                }
                let heads = &mut self.interp.ablation.heads;
                if !heads.remove(&h) {
                    heads.insert(h);
                }
                let n = heads.len();
                self.say(format!(
                    "L{}.H{} {} · {n} head{} ablated",
                    h.0,
                    h.1,
                    if self.interp.ablation.heads.contains(&h) {
                        "ablated"
                    } else {
                        "restored"
                    },
                    if n == 1 { "" } else { "s" }
                ));
                if n == 0 {
                    self.drop_ablated();
                }
                fx.extend(self.want_ablation());
            }
            Action::AblateMode => {
                self.interp.ablation.mean = !self.interp.ablation.mean;
                self.say(if self.interp.ablation.mean {
                    "mean-ablation: an ablated head's z is replaced by its mean over positions"
                } else {
                    "zero-ablation: an ablated head's z is set to 0"
                });
                fx.extend(self.want_ablation());
            }
            Action::ClearAblation => {
                self.interp.ablation.heads.clear();
                self.drop_ablated();
                self.say("every head restored");
            }
            Action::FlipAblated => {
                if self.interp.ablation.other.is_none() {
                    self.say("nothing ablated: A ablates the selected head");
                } else {
                    let to = !self.interp.ablation.showing_ablated;
                    self.show_ablated(to);
                    self.say(if to {
                        "showing the ablated run"
                    } else {
                        "showing the clean run"
                    });
                }
            }
            Action::Sweep => fx.extend(self.sweep_key()),
            Action::Rollout => {
                self.interp.rollout = !self.interp.rollout;
                self.refresh();
                self.say(if self.interp.rollout {
                    "rollout: R_l = Ã_l·R_{l−1}, Ã = ½·mean over heads + ½·I (Abnar & Zuidema 2020)"
                } else {
                    "rollout off: one head"
                });
            }
            Action::Attribution => {
                if !self.decoder() {
                    self.say("direct logit attribution needs a decoder with an LM head");
                } else {
                    self.view = if self.view == View::Attribution {
                        View::Grid
                    } else {
                        View::Attribution
                    };
                    self.ensure_visible();
                    if self.view == View::Attribution {
                        fx.extend(self.want_dla());
                    }
                }
            }
            Action::GenNext => fx.extend(self.generate_next()),
            Action::GenBack => self.generate_back(),
            Action::TempDown | Action::TempUp | Action::TopKDown | Action::TopKUp => {
                let g = &mut self.interp.generation;
                let step = |v: &mut usize, n: usize, up: bool| {
                    *v = if up {
                        (*v + 1).min(n - 1)
                    } else {
                        v.saturating_sub(1)
                    }
                };
                match a {
                    Action::TempDown => step(&mut g.temperature, TEMPERATURES.len(), false),
                    Action::TempUp => step(&mut g.temperature, TEMPERATURES.len(), true),
                    Action::TopKDown => step(&mut g.top_k, TOP_KS.len(), false),
                    _ => step(&mut g.top_k, TOP_KS.len(), true),
                }
                let d = self.interp.generation.describe();
                self.say(format!("generation: {d} · + appends a token"));
            }
            _ => return None,
        }
        Some(fx)
    }

    fn decoder(&self) -> bool {
        self.info.causal && self.trace().is_some_and(|t| t.next_tokens.is_some())
    }

    fn sweep_key(&mut self) -> Option<Effect> {
        if self.interp.cancel_sweep() {
            self.say("sweep cancelled");
            return None;
        }
        if self.view == View::Sweep {
            self.view = View::Grid;
            self.ensure_visible();
            return None;
        }
        if !self.decoder() {
            self.say(
                "the sweep ranks heads by the next-token logit: it needs a decoder with an LM head",
            );
            return None;
        }
        self.view = View::Sweep;
        self.ensure_visible();
        let position = self.watched_position();
        let mean = self.interp.ablation.mean;
        if self.interp.sweep.as_ref().is_some_and(|s| {
            s.generation == self.runs.shown
                && s.position == position
                && s.mean == mean
                && matches!(s.result, Some(Ok(_)))
        }) {
            return None;
        }
        let trace = self.clean()?.trace.clone();
        let cancel = Arc::new(AtomicBool::new(false));
        let total = trace.n_layers() * self.n_heads();
        self.interp.sweep = Some(SweepState {
            generation: self.runs.shown,
            position,
            mean,
            progress: (0, total),
            cancel: cancel.clone(),
            result: None,
            labels: vec![],
            elapsed: Duration::ZERO,
        });
        Some(Effect::Job(Job::Interp(InterpJob::Sweep {
            generation: self.runs.shown,
            trace,
            position,
            mean,
            cancel,
        })))
    }

    fn generate_next(&mut self) -> Option<Effect> {
        if !self.decoder() {
            self.say("generation needs a decoder with an LM head (GPT-2, Llama)");
            return None;
        }
        if self.busy() {
            self.say("wait for the run in flight");
            return None;
        }
        let trace = self.clean()?.trace.clone();
        self.runs.generation += 1;
        self.runs.busy_since = Some(self.now);
        self.runs.progress = None;
        Some(Effect::Job(Job::Interp(InterpJob::Generate {
            generation: self.runs.generation,
            trace,
            sampling: self.interp.generation.sampling(),
            cache: self.interp.generation.cache.clone(),
        })))
    }

    fn generate_back(&mut self) {
        let Some(prev) = self.interp.generation.history.pop() else {
            self.say("no generated token to remove");
            return;
        };
        let gone = self.interp.generation.tokens.pop();
        self.interp.generation.candidates.clear();
        let n = prev.trace.n_tokens();
        let g = &mut self.interp.generation;
        g.cache = g.cache.take().map(|c| Arc::new(c.truncated(n)));
        self.runs.generation += 1;
        self.runs.busy_since = None;
        let g = self.runs.generation;
        self.accept_run(prev, g, Duration::ZERO);
        if let Some(t) = gone {
            self.say(format!(
                "removed {} · {} generated",
                t.text,
                self.interp.generation.tokens.len()
            ));
        }
    }

    /// Take the clean run out of the app (the screen is about to get a new one).
    pub(super) fn take_clean(&mut self) -> Option<Summary> {
        if self.interp.ablation.showing_ablated {
            self.interp.ablation.other.take()
        } else {
            self.data.take()
        }
    }

    /// The cursor moved: the attribution follows it.
    pub(super) fn interp_cursor_moved(&mut self) -> Option<Effect> {
        if self.view == View::Attribution {
            self.want_dla()
        } else {
            None
        }
    }
}
