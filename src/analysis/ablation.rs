//! Head ablation sweep: every head in turn is zero- (or mean-) ablated — its z replaced before the output
//! projection — and the run resumes from the clean residual stream at that head's layer; heads are ranked by how
//! much the clean prediction's logit at a position changes.

use crate::hooks::Intervention;
use crate::model::Model;
use crate::trace::{ForwardOptions, Trace};
use crate::{Error, Result};
use ndarray::{Array2, s};
use serde::Serialize;

/// What ablating one head did at the watched position.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HeadEffect {
    pub layer: usize,
    pub head: usize,
    /// The clean prediction's logit after ablation.
    pub logit: f32,
    /// `logit − clean logit`.
    pub delta: f32,
    /// The top token after ablation.
    pub top: u32,
}

#[derive(Debug, Clone, Serialize)]
pub struct Sweep {
    pub position: usize,
    /// The clean top token and its logit.
    pub token: u32,
    pub token_text: String,
    pub logit: f32,
    pub mean: bool,
    /// Every head, layer-major (sort by |delta| to rank).
    pub heads: Vec<HeadEffect>,
}

impl Sweep {
    /// Heads by |Δ logit|, largest first.
    pub fn ranked(&self) -> Vec<&HeadEffect> {
        let mut v: Vec<&HeadEffect> = self.heads.iter().collect();
        v.sort_by(|a, b| b.delta.abs().total_cmp(&a.delta.abs()));
        v
    }
}

/// Logits `[1, vocab]` of one row of the last stream.
fn row_logits(model: &dyn Model, trace: &Trace, pos: usize) -> Result<Array2<f32>> {
    let last = trace
        .hidden
        .last()
        .ok_or_else(|| Error::Input("an empty trace".into()))?;
    model
        .engine()
        .logits(&last.slice(s![pos..pos + 1, ..]).to_owned())
        .ok_or_else(|| {
            Error::Input(format!(
                "{} has no LM head: the sweep needs a decoder",
                model.info().name
            ))
        })
}

/// The watched position, the clean top token there and its logit.
fn clean_target(
    model: &dyn Model,
    clean: &Trace,
    position: Option<usize>,
) -> Result<(usize, usize, f32)> {
    let n = clean.n_tokens();
    let pos = position.unwrap_or(n.saturating_sub(1));
    if pos >= n {
        return Err(Error::Input(format!(
            "--position {pos} is out of range: the text has tokens 0..={}",
            n.saturating_sub(1)
        )));
    }
    let base = row_logits(model, clean, pos)?;
    let token = crate::model::generate::argmax(&base.row(0));
    Ok((pos, token, base[[0, token]]))
}

/// Ablate one head, resuming from the clean stream at its layer; its effect on `token`'s logit at `pos`.
fn ablate_one(
    model: &dyn Model,
    clean: &Trace,
    (layer, head): (usize, usize),
    mean: bool,
    (pos, token, logit): (usize, usize, f32),
) -> Result<HeadEffect> {
    let mut opts = ForwardOptions {
        keep_attention: false,
        top_k: 0,
        ..Default::default()
    };
    opts.hooks.edits.push(if mean {
        Intervention::mean_heads(layer, vec![head])
    } else {
        Intervention::zero_heads(layer, vec![head])
    });
    let t = model.resume(clean, layer, &opts)?;
    let l = row_logits(model, &t, pos)?;
    Ok(HeadEffect {
        layer,
        head,
        logit: l[[0, token]],
        delta: l[[0, token]] - logit,
        top: crate::model::generate::argmax(&l.row(0)) as u32,
    })
}

fn finish(
    model: &dyn Model,
    target: (usize, usize, f32),
    mean: bool,
    heads: Vec<HeadEffect>,
) -> Sweep {
    let (position, token, logit) = target;
    Sweep {
        position,
        token: token as u32,
        token_text: model.tokenizer().token_label(token as u32),
        logit,
        mean,
        heads,
    }
}

/// Ablate every head of the model in turn on the clean trace `clean` (its hidden states are reused); `progress`
/// is told `(done, total)` after each head.
pub fn sweep(
    model: &dyn Model,
    clean: &Trace,
    position: Option<usize>,
    mean: bool,
    progress: &dyn Fn(usize, usize),
) -> Result<Sweep> {
    let all = sweep_until(model, clean, position, mean, &|d, t| {
        progress(d, t);
        true
    })?;
    all.ok_or_else(|| Error::Input("the sweep stopped".into()))
}

/// [`sweep`], cancellable: `progress(done, total)` returning `false` stops it (`Ok(None)`). One head after another:
/// spreading the heads over the cores was slower (each forward pass already splits its matrix products over them;
/// docs/performance.md).
pub fn sweep_until(
    model: &dyn Model,
    clean: &Trace,
    position: Option<usize>,
    mean: bool,
    progress: &dyn Fn(usize, usize) -> bool,
) -> Result<Option<Sweep>> {
    let target = clean_target(model, clean, position)?;
    let (nl, nh) = (clean.n_layers(), model.info().n_heads);
    let mut heads = Vec::with_capacity(nl * nh);
    for layer in 0..nl {
        for head in 0..nh {
            heads.push(ablate_one(model, clean, (layer, head), mean, target)?);
            if !progress(heads.len(), nl * nh) {
                return Ok(None);
            }
        }
    }
    Ok(Some(finish(model, target, mean, heads)))
}
