//! How the numbers arise: pure computations over plain arrays, for the explanation views and `attn explain`.
//!
//! - [`WeightComputation`]: one attention weight, step by step: q·k, the scale, the mask, the row's softmax, the
//!   values it mixes, the head's output and what it writes through its slice of the output projection.
//! - [`value_weighted`]: ‖α_ij · v_j W_O^h‖ for every head (Kobayashi et al., 2020).
//! - [`embedding::EmbeddingParts`]: token embedding, scale, positional vector, segment, sum, embedding norm.
//! - [`block_walk::BlockWalk`]: one token through one block (norms, heads, residual, MLP).
//!
//! Inputs are ndarray views in the engine's layout (q/k/v as they enter the dot product, `[n, d_head]` per head;
//! the output projection `[d_model, heads · d_head]`), so these functions know nothing of models or hooks.

pub mod block_walk;
pub mod embedding;
#[cfg(test)]
pub(crate) mod examples;
pub mod run;
pub mod subject;
pub mod text;

use crate::{Error, Result};
use ndarray::{Array1, Array2, Array3, ArrayView1, ArrayView2, ArrayView3, s};
use serde::Serialize;

/// How many of the largest |q_d · k_d| products a computation marks.
pub const TOP_DIMS: usize = 5;

/// Rotary position embedding of one (query, key) pair: q and k before the rotation and the angle of each pair of
/// dimensions (`d` with `d + d_head/2`, the rotate-half convention) at the query's and the key's position.
#[derive(Debug, Clone, Copy)]
pub struct RotaryInputs<'a> {
    pub q_pre: ArrayView1<'a, f32>,
    pub k_pre: ArrayView1<'a, f32>,
    pub angles_q: ArrayView1<'a, f32>,
    pub angles_k: ArrayView1<'a, f32>,
}

/// What one head saw for one query.
#[derive(Debug, Clone, Copy)]
pub struct HeadInputs<'a> {
    pub query: usize,
    /// The key to explain; `None`: the key with the largest weight.
    pub key: Option<usize>,
    pub head: usize,
    /// Grouped-query models: the key/value head this head reads.
    pub kv_head: Option<usize>,
    /// The query vector `[d_head]` as it enters the dot product (after bias and rotation, not scaled).
    pub q: ArrayView1<'a, f32>,
    /// Every key `[n, d_head]` of the head's key/value head.
    pub k: ArrayView2<'a, f32>,
    /// Every value `[n, d_head]`.
    pub v: ArrayView2<'a, f32>,
    /// The factor on q·k (usually 1/√d_head).
    pub scale: f32,
    /// An additive bias on the scaled scores of the row (relative-position models), `[n]`.
    pub bias: Option<ArrayView1<'a, f32>>,
    /// Per key: masked (−∞ before the softmax).
    pub mask: &'a [bool],
    /// The head's slice of the output projection, `[d_model, d_head]`.
    pub w_o: Option<ArrayView2<'a, f32>>,
    pub rotary: Option<RotaryInputs<'a>>,
}

/// The rotation of q and k, for rotary models.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rotation {
    pub q_pre: Vec<f32>,
    pub k_pre: Vec<f32>,
    pub angles_q: Vec<f32>,
    pub angles_k: Vec<f32>,
}

/// One attention weight, step by step. The JSON of `attn explain --json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WeightComputation {
    pub query: usize,
    pub key: usize,
    pub head: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kv_head: Option<usize>,
    /// q_i and k_j `[d_head]`.
    pub q: Vec<f32>,
    pub k: Vec<f32>,
    /// q ⊙ k; its sum is `score`.
    pub qk: Vec<f32>,
    /// The dimensions with the largest |q_d k_d|, largest first.
    pub top_dims: Vec<usize>,
    /// q · k.
    pub score: f32,
    pub scale: f32,
    /// The additive score bias of this cell (T5's relative position bias), where the attention has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bias: Option<f32>,
    /// score · scale (+ bias).
    pub scaled: f32,
    /// Whether this cell is masked (its weight is 0: the key comes after the query in a decoder).
    pub masked: bool,
    /// The query's scaled scores; masked entries are `None` (−∞).
    pub row_scaled: Vec<Option<f32>>,
    /// The largest unmasked scaled score (subtracted before exp, so exp never overflows).
    pub row_max: f32,
    /// exp(scaled − row_max) for every key (0 where masked).
    pub row_exp: Vec<f32>,
    /// This cell's exp(scaled − row_max).
    pub exp: f32,
    pub exp_sum: f32,
    /// This cell's weight: exp / exp_sum.
    pub weight: f32,
    pub row_weights: Vec<f32>,
    /// v_j of the key `[d_head]`.
    pub v: Vec<f32>,
    /// α_ij · v_j.
    pub weighted_v: Vec<f32>,
    /// ‖v_j‖ for every key of the row.
    pub v_norms: Vec<f32>,
    /// Every key's value vector `[n][d_head]` (for the "what the head writes" view; not in the JSON).
    #[serde(skip)]
    pub row_values: Vec<Vec<f32>>,
    /// Σ_j α_ij v_j: what the head outputs for the query `[d_head]`.
    pub z: Vec<f32>,
    /// z through the head's slice of the output projection `[d_model]` (no bias): what the head adds to the stream.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub head_out: Option<Vec<f32>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub head_out_norm: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rotary: Option<Rotation>,
}

fn dot(a: &ArrayView1<f32>, b: &ArrayView1<f32>) -> f32 {
    a.iter().zip(b.iter()).map(|(x, y)| x * y).sum()
}

pub fn norm(v: &[f32]) -> f32 {
    v.iter()
        .map(|a| (*a as f64) * (*a as f64))
        .sum::<f64>()
        .sqrt() as f32
}

/// Indices of the `k` largest |values|, largest first (ties: lower index first).
pub fn top_abs(values: &[f32], k: usize) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..values.len()).collect();
    idx.sort_by(|a, b| values[*b].abs().total_cmp(&values[*a].abs()).then(a.cmp(b)));
    idx.truncate(k);
    idx
}

/// `w_o [d_model, d_head] · z [d_head]`.
pub fn project(w_o: &ArrayView2<f32>, z: &ArrayView1<f32>) -> Array1<f32> {
    w_o.dot(z)
}

impl WeightComputation {
    /// Compute the weight of `inp.key` (or the heaviest key) in the query's row, the way the engine does: scaled
    /// scores, masked entries −∞, exp(x − max) / Σ.
    pub fn compute(inp: &HeadInputs) -> Result<Self> {
        let n = inp.k.nrows();
        let d = inp.q.len();
        if inp.k.ncols() != d || inp.v.nrows() != n || inp.mask.len() != n {
            return Err(Error::Input(format!(
                "explain: q has {d} dims, k is {:?}, v is {:?}, the mask has {} keys",
                inp.k.shape(),
                inp.v.shape(),
                inp.mask.len()
            )));
        }
        if let Some(b) = inp.bias
            && b.len() != n
        {
            return Err(Error::Input(format!(
                "explain: score bias has {} entries for {n} keys",
                b.len()
            )));
        }
        if let Some(w) = inp.w_o
            && w.ncols() != inp.v.ncols()
        {
            return Err(Error::Input(format!(
                "explain: output projection slice is {:?}, values have {} dims",
                w.shape(),
                inp.v.ncols()
            )));
        }
        let row_scaled: Vec<Option<f32>> = (0..n)
            .map(|j| {
                (!inp.mask[j]).then(|| {
                    dot(&inp.q, &inp.k.row(j)) * inp.scale + inp.bias.map_or(0.0, |b| b[j])
                })
            })
            .collect();
        let row_max = row_scaled
            .iter()
            .flatten()
            .copied()
            .fold(f32::NEG_INFINITY, f32::max);
        let row_exp: Vec<f32> = row_scaled
            .iter()
            .map(|s| s.map_or(0.0, |s| (s - row_max).exp()))
            .collect();
        let exp_sum: f32 = row_exp.iter().sum();
        let row_weights: Vec<f32> = if exp_sum > 0.0 {
            row_exp.iter().map(|e| e / exp_sum).collect()
        } else {
            vec![0.0; n]
        };
        let key = match inp.key {
            Some(j) if j < n => j,
            Some(j) => {
                return Err(Error::Input(format!(
                    "key {j} out of range (0..={})",
                    n.saturating_sub(1)
                )));
            }
            // The first of the largest weights.
            None => (0..n)
                .max_by(|a, b| row_weights[*a].total_cmp(&row_weights[*b]).then(b.cmp(a)))
                .unwrap_or(0),
        };
        let kj = inp.k.row(key);
        let qk: Vec<f32> = inp.q.iter().zip(kj.iter()).map(|(a, b)| a * b).collect();
        let score = dot(&inp.q, &kj);
        let weight = row_weights.get(key).copied().unwrap_or(0.0);
        let mut z = Array1::<f32>::zeros(inp.v.ncols());
        for (j, w) in row_weights.iter().enumerate() {
            if *w != 0.0 {
                z.scaled_add(*w, &inp.v.row(j));
            }
        }
        let head_out = inp.w_o.map(|w| project(&w, &z.view()).to_vec());
        Ok(WeightComputation {
            query: inp.query,
            key,
            head: inp.head,
            kv_head: inp.kv_head,
            q: inp.q.to_vec(),
            k: kj.to_vec(),
            top_dims: top_abs(&qk, TOP_DIMS),
            qk,
            score,
            scale: inp.scale,
            bias: inp.bias.map(|b| b[key]),
            scaled: score * inp.scale + inp.bias.map_or(0.0, |b| b[key]),
            masked: inp.mask[key],
            row_scaled,
            row_max,
            exp: row_exp.get(key).copied().unwrap_or(0.0),
            row_exp,
            exp_sum,
            weight,
            row_weights,
            v: inp.v.row(key).to_vec(),
            weighted_v: inp.v.row(key).iter().map(|x| x * weight).collect(),
            v_norms: inp
                .v
                .rows()
                .into_iter()
                .map(|r| crate::numeric::ops::l2(&r))
                .collect(),
            row_values: inp.v.rows().into_iter().map(|r| r.to_vec()).collect(),
            z: z.to_vec(),
            head_out_norm: head_out.as_deref().map(norm),
            head_out,
            rotary: inp.rotary.map(|r| Rotation {
                q_pre: r.q_pre.to_vec(),
                k_pre: r.k_pre.to_vec(),
                angles_q: r.angles_q.to_vec(),
                angles_k: r.angles_k.to_vec(),
            }),
        })
    }
}

/// The causal mask of one query's row: keys after the query are masked.
pub fn causal_mask(query: usize, n: usize, causal: bool) -> Vec<bool> {
    (0..n).map(|j| causal && j > query).collect()
}

/// The slice of the output projection `w_o [d_model, heads · d_head]` that head `h` writes through.
pub fn head_slice<'a>(
    w_o: &'a ArrayView2<'a, f32>,
    h: usize,
    d_head: usize,
) -> ArrayView2<'a, f32> {
    w_o.slice(s![.., h * d_head..(h + 1) * d_head])
}

fn check_heads(heads: usize, kv_heads: usize, d_head: usize, w_o: &ArrayView2<f32>) -> Result<()> {
    if kv_heads == 0 || !heads.is_multiple_of(kv_heads) || w_o.ncols() != heads * d_head {
        return Err(Error::Input(format!(
            "explain: {heads} heads over {kv_heads} key/value heads of {d_head} dims do not fit an output \
             projection of {:?}",
            w_o.shape()
        )));
    }
    Ok(())
}

/// ‖W_O^h z_h‖ for every head of one token: the norm of what each head writes (z `[heads, d_head]`).
pub fn head_out_norms(z: &ArrayView2<f32>, w_o: &ArrayView2<f32>) -> Result<Vec<f32>> {
    let (heads, d) = z.dim();
    check_heads(heads, heads, d, w_o)?;
    Ok((0..heads)
        .map(|h| {
            let o = project(&head_slice(w_o, h, d), &z.row(h));
            norm(o.as_slice().unwrap_or(&o.to_vec()))
        })
        .collect())
}

/// Value-weighted attention (Kobayashi et al., 2020): `‖α_ij · v_j W_O^h‖` for every head, query and key, from
/// the pattern `[heads, n, m]` (`m` keys: `n` for self-attention, the source length for cross-attention), the
/// values `[kv_heads, m, d_head]` and the output projection
/// `[d_model, heads · d_head]`. Not normalised. Since α is a scalar, this is α_ij · ‖W_O^h v_j‖.
pub fn value_weighted(
    pattern: &ArrayView3<f32>,
    v: &ArrayView3<f32>,
    w_o: &ArrayView2<f32>,
) -> Result<Array3<f32>> {
    let (heads, n, m) = pattern.dim();
    let (kv_heads, vm, d) = v.dim();
    if vm != m {
        return Err(Error::Input(format!(
            "value-weighted: pattern {:?} and values {:?} disagree",
            pattern.shape(),
            v.shape()
        )));
    }
    check_heads(heads, kv_heads, d, w_o)?;
    let group = heads / kv_heads;
    let mut out = Array3::<f32>::zeros((heads, n, m));
    for h in 0..heads {
        let vs = v.index_axis(ndarray::Axis(0), h / group);
        // ‖W_O^h v_j‖ for every key j: [n, d] · [d, d_model].
        let proj: Array2<f32> = vs.dot(&head_slice(w_o, h, d).t());
        let norms: Vec<f32> = proj
            .rows()
            .into_iter()
            .map(|r| crate::numeric::ops::l2(&r))
            .collect();
        for i in 0..n {
            for j in 0..m {
                out[[h, i, j]] = pattern[[h, i, j]].abs() * norms[j];
            }
        }
    }
    Ok(out)
}

/// Each row divided by its sum (rows of zeros stay zero): the value-weighted grid as the view shows it.
pub fn row_normalized(m: &ArrayView2<f32>) -> Array2<f32> {
    let mut out = m.to_owned();
    for mut r in out.rows_mut() {
        let s: f32 = r.sum();
        if s > 0.0 {
            r.mapv_inplace(|x| x / s);
        }
    }
    out
}

#[cfg(test)]
mod tests;
