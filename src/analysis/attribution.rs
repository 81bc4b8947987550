//! Direct logit attribution (decoders with pre-LN blocks: GPT-2, Llama): the residual stream leaving the last block
//! at a position is a sum of components — the token (and position) embedding, each head's z through its slice of the
//! output projection, each output-projection bias, each MLP's output. With the final norm's scale frozen at the clean
//! run's value (σ for LayerNorm, which also centres each component; the RMS for RMSNorm), the logit of a token is a
//! sum over those components plus the norm's bias (and any LM-head bias): each component's share is
//! `(c [− mean c]) / scale ∘ γ · W_U[token]`.

use crate::hooks::HookPoint;
use crate::model::block::{NormKind, Placement};
use crate::model::{Model, run, run_ids};
use crate::trace::ForwardOptions;
use crate::{Error, Result};
use ndarray::{Array1, Array2, s};
use serde::Serialize;

/// One component's contribution to the logit.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Component {
    /// `embed`, `pos_embed`, `L3.H5`, `L3.attn_bias`, `L3.MLP`, `final_norm_bias`, `unembed_bias`.
    pub name: String,
    pub value: f32,
}

#[derive(Debug, Clone, Serialize)]
pub struct Attribution {
    pub position: usize,
    pub token: u32,
    /// The token's text (escaped for display).
    #[serde(rename = "token_text")]
    pub text: String,
    /// The model's logit of the token at the position.
    pub logit: f32,
    pub components: Vec<Component>,
}

impl Attribution {
    /// Σ components (equal to `logit` up to rounding).
    pub fn total(&self) -> f32 {
        self.components.iter().map(|c| c.value as f64).sum::<f64>() as f32
    }
}

/// Attribute the logit of `token` (default: the top prediction) at `position` (default: the last) for `text`.
pub fn attribute(
    model: &dyn Model,
    text: &str,
    position: Option<usize>,
    token: Option<u32>,
) -> Result<Attribution> {
    attribute_run(model, |o| run(model, text, None, o), position, token)
}

/// [`attribute`] for exactly these token ids (nothing added), e.g. a sequence the explorer generated.
pub fn attribute_ids(
    model: &dyn Model,
    ids: &[u32],
    position: Option<usize>,
    token: Option<u32>,
) -> Result<Attribution> {
    attribute_run(model, |o| run_ids(model, ids, o), position, token)
}

fn attribute_run(
    model: &dyn Model,
    forward: impl FnOnce(&ForwardOptions) -> Result<crate::trace::Trace>,
    position: Option<usize>,
    token: Option<u32>,
) -> Result<Attribution> {
    let t = model.engine();
    let head = t.head.as_ref().ok_or_else(|| {
        Error::Input(format!(
            "{} has no LM head: attribution needs a decoder",
            t.info.name
        ))
    })?;
    if t.stack.placement != Placement::Pre {
        return Err(Error::Input(format!(
            "{}: direct logit attribution needs pre-LN blocks (the stream must be a sum of the sub-layers' outputs)",
            t.info.name
        )));
    }
    let nl = t.info.n_layers;
    let mut opts = ForwardOptions {
        keep_attention: false,
        top_k: 0,
        ..Default::default()
    };
    opts.hooks.capture_all(HookPoint::AttnZ, nl);
    opts.hooks.capture_all(HookPoint::MlpOut, nl);
    let trace = forward(&opts)?;
    let n = trace.n_tokens();
    let pos = position.unwrap_or(n - 1);
    if pos >= n {
        return Err(Error::Input(format!(
            "--position {pos} is out of range: the text has tokens 0..={}",
            n - 1
        )));
    }
    let x = trace.hidden[nl].row(pos).to_owned();
    let logits = head.logits(&x.clone().insert_axis(ndarray::Axis(0)));
    let target = match token {
        Some(id) => id,
        None => crate::model::generate::argmax(&logits.row(0)) as u32,
    };
    let logit = *logits.get([0, target as usize]).ok_or_else(|| {
        Error::Input(format!(
            "token id {target} is outside the vocabulary of {}",
            logits.ncols()
        ))
    })?;

    // The components of the stream at `pos`.
    let mut comps: Vec<(String, Array1<f32>)> = vec![];
    let ids: Vec<u32> = trace.tokens.iter().map(|t| t.id).collect();
    let enc = crate::tokenize::Encoded {
        ids,
        type_ids: vec![0; n],
        tokens: vec![],
    };
    let parts = t.embed.parts(&enc)?;
    let e0 = trace.hidden[0].row(pos).to_owned();
    match &parts.position {
        Some(p) => {
            let pe = p.row(pos).to_owned();
            comps.push(("embed".into(), &e0 - &pe));
            comps.push(("pos_embed".into(), pe));
        }
        None => comps.push(("embed".into(), e0)),
    }
    let (h, hd) = (t.stack.attn.n_heads, t.stack.attn.head_dim);
    for (l, b) in t.stack.blocks.iter().enumerate() {
        let z = trace
            .captures
            .z(l)
            .ok_or_else(|| Error::Input(format!("no z captured at layer {l}")))?;
        // Row g of `blocks` holds only head g's z: its projection is that head's write into the stream.
        let mut blocks = Array2::<f32>::zeros((h, h * hd));
        for g in 0..h {
            blocks
                .slice_mut(s![g, g * hd..(g + 1) * hd])
                .assign(&z.slice(s![g, pos, ..]));
        }
        let per_head = b.attn.o.w.matmul_t(&blocks.view());
        for g in 0..h {
            comps.push((format!("L{l}.H{g}"), per_head.row(g).to_owned()));
        }
        if let Some(bias) = &b.attn.o.b {
            comps.push((format!("L{l}.attn_bias"), bias.clone()));
        }
        let m = trace
            .captures
            .view2(HookPoint::MlpOut, l)
            .ok_or_else(|| Error::Input(format!("no MLP output captured at layer {l}")))?;
        comps.push((format!("L{l}.MLP"), m.row(pos).to_owned()));
    }

    // The final norm, frozen at the clean stream `x`.
    let u = head
        .unembed
        .row(target as usize)
        .ok_or_else(|| Error::Input(format!("token id {target} is outside the unembedding")))?;
    let d = x.len() as f64;
    let (centre, scale, gamma, beta) = match &head.norm {
        Some(norm) => {
            let centre = norm.kind == NormKind::LayerNorm;
            let mu = if centre {
                x.iter().map(|v| *v as f64).sum::<f64>() / d
            } else {
                0.0
            };
            let ms = x.iter().map(|v| (*v as f64 - mu).powi(2)).sum::<f64>() / d;
            (
                centre,
                (ms + norm.eps as f64).sqrt(),
                Some(&norm.weight),
                norm.bias.as_ref(),
            )
        }
        None => (false, 1.0, None, None),
    };
    let lm_scale = head.scale as f64;
    let share = |c: &Array1<f32>| -> f64 {
        let mu = if centre {
            c.iter().map(|v| *v as f64).sum::<f64>() / d
        } else {
            0.0
        };
        c.iter()
            .enumerate()
            .map(|(i, v)| {
                (*v as f64 - mu) / scale * gamma.map_or(1.0, |g| g[i] as f64) * u[i] as f64
            })
            .sum::<f64>()
            * lm_scale
    };
    let mut components: Vec<Component> = comps
        .iter()
        .map(|(name, c)| Component {
            name: name.clone(),
            value: share(c) as f32,
        })
        .collect();
    if let Some(b) = beta {
        let v: f64 = b
            .iter()
            .zip(u.iter())
            .map(|(b, u)| *b as f64 * *u as f64)
            .sum::<f64>()
            * lm_scale;
        components.push(Component {
            name: "final_norm_bias".into(),
            value: v as f32,
        });
    }
    if let Some(b) = &head.bias {
        components.push(Component {
            name: "unembed_bias".into(),
            value: b[target as usize],
        });
    }
    Ok(Attribution {
        position: pos,
        token: target,
        text: t.tokenizer.token_label(target),
        logit,
        components,
    })
}
