//! The explanations on a real model: capture one layer's hook points (only that layer), read the weights from
//! `Model::engine()`, and hand plain arrays to the pure computations of [`super`].

use super::block_walk::{BlockInputs, BlockWalk, CrossInputs};
use super::embedding::{EmbeddingInputs, EmbeddingParts, PositionalInput};
use super::subject::Subject;
use super::{HeadInputs, RotaryInputs, WeightComputation, causal_mask, head_slice};
use crate::model::Model;
use crate::model::block::{Linear, Mlp, NormKind, Placement};
use crate::model::embed::PositionKind;
use crate::numeric::ops::Activation;
use crate::tokenize::Encoded;
use crate::trace::{ForwardOptions, HookPoint, Positional, Trace};
use crate::{Error, Result};
use ndarray::{Array1, Array2, Array3, ArrayView1, ArrayView3, Axis};

pub use super::subject::{POINTS, capture_layer};

/// `trace` with `layer`'s hook points captured: the model re-runs block `layer` alone from `hidden[layer]` (the
/// layers before are copied, the ones after are not run: the result ends at `hidden[layer + 1]`). A trace that
/// already has them is returned as is (cloned).
pub fn with_layer<'a>(s: impl Into<Subject<'a>>, trace: &Trace, layer: usize) -> Result<Trace> {
    let s = s.into();
    if layer >= trace.n_layers() {
        return Err(Error::Input(format!(
            "layer {layer} out of range (0..={})",
            trace.n_layers().saturating_sub(1)
        )));
    }
    let p = s.points();
    if trace.captures.get(p.q, layer).is_some() && trace.captures.get(p.z, layer).is_some() {
        return Ok(trace.clone());
    }
    s.capture(trace, layer)
}

fn missing(what: &str, layer: usize) -> Error {
    Error::Input(format!(
        "explain: `{what}` of layer {layer} was not captured"
    ))
}

/// A captured `[heads, n, x]` tensor of `layer`.
fn captured(t: &Trace, p: HookPoint, layer: usize) -> Result<ArrayView3<'_, f32>> {
    t.captures
        .view3(p, layer)
        .ok_or_else(|| missing(p.name(), layer))
}

/// A packed weight as a dense `[out, in]` matrix (the identity through the packed kernel: exact).
pub fn dense(l: &Linear) -> Array2<f32> {
    let (_, inp) = l.w.dim();
    l.w.matmul_t(&Array2::<f32>::eye(inp).view()).t().to_owned()
}

/// The output projection of block `layer` as a dense `[d_model, heads · d_head]` matrix (compute once per layer:
/// it costs one pass of the identity through the packed kernel).
pub fn w_o<'a>(s: impl Into<Subject<'a>>, layer: usize) -> Result<Array2<f32>> {
    Ok(dense(&s.into().attn(layer)?.o))
}

/// Undo the rotate-half rotation of one head vector at angles `theta` (`[d/2]`).
pub fn unrotate(x: &ArrayView1<f32>, theta: &ArrayView1<f32>) -> Array1<f32> {
    let half = theta.len();
    let mut out = x.to_owned();
    for i in 0..half.min(x.len() / 2) {
        let (c, s) = (theta[i].cos(), theta[i].sin());
        let (a, b) = (x[i], x[i + half]);
        out[i] = a * c + b * s;
        out[i + half] = b * c - a * s;
    }
    out
}

/// The computation of weight (query, key) of `head` at `layer` (`key: None`: the heaviest key). `t` must hold the
/// layer's captures ([`with_layer`]).
pub fn weight<'a>(
    s: impl Into<Subject<'a>>,
    t: &Trace,
    w_o: &Array2<f32>,
    layer: usize,
    head: usize,
    query: usize,
    key: Option<usize>,
) -> Result<WeightComputation> {
    let s = s.into();
    let spec = s.spec()?;
    let p = s.points();
    let [q, k, v] = [p.q, p.k, p.v].map(|p| captured(t, p, layer));
    let (q, k, v) = (q?, k?, v?);
    let (heads, n_q, _) = q.dim();
    let n = k.dim().1;
    if head >= heads || query >= n_q {
        return Err(Error::Input(format!(
            "head {head} / query {query} out of range (heads 0..={}, tokens 0..={})",
            heads.saturating_sub(1),
            n_q.saturating_sub(1)
        )));
    }
    let g = spec.kv_head(head);
    let bias = s.bias_row(head, query, n);
    let wv = w_o.view();
    let mask = causal_mask(query, n, spec.causal);
    let qi = q.index_axis(Axis(0), head);
    let inp = HeadInputs {
        query,
        key,
        head,
        kv_head: (spec.n_kv_heads != spec.n_heads).then_some(g),
        q: qi.row(query),
        k: k.index_axis(Axis(0), g),
        v: v.index_axis(Axis(0), g),
        scale: spec.scale,
        bias: bias.as_ref().map(|b| b.view()),
        mask: &mask,
        w_o: Some(head_slice(&wv, head, spec.head_dim)),
        rotary: None,
    };
    let mut c = WeightComputation::compute(&inp)?;
    if let Positional::Rotary { angles, .. } = &t.positional {
        let kj = k.index_axis(Axis(0), g);
        let (aq, ak) = (angles.row(query), angles.row(c.key));
        let (qp, kp) = (unrotate(&qi.row(query), &aq), unrotate(&kj.row(c.key), &ak));
        c = WeightComputation::compute(&HeadInputs {
            key: Some(c.key),
            rotary: Some(RotaryInputs {
                q_pre: qp.view(),
                k_pre: kp.view(),
                angles_q: aq,
                angles_k: ak,
            }),
            ..inp
        })?;
    }
    Ok(c)
}

/// ‖W_O^h z_h‖ of every head for `query` at `layer` (`t` with the layer's captures; `w_o` the layer's).
pub fn head_norms<'a>(
    s: impl Into<Subject<'a>>,
    t: &Trace,
    (w_o, layer, query): (&Array2<f32>, usize, usize),
) -> Result<Vec<f32>> {
    let z = captured(t, s.into().points().z, layer)?;
    if query >= z.dim().1 {
        return Err(Error::Input(format!("query {query} out of range")));
    }
    super::head_out_norms(&z.index_axis(Axis(1), query), &w_o.view())
}

/// Value-weighted norms `[heads, n, n]` of `layer` (`t` with the layer's captures).
pub fn value_weighted<'a>(
    s: impl Into<Subject<'a>>,
    t: &Trace,
    w_o: &Array2<f32>,
    layer: usize,
) -> Result<Array3<f32>> {
    let p = s.into().points();
    let pattern = captured(t, p.pattern, layer)?;
    let v = captured(t, p.v, layer)?;
    super::value_weighted(&pattern, &v, &w_o.view())
}

/// The embedding of `token`, part by part, from the engine's embedding tables.
pub fn embedding<'a>(s: impl Into<Subject<'a>>, t: &Trace, token: usize) -> Result<EmbeddingParts> {
    let embed = s.into().embed();
    if token >= t.n_tokens() {
        return Err(Error::Input(format!("token {token} out of range")));
    }
    let enc = Encoded {
        ids: t.tokens.iter().map(|x| x.id).collect(),
        type_ids: t.tokens.iter().map(|x| x.type_id).collect(),
        tokens: vec![],
    };
    let parts = embed.parts(&enc)?;
    let pos_row;
    let positional = match (&embed.position, &parts.position) {
        (PositionKind::Rotary { .. }, _) => PositionalInput::Rotary,
        (PositionKind::Sinusoidal | PositionKind::SinusoidalHalves, Some(p)) => {
            pos_row = p.row(token);
            PositionalInput::Added {
                kind: "sinusoidal",
                vector: pos_row,
            }
        }
        (PositionKind::Learned { .. }, Some(p)) => {
            pos_row = p.row(token);
            PositionalInput::Added {
                kind: "learned",
                vector: pos_row,
            }
        }
        _ => PositionalInput::None,
    };
    let norm_fn = |x: ArrayView1<f32>| -> Array1<f32> {
        match &embed.norm {
            Some(nm) => nm.apply(&x.insert_axis(Axis(0))).row(0).to_owned(),
            None => x.to_owned(),
        }
    };
    let norm_name = match embed.norm.as_ref().map(|n| n.kind) {
        Some(NormKind::RmsNorm) => "RMSNorm",
        _ => "LayerNorm",
    };
    Ok(EmbeddingParts::compute(&EmbeddingInputs {
        token,
        token_embedding: parts.token.row(token),
        scale: (parts.scale != 1.0).then_some(parts.scale),
        positional,
        segment: parts
            .segment
            .as_ref()
            .map(|s| (t.tokens[token].type_id as usize, s.row(token))),
        norm: embed.norm.as_ref().map(|_| (norm_name, &norm_fn as _)),
    }))
}

fn act_name(a: Activation) -> &'static str {
    match a {
        Activation::GeluErf => "gelu",
        Activation::GeluTanh => "gelu_tanh",
        Activation::Relu => "relu",
        Activation::Silu => "silu",
    }
}

/// One token through block `layer` (`t` with the layer's captures).
pub fn block_walk<'a>(
    s: impl Into<Subject<'a>>,
    t: &Trace,
    w_o: &Array2<f32>,
    layer: usize,
    token: usize,
) -> Result<BlockWalk> {
    let s = s.into();
    let b = s.block(layer)?;
    let c = &t.captures;
    let v2 = |p: HookPoint, name: &str| {
        c.view2(p, layer)
            .ok_or_else(|| missing(name, layer))
            .and_then(|m| {
                (token < m.nrows())
                    .then(move || m.index_axis_move(Axis(0), token))
                    .ok_or_else(|| Error::Input(format!("token {token} out of range")))
            })
    };
    let z = captured(t, s.points().z, layer)?;
    let resid_pre = t
        .hidden
        .get(layer)
        .ok_or_else(|| missing("resid_pre", layer))?
        .row(token);
    let resid_mid = v2(HookPoint::ResidMid, "resid_mid")?;
    let pre = s.stack().placement == Placement::Pre;
    let ln = |nm: &crate::model::block::Norm, x: ArrayView1<f32>| {
        nm.apply(&x.insert_axis(Axis(0))).row(0).to_owned()
    };
    let ln_attn = pre.then(|| ln(&b.ln_attn, resid_pre));
    // A decoder block of an encoder–decoder: the cross-attention sub-layer sits between resid_mid and the MLP.
    let cross = match &b.cross {
        Some(cb) if s.has_cross() => Some((
            pre.then(|| ln(&cb.norm, resid_mid)),
            v2(HookPoint::CrossOut, "cross_out")?,
            v2(HookPoint::ResidCross, "resid_cross")?,
        )),
        _ => None,
    };
    let mlp_in = cross.as_ref().map_or(resid_mid, |c| c.2);
    let ln_mlp = pre.then(|| ln(&b.ln_mlp, mlp_in));
    let (act, gated) = match &b.mlp {
        Mlp::Plain { act, .. } => (*act, false),
        Mlp::Gated { act, .. } => (*act, true),
    };
    let zt = z.index_axis(Axis(1), token);
    BlockWalk::compute(&BlockInputs {
        layer,
        token,
        post_ln: !pre,
        resid_pre,
        ln_attn: ln_attn.as_ref().map(|x| x.view()),
        z: zt,
        w_o: w_o.view(),
        attn_out: v2(HookPoint::AttnOut, "attn_out")?,
        resid_mid,
        ln_mlp: ln_mlp.as_ref().map(|x| x.view()),
        mlp_pre: v2(HookPoint::MlpPre, "mlp.pre")?,
        mlp_pre_linear: if gated {
            Some(v2(HookPoint::MlpPreLinear, "mlp.pre_linear")?)
        } else {
            None
        },
        mlp_post: v2(HookPoint::MlpPost, "mlp.post")?,
        activation: act_name(act),
        mlp_out: v2(HookPoint::MlpOut, "mlp_out")?,
        resid_post: v2(HookPoint::ResidPost, "resid_post")?,
        norm_name: match b.ln_attn.kind {
            NormKind::LayerNorm => "LayerNorm",
            NormKind::RmsNorm => "RMSNorm",
        },
        cross: cross.as_ref().map(|(ln, out, resid_cross)| CrossInputs {
            ln: ln.as_ref().map(|x| x.view()),
            out: *out,
            resid_cross: *resid_cross,
        }),
        heads_cross: s.is_cross(),
    })
}

/// Ask `opts` to capture what [`value_weighted_all`] reads: every layer's pattern and values.
pub fn value_weighted_hooks(opts: &mut ForwardOptions, n_layers: usize) {
    opts.hooks.capture_all(HookPoint::AttnPattern, n_layers);
    opts.hooks.capture_all(HookPoint::AttnV, n_layers);
}

/// Value-weighted norms of every layer `[layers, heads, n, n]` from a trace run with [`value_weighted_hooks`].
/// The captures it read are then dropped from the trace (the values stay when `keep_v`, e.g. for `--qkv`).
pub fn value_weighted_all(
    model: &dyn Model,
    trace: &mut Trace,
    keep_v: bool,
) -> Result<ndarray::ArrayD<f32>> {
    let layers: Vec<Array3<f32>> = (0..trace.n_layers())
        .map(|l| value_weighted(model, trace, &w_o(model, l)?, l))
        .collect::<Result<_>>()?;
    let views: Vec<_> = layers.iter().map(|a| a.view()).collect();
    let all = ndarray::stack(Axis(0), &views)
        .map_err(|e| Error::Input(format!("value-weighted: {e}")))?
        .into_dyn();
    let mut kept = crate::trace::Captures::default();
    for ((p, l), t) in trace.captures.iter() {
        let drop = *p == HookPoint::AttnPattern || (*p == HookPoint::AttnV && !keep_v);
        if !drop {
            kept.insert(*p, *l, t.clone());
        }
    }
    trace.captures = kept;
    Ok(all)
}
