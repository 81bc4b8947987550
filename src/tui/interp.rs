//! What a head does, in the explorer: the jobs the worker runs for ablation, the sweep, direct logit attribution
//! and generation, and what comes back. The app's side (keys, state) is `app/interp.rs`; drawing is
//! `ui/{ablation,sweep,attribution}.rs`.
//!
//! - **Ablation** resumes the clean trace at the first ablated layer with the heads' `attn.z` zeroed (or replaced by
//!   its mean over positions) and keeps every attention matrix, so every view can show the ablated run. Its effect:
//!   decoders — the next-token distribution at each position before → after and Δ logit of the clean prediction;
//!   encoders — the cosine similarity of each token's final hidden state to the clean one.
//! - **Sweep**: [`crate::analysis::ablation::sweep_until`], with progress and a cancel flag.
//! - **Attribution**: [`crate::analysis::attribution::attribute_ids`] at a position for its top prediction.
//! - **Generation** chooses the next token from the clean trace's last logits (greedy, or sampled) and appends it by
//!   one KV-cache step ([`generate::append`]): every attention matrix grows by the new row, as a fresh run of the
//!   longer sequence records it (to rounding). The app keeps the cache of the trace on screen for the next `+`.

use crate::analysis::Summary;
use crate::analysis::ablation::{self, Sweep};
use crate::analysis::attribution::{self, Attribution};
use crate::model::block::KvCache;
use crate::model::generate::{self, Sampling};
use crate::model::head::top_tokens_of_logits;
use crate::model::{self, Model, budget};
use crate::trace::{ForwardOptions, TopToken, Trace};
use ndarray::s;
use rand::SeedableRng;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// A head: (layer, head).
pub type Head = (usize, usize);

/// How many top tokens the ablation effect lists per position.
pub const EFFECT_K: usize = 5;
/// Inputs up to this many tokens get the ablation effect at every position; longer ones at the watched position
/// and the last only (each position costs a row of logits over the vocabulary, twice).
pub const EFFECT_ALL_UP_TO: usize = 256;

/// What the worker is asked to do.
#[derive(Debug)]
pub enum InterpJob {
    /// Re-run `trace` with `heads` ablated; the effect is computed at every position (or `watch` and the last).
    Ablate {
        generation: u64,
        trace: Arc<Trace>,
        heads: Vec<Head>,
        mean: bool,
        watch: usize,
    },
    /// Ablate every head in turn, ranked by the change of the clean prediction's logit at `position`.
    Sweep {
        generation: u64,
        trace: Arc<Trace>,
        position: usize,
        mean: bool,
        cancel: Arc<AtomicBool>,
    },
    /// Direct logit attribution of the top prediction at `position`.
    Attribute {
        generation: u64,
        trace: Arc<Trace>,
        position: usize,
    },
    /// Append one token to `trace`'s sequence (its generation number is the new run's). `cache`: the keys and
    /// values of `trace`'s positions, when the app holds them.
    Generate {
        generation: u64,
        trace: Arc<Trace>,
        sampling: Sampling,
        cache: Option<Arc<KvCache>>,
    },
}

/// The next-token change at one position.
#[derive(Debug, Clone, PartialEq)]
pub struct NextEffect {
    pub pos: usize,
    /// The clean top token at the position and its logit before / after ablation.
    pub token: TopToken,
    pub clean_logit: f32,
    pub logit: f32,
    /// Its probability after ablation.
    pub prob: f32,
    pub before: Vec<TopToken>,
    pub after: Vec<TopToken>,
}

impl NextEffect {
    pub fn delta(&self) -> f32 {
        self.logit - self.clean_logit
    }
}

/// The effect of an ablation on the model's output.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Decoders: the next-token change, per position computed.
    Next(Vec<NextEffect>),
    /// Encoders: cosine similarity of each token's final hidden state (ablated vs clean).
    Cosine(Vec<f32>),
}

/// An ablated run.
#[derive(Debug)]
pub struct Ablated {
    pub summary: Summary,
    pub effect: Effect,
}

/// One generated token.
#[derive(Debug)]
pub struct Generated {
    /// The run of the sequence with the token appended.
    pub summary: Summary,
    /// The token chosen, with its probability (softmax of the logits, temperature 1).
    pub token: TopToken,
    /// The most likely candidates there, with their probabilities.
    pub candidates: Vec<TopToken>,
    /// The keys and values of the longer sequence, for the next `+` (`None` after a full re-run).
    pub cache: Option<Arc<KvCache>>,
}

/// What the worker sends back.
#[derive(Debug)]
pub enum InterpOutcome {
    Ablated {
        generation: u64,
        heads: Vec<Head>,
        mean: bool,
        result: Result<Ablated, String>,
    },
    SweepProgress {
        generation: u64,
        done: usize,
        total: usize,
    },
    /// `Ok(None)`: cancelled.
    Swept {
        generation: u64,
        mean: bool,
        result: Result<Option<Sweep>, String>,
        /// The text of every head's top token after ablation.
        labels: Vec<(u32, String)>,
        elapsed: Duration,
    },
    Attributed {
        generation: u64,
        position: usize,
        result: Result<Attribution, String>,
    },
    Generated {
        generation: u64,
        result: Result<Generated, String>,
        total: Duration,
    },
}

/// Run one job. `progress` receives the sweep's progress outcomes.
pub fn compute(
    model: &dyn Model,
    job: InterpJob,
    budget: u64,
    progress: &(dyn Fn(InterpOutcome) + Sync),
) -> InterpOutcome {
    let err = |e: crate::Error| crate::tokenize::escape_text(&e.to_string());
    match job {
        InterpJob::Ablate {
            generation,
            trace,
            heads,
            mean,
            watch,
        } => InterpOutcome::Ablated {
            generation,
            result: ablate(model, &trace, &heads, mean, watch).map_err(err),
            heads,
            mean,
        },
        InterpJob::Sweep {
            generation,
            trace,
            position,
            mean,
            cancel,
        } => {
            let start = Instant::now();
            let tell = |done: usize, total: usize| {
                progress(InterpOutcome::SweepProgress {
                    generation,
                    done,
                    total,
                });
                !cancel.load(Ordering::Relaxed)
            };
            let result = ablation::sweep_until(model, &trace, Some(position), mean, &tell);
            let mut ids: Vec<u32> = match &result {
                Ok(Some(s)) => s.heads.iter().map(|h| h.top).collect(),
                _ => vec![],
            };
            ids.sort_unstable();
            ids.dedup();
            let labels = ids
                .into_iter()
                .map(|id| (id, model.tokenizer().token_label(id)))
                .collect();
            InterpOutcome::Swept {
                generation,
                mean,
                labels,
                result: result.map_err(err),
                elapsed: start.elapsed(),
            }
        }
        InterpJob::Attribute {
            generation,
            trace,
            position,
        } => {
            let ids: Vec<u32> = trace.tokens.iter().map(|t| t.id).collect();
            InterpOutcome::Attributed {
                generation,
                position,
                result: attribution::attribute_ids(model, &ids, Some(position), None).map_err(err),
            }
        }
        InterpJob::Generate {
            generation,
            trace,
            sampling,
            cache,
        } => {
            let start = Instant::now();
            InterpOutcome::Generated {
                generation,
                result: generate_one(model, &trace, &sampling, cache.as_deref(), budget),
                total: start.elapsed(),
            }
        }
    }
}

fn ablate(
    model: &dyn Model,
    clean: &Trace,
    heads: &[Head],
    mean: bool,
    watch: usize,
) -> crate::Result<Ablated> {
    let info = model.info();
    let first = heads
        .iter()
        .map(|h| h.0)
        .min()
        .ok_or_else(|| crate::Error::Input("no head to ablate".into()))?;
    let mut opts = ForwardOptions {
        keep_attention: true,
        top_k: if info.causal { EFFECT_K } else { 0 },
        ..Default::default()
    };
    opts.hooks
        .ablate(heads, info.n_layers, info.n_heads, mean)?;
    let mut t = model.resume(clean, first, &opts)?;
    t.elapsed = clean.elapsed;
    let effect = match (clean.hidden.last(), t.hidden.last()) {
        (Some(c), Some(a)) if model.engine().head.is_some() => {
            let n = c.nrows();
            let positions: Vec<usize> = if n <= EFFECT_ALL_UP_TO {
                (0..n).collect()
            } else {
                let mut v = vec![watch.min(n - 1), n - 1];
                v.dedup();
                v
            };
            Effect::Next(next_effects(model, c, a, &positions)?)
        }
        (Some(c), Some(a)) => Effect::Cosine(
            c.rows()
                .into_iter()
                .zip(a.rows())
                .map(|(x, y)| cosine(&x, &y))
                .collect(),
        ),
        _ => Effect::Cosine(vec![]),
    };
    let summary = Summary::new(t).map_err(crate::Error::Input)?;
    Ok(Ablated { summary, effect })
}

fn cosine(x: &ndarray::ArrayView1<f32>, y: &ndarray::ArrayView1<f32>) -> f32 {
    let dot: f64 = x.iter().zip(y).map(|(a, b)| *a as f64 * *b as f64).sum();
    let nx: f64 = x.iter().map(|a| (*a as f64).powi(2)).sum::<f64>().sqrt();
    let ny: f64 = y.iter().map(|a| (*a as f64).powi(2)).sum::<f64>().sqrt();
    if nx == 0.0 || ny == 0.0 {
        return if nx == ny { 1.0 } else { 0.0 };
    }
    (dot / (nx * ny)) as f32
}

/// softmax(row)[id].
fn prob_of(row: &ndarray::ArrayView1<f32>, id: usize) -> f32 {
    let m = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let z: f64 = row.iter().map(|v| ((v - m) as f64).exp()).sum();
    row.get(id)
        .map_or(0.0, |v| (((v - m) as f64).exp() / z) as f32)
}

/// Logits go through the unembedding this many positions at a time.
const CHUNK: usize = 32;

fn next_effects(
    model: &dyn Model,
    clean: &ndarray::Array2<f32>,
    ablated: &ndarray::Array2<f32>,
    positions: &[usize],
) -> crate::Result<Vec<NextEffect>> {
    let e = model.engine();
    let tok = model.tokenizer();
    let no_head = || crate::Error::Input(format!("{} has no LM head", e.info.name));
    let mut out = Vec::with_capacity(positions.len());
    for part in positions.chunks(CHUNK) {
        let pick = |h: &ndarray::Array2<f32>| h.select(ndarray::Axis(0), part);
        let lc = e.logits(&pick(clean)).ok_or_else(no_head)?;
        let la = e.logits(&pick(ablated)).ok_or_else(no_head)?;
        let before = top_tokens_of_logits(&lc, EFFECT_K, tok);
        let after = top_tokens_of_logits(&la, EFFECT_K, tok);
        for (i, (&pos, (before, after))) in
            part.iter().zip(before.into_iter().zip(after)).enumerate()
        {
            let Some(top) = before.first().cloned() else {
                continue;
            };
            let id = top.id as usize;
            out.push(NextEffect {
                pos,
                clean_logit: lc[[i, id]],
                logit: la[[i, id]],
                prob: prob_of(&la.row(i), id),
                token: top,
                before,
                after,
            });
        }
    }
    Ok(out)
}

/// Choose the next token after `trace`'s sequence and run the longer sequence: one KV-cache step appended to the
/// trace when every attention matrix is kept (the cache recomputed from the trace's streams if `cache` is not its),
/// else a full run.
fn generate_one(
    model: &dyn Model,
    trace: &Trace,
    sampling: &Sampling,
    cache: Option<&KvCache>,
    budget: u64,
) -> Result<Generated, String> {
    let e = |e: crate::Error| crate::tokenize::escape_text(&e.to_string());
    let info = model.info();
    let last = trace
        .hidden
        .last()
        .filter(|h| h.nrows() > 0)
        .ok_or("an empty trace")?;
    let n = last.nrows();
    if n + 1 > info.max_len {
        return Err(format!(
            "{} takes at most {} positions: no room for another token",
            info.name, info.max_len
        ));
    }
    let logits = model
        .engine()
        .logits(&last.slice(s![n - 1..n, ..]).to_owned())
        .ok_or_else(|| format!("{} has no LM head: generation needs a decoder", info.name))?;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(sampling.seed);
    let next = generate::choose(&logits.row(0), sampling, &mut rng);
    let candidates = top_tokens_of_logits(&logits, EFFECT_K, model.tokenizer())
        .pop()
        .unwrap_or_default();
    let token = TopToken {
        id: next as u32,
        text: model.tokenizer().token_label(next as u32),
        prob: prob_of(&logits.row(0), next),
    };
    let mut ids: Vec<u32> = trace.tokens.iter().map(|t| t.id).collect();
    ids.push(next as u32);
    let top_k = if info.causal { 5 } else { 0 };
    let opts = budget::plan(
        info,
        ids.len(),
        budget::AttentionUse::Keep,
        top_k,
        budget,
        "the explorer",
    )
    .map_err(e)?;
    let appended = opts
        .keep_attention
        .then(|| generate::append(model, trace, next as u32, cache, opts.top_k).ok())
        .flatten();
    let (mut t, cache) = match appended {
        Some((t, c)) => (t, Some(Arc::new(c))),
        None => (model::run_ids(model, &ids, &opts).map_err(e)?, None),
    };
    t.text_b = None;
    Ok(Generated {
        summary: Summary::new(t)?,
        token,
        candidates,
        cache,
    })
}
