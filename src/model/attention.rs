//! Multi-head scaled dot-product attention with its hook points: `q`, `k`, `v` (after the projection bias and
//! RoPE), `scores` (scaled, biased, masked), `pattern` (softmax), `z` (per-head Σ α·v); grouped-query heads, rotary
//! positions, a causal mask, an additive score bias (T5), and cross-attention (keys and values from another stream).

use super::linear::Linear;
use crate::hooks::{Captures, HookPoint, Hooks};
use crate::numeric::{fast, ops};
use crate::weights::source::Vb;
use crate::{Error, Result};
use ndarray::{Array2, Array3, ArrayD, ArrayView2, Axis, s};
use rayon::prelude::*;

/// The shape of an attention sub-layer.
#[derive(Debug, Clone, PartialEq)]
pub struct AttnSpec {
    pub n_heads: usize,
    /// Key/value heads: `n_heads` for plain multi-head attention, fewer for grouped-query attention.
    pub n_kv_heads: usize,
    pub head_dim: usize,
    /// Each query sees only keys at or before its position.
    pub causal: bool,
    /// Multiplies `q·k`: `1/√head_dim` in the paper, 1 in T5.
    pub scale: f32,
    /// Rotary frequencies (rotate-half convention) applied to queries and keys, or none.
    pub rotary: Option<Vec<f32>>,
}

impl AttnSpec {
    /// Plain multi-head attention scaled by `1/√head_dim`.
    pub fn standard(n_heads: usize, head_dim: usize, causal: bool) -> Self {
        AttnSpec {
            n_heads,
            n_kv_heads: n_heads,
            head_dim,
            causal,
            scale: 1.0 / (head_dim as f32).sqrt(),
            rotary: None,
        }
    }
    /// Query heads per KV head.
    pub fn group(&self) -> usize {
        self.n_heads / self.n_kv_heads.max(1)
    }
    /// The KV head that query head `h` reads.
    pub fn kv_head(&self, h: usize) -> usize {
        h / self.group().max(1)
    }
}

/// The four projections: `q`, `k`, `v` map the stream to `[heads·head_dim]` (`k`, `v`: `[kv_heads·head_dim]`),
/// `o` maps the concatenated heads back to `d_model`.
#[derive(Debug)]
pub struct AttnWeights {
    pub q: Linear,
    pub k: Linear,
    pub v: Linear,
    pub o: Linear,
}

impl AttnWeights {
    /// The four projections named `names` (q, k, v, o) under `vb`: q/k/v map `d` to `inner` (heads × head size), o
    /// maps `inner` back to `d`; each with a bias when `bias`.
    pub fn load(vb: &Vb, names: [&str; 4], d: usize, inner: usize, bias: bool) -> Result<Self> {
        let [q, k, v, o] = names;
        Ok(AttnWeights {
            q: Linear::load(vb, q, inner, d, bias)?,
            k: Linear::load(vb, k, inner, d, bias)?,
            v: Linear::load(vb, v, inner, d, bias)?,
            o: Linear::load(vb, o, d, inner, bias)?,
        })
    }
}

/// The hook points of self- or cross-attention.
#[derive(Debug, Clone, Copy)]
pub struct Points {
    pub q: HookPoint,
    pub k: HookPoint,
    pub v: HookPoint,
    pub scores: HookPoint,
    pub pattern: HookPoint,
    pub z: HookPoint,
}

pub const SELF_POINTS: Points = Points {
    q: HookPoint::AttnQ,
    k: HookPoint::AttnK,
    v: HookPoint::AttnV,
    scores: HookPoint::AttnScores,
    pattern: HookPoint::AttnPattern,
    z: HookPoint::AttnZ,
};

pub const CROSS_POINTS: Points = Points {
    q: HookPoint::CrossQ,
    k: HookPoint::CrossK,
    v: HookPoint::CrossV,
    scores: HookPoint::CrossScores,
    pattern: HookPoint::CrossPattern,
    z: HookPoint::CrossZ,
};

/// Where an attention call runs: its layer, its hooks, the rotary tables and the position of the first query.
pub struct Site<'a> {
    pub layer: usize,
    pub hooks: &'a Hooks,
    pub points: Points,
    /// `(cos, sin)` `[positions, head_dim/2]` covering every query and key position (rotary models).
    pub rope: Option<(&'a Array2<f32>, &'a Array2<f32>)>,
    /// Absolute position of the first query (incremental decoding); keys start at 0.
    pub q_offset: usize,
    /// Added to the scaled scores, `[heads, n, m]` (T5's relative position bias).
    pub score_bias: Option<&'a Array3<f32>>,
    /// Incremental decoding: the keys and values of the earlier positions `[past, kv_heads·head_dim]` (keys already
    /// rotated); the new rows' keys are rotated from position `past` and appended.
    pub past: Option<(&'a Array2<f32>, &'a Array2<f32>)>,
    /// Whether the caller needs the `[heads, n, m]` pattern back. When not (and no hook wants scores or pattern),
    /// each head runs over [`QUERY_TILE`] queries at a time and only `z` is kept: memory grows with `n`, not `n²`.
    pub keep_pattern: bool,
}

/// Queries per tile when the pattern is not kept.
pub const QUERY_TILE: usize = 128;

/// What one attention sub-layer produced.
pub struct AttnOutput {
    /// `[heads, n, m]`, rows sum to 1 (0 for fully masked rows); `[heads, 0, m]` when the site did not keep it.
    pub pattern: Array3<f32>,
    /// The heads concatenated, `[n, heads·head_dim]` (after any edit of `z`).
    pub z: Array2<f32>,
    /// After the output projection, `[n, d_model]`.
    pub out: Array2<f32>,
    /// Every position's keys (rotated) and values `[m, kv_heads·head_dim]`, the past included: the next step's cache.
    pub k: Array2<f32>,
    pub v: Array2<f32>,
}

/// `[n, heads·hd]` → `[heads, n, hd]`.
pub fn split_heads(x: &ArrayView2<f32>, heads: usize, hd: usize) -> Array3<f32> {
    let n = x.nrows();
    Array3::from_shape_fn((heads, n, hd), |(h, i, j)| x[[i, h * hd + j]])
}

/// `[heads, n, hd]` → `[n, heads·hd]`, written into `x`.
fn merge_heads(t: &ArrayD<f32>, x: &mut Array2<f32>, hd: usize) -> Result<()> {
    let t = t
        .view()
        .into_dimensionality::<ndarray::Ix3>()
        .map_err(|e| Error::Input(format!("an edited head tensor lost its shape: {e}")))?;
    for (h, head) in t.axis_iter(Axis(0)).enumerate() {
        x.slice_mut(s![.., h * hd..(h + 1) * hd]).assign(&head);
    }
    Ok(())
}

/// Capture and/or edit a `[n, heads·hd]` projection at a per-head hook point.
fn hook_heads(
    site: &Site,
    point: HookPoint,
    x: &mut Array2<f32>,
    heads: usize,
    hd: usize,
    caps: &mut Captures,
) -> Result<()> {
    if !site.hooks.wants(point, site.layer) {
        return Ok(());
    }
    let mut t = split_heads(&x.view(), heads, hd).into_dyn();
    if site.hooks.edited(point, site.layer) {
        site.hooks.apply(point, site.layer, &mut t.view_mut())?;
        merge_heads(&t, x, hd)?;
    }
    if site.hooks.captures(point, site.layer) {
        caps.insert(point, site.layer, t);
    }
    Ok(())
}

/// Capture and/or edit a `[heads, n, m]` tensor at a hook point.
fn hook_full(
    site: &Site,
    point: HookPoint,
    t: &mut Array3<f32>,
    caps: &mut Captures,
) -> Result<()> {
    if site.hooks.edited(point, site.layer) {
        let mut v = t.view_mut().into_dyn();
        site.hooks.apply(point, site.layer, &mut v)?;
    }
    if site.hooks.captures(point, site.layer) {
        caps.insert(point, site.layer, t.clone().into_dyn());
    }
    Ok(())
}

/// The keys (rotated from position `k0` on rotary models) and values `[m, kv_heads·head_dim]` of the rows `xkv`.
pub fn keys_values(
    spec: &AttnSpec,
    w: &AttnWeights,
    xkv: &ArrayView2<f32>,
    rope: Option<(&Array2<f32>, &Array2<f32>)>,
    k0: usize,
) -> (Array2<f32>, Array2<f32>) {
    let mut k = w.k.forward(xkv);
    let v = w.v.forward(xkv);
    if let Some((cos, sin)) = rope {
        let m = k.nrows();
        let kc = cos.slice(s![k0..k0 + m, ..]).to_owned();
        let ks = sin.slice(s![k0..k0 + m, ..]).to_owned();
        ops::apply_rope_half(&mut k, spec.n_kv_heads, spec.head_dim, &kc, &ks);
    }
    (k, v)
}

/// The queries `[n, heads·hd]`, keys and values `[m, kv_heads·hd]` of an attention call: projected, rotated (rotary
/// models), the past prepended (incremental decoding), and through the `q`/`k`/`v` hooks.
fn project(
    (spec, w): (&AttnSpec, &AttnWeights),
    (xq, xkv): (&ArrayView2<f32>, &ArrayView2<f32>),
    site: &Site,
    caps: &mut Captures,
) -> Result<(Array2<f32>, Array2<f32>, Array2<f32>)> {
    let (h, kvh, hd) = (spec.n_heads, spec.n_kv_heads, spec.head_dim);
    let mut q = w.q.forward(xq);
    let k0 = site.past.map_or(0, |(pk, _)| pk.nrows());
    let (mut k, mut v) = keys_values(spec, w, xkv, site.rope, k0);
    if let Some((cos, sin)) = site.rope {
        let n = q.nrows();
        let qc = cos
            .slice(s![site.q_offset..site.q_offset + n, ..])
            .to_owned();
        let qs = sin
            .slice(s![site.q_offset..site.q_offset + n, ..])
            .to_owned();
        ops::apply_rope_half(&mut q, h, hd, &qc, &qs);
    }
    if let Some((pk, pv)) = site.past {
        k = ndarray::concatenate(Axis(0), &[pk.view(), k.view()])
            .map_err(|e| Error::Input(format!("the key cache does not fit the new keys: {e}")))?;
        v = ndarray::concatenate(Axis(0), &[pv.view(), v.view()]).map_err(|e| {
            Error::Input(format!("the value cache does not fit the new values: {e}"))
        })?;
    }
    let p = site.points;
    hook_heads(site, p.q, &mut q, h, hd, caps)?;
    hook_heads(site, p.k, &mut k, kvh, hd, caps)?;
    hook_heads(site, p.v, &mut v, kvh, hd, caps)?;
    Ok((q, k, v))
}

/// The scaled, biased, masked scores of query head `hh` for the queries `rows` over the first `keys` keys,
/// `[rows, keys]`.
fn scores_rows(
    spec: &AttnSpec,
    site: &Site,
    (q, k): (&Array2<f32>, &Array2<f32>),
    hh: usize,
    rows: std::ops::Range<usize>,
    keys: usize,
) -> Array2<f32> {
    let hd = spec.head_dim;
    let g = hh / spec.group().max(1);
    let qh = q.slice(s![rows.clone(), hh * hd..(hh + 1) * hd]);
    let kh = k.slice(s![..keys, g * hd..(g + 1) * hd]);
    let mut sc = fast::head_scores(&qh, &kh, spec.scale);
    if let Some(bias) = site.score_bias {
        sc += &bias.slice(s![hh, rows.clone(), ..keys]);
    }
    if spec.causal {
        for (r, i) in rows.enumerate() {
            let first_hidden = (site.q_offset + i + 1).min(keys);
            sc.slice_mut(s![r, first_hidden..]).fill(f32::NEG_INFINITY);
        }
    }
    sc
}

/// The attention probabilities `[n, m]` of each query head in `heads` only (one head's matrix at a time is what a
/// long input can afford), equal to the rows of [`attend`]'s pattern. No hooks run.
pub fn head_patterns(
    spec: &AttnSpec,
    w: &AttnWeights,
    x: &ArrayView2<f32>,
    site: &Site,
    heads: &[usize],
) -> Result<Vec<Array2<f32>>> {
    if let Some(&bad) = heads.iter().find(|&&hh| hh >= spec.n_heads) {
        return Err(Error::Input(format!(
            "head {bad} out of range (the model has heads 0..={})",
            spec.n_heads.saturating_sub(1)
        )));
    }
    let mut caps = Captures::default();
    let (q, k, _) = project((spec, w), (x, x), site, &mut caps)?;
    let (n, m) = (q.nrows(), k.nrows());
    Ok(heads
        .iter()
        .map(|&hh| {
            let mut sc = scores_rows(spec, site, (&q, &k), hh, 0..n, m);
            ops::softmax_rows(&mut sc);
            sc
        })
        .collect())
}

/// Attention of queries from `xq` `[n, d]` over keys and values from `xkv` `[m, d]` (the same stream for
/// self-attention). Captures go into `caps`.
pub fn attend(
    spec: &AttnSpec,
    w: &AttnWeights,
    xq: &ArrayView2<f32>,
    xkv: &ArrayView2<f32>,
    site: &Site,
    caps: &mut Captures,
) -> Result<AttnOutput> {
    let (h, hd) = (spec.n_heads, spec.head_dim);
    let (q, k, v) = project((spec, w), (xq, xkv), site, caps)?;
    let p = site.points;

    let (n, m) = (q.nrows(), k.nrows());
    let group = spec.group().max(1);
    // Short inputs stay on one thread, where spreading heads out costs more than it saves.
    let min_len = if n < 32 { h.max(1) } else { 1 };
    let staged = site.hooks.wants(p.scores, site.layer) || site.hooks.wants(p.pattern, site.layer);
    let scores_of = |hh: usize| scores_rows(spec, site, (&q, &k), hh, 0..n, m);
    let context_of = |hh: usize, pattern: &ArrayView2<f32>| -> Array2<f32> {
        let g = hh / group;
        // A causal tile sees only the first `pattern.ncols()` keys.
        let keys = pattern.ncols();
        fast::head_context(pattern, &v.slice(s![..keys, g * hd..(g + 1) * hd]))
    };
    let mut pattern: Array3<f32>;
    let mut z = Array2::<f32>::zeros((n, h * hd));
    if !staged && !site.keep_pattern {
        let ctx: Vec<Array2<f32>> = (0..h)
            .into_par_iter()
            .map(|hh| {
                let mut c = Array2::<f32>::zeros((n, hd));
                for r0 in (0..n).step_by(QUERY_TILE) {
                    let rows = r0..(r0 + QUERY_TILE).min(n);
                    // Causal: keys after the tile's last query are masked for every row; they are not computed.
                    let keys = if spec.causal {
                        (site.q_offset + rows.end).min(m)
                    } else {
                        m
                    };
                    let mut sc = scores_rows(spec, site, (&q, &k), hh, rows.clone(), keys);
                    ops::softmax_rows(&mut sc);
                    c.slice_mut(s![rows, ..])
                        .assign(&context_of(hh, &sc.view()));
                }
                c
            })
            .collect();
        for (hh, c) in ctx.into_iter().enumerate() {
            z.slice_mut(s![.., hh * hd..(hh + 1) * hd]).assign(&c);
        }
        pattern = Array3::zeros((h, 0, m));
    } else if staged {
        pattern = Array3::zeros((h, n, m));
        let all: Vec<Array2<f32>> = (0..h)
            .into_par_iter()
            .with_min_len(min_len)
            .map(scores_of)
            .collect();
        for (hh, sc) in all.into_iter().enumerate() {
            pattern.index_axis_mut(Axis(0), hh).assign(&sc);
        }
        hook_full(site, p.scores, &mut pattern, caps)?;
        let mut heads: Vec<_> = pattern.outer_iter_mut().collect();
        heads.par_iter_mut().with_min_len(min_len).for_each(|head| {
            for row in head.rows_mut() {
                ops::softmax_in_place(row);
            }
        });
        hook_full(site, p.pattern, &mut pattern, caps)?;
        let ctx: Vec<Array2<f32>> = (0..h)
            .into_par_iter()
            .with_min_len(min_len)
            .map(|hh| context_of(hh, &pattern.index_axis(Axis(0), hh)))
            .collect();
        for (hh, c) in ctx.into_iter().enumerate() {
            z.slice_mut(s![.., hh * hd..(hh + 1) * hd]).assign(&c);
        }
    } else {
        pattern = Array3::zeros((h, n, m));
        let heads: Vec<(Array2<f32>, Array2<f32>)> = (0..h)
            .into_par_iter()
            .with_min_len(min_len)
            .map(|hh| {
                let mut sc = scores_of(hh);
                ops::softmax_rows(&mut sc);
                let c = context_of(hh, &sc.view());
                (sc, c)
            })
            .collect();
        for (hh, (pt, c)) in heads.into_iter().enumerate() {
            pattern.index_axis_mut(Axis(0), hh).assign(&pt);
            z.slice_mut(s![.., hh * hd..(hh + 1) * hd]).assign(&c);
        }
    }
    hook_heads(site, p.z, &mut z, h, hd, caps)?;
    let out = w.o.forward(&z.view());
    Ok(AttnOutput {
        pattern,
        z,
        out,
        k,
        v,
    })
}
