//! Numerical building blocks shared by every architecture. All row-wise: a matrix is `[tokens, features]`.

use ndarray::{Array1, Array2, Array3, ArrayView1, ArrayView2, ArrayViewMut1, Axis, s};
use rayon::prelude::*;

use super::fast;

/// Numerically stable softmax of one row, in place. Entries equal to `-inf` get probability 0. Contiguous rows use
/// the fused, vectorised [`fast::softmax`].
pub fn softmax_in_place(mut row: ArrayViewMut1<f32>) {
    if let Some(s) = row.as_slice_mut() {
        fast::softmax(s);
        return;
    }
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if max == f32::NEG_INFINITY {
        row.fill(0.0);
        return;
    }
    let mut sum = 0.0f32;
    row.mapv_inplace(|v| {
        let e = (v - max).exp();
        sum += e;
        e
    });
    row.mapv_inplace(|v| v / sum);
}

/// Softmax over the last axis of every row.
pub fn softmax_rows(x: &mut Array2<f32>) {
    for row in x.rows_mut() {
        softmax_in_place(row);
    }
}

/// LayerNorm over the features of every row: `(x - mean) / sqrt(var + eps) * gamma + beta` (biased variance).
pub fn layer_norm(
    x: &ArrayView2<f32>,
    gamma: &Array1<f32>,
    beta: &Array1<f32>,
    eps: f32,
) -> Array2<f32> {
    layer_norm_view(x, &gamma.view(), &beta.view(), eps)
}

/// [`layer_norm`] over borrowed parameters.
pub fn layer_norm_view(
    x: &ArrayView2<f32>,
    gamma: &ArrayView1<f32>,
    beta: &ArrayView1<f32>,
    eps: f32,
) -> Array2<f32> {
    if let (Some(g), Some(b)) = (gamma.as_slice(), beta.as_slice()) {
        return rows_into(x, |xr, or| fast::layer_norm_row(xr, g, b, eps, or));
    }
    let mut out = x.to_owned();
    let d = x.ncols() as f32;
    for mut row in out.rows_mut() {
        let mean = row.sum() / d;
        let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / d;
        let inv = 1.0 / (var + eps).sqrt();
        row.iter_mut()
            .zip(gamma.iter().zip(beta.iter()))
            .for_each(|(v, (g, b))| *v = (*v - mean) * inv * g + b);
    }
    out
}

/// `f(x row, out row)` for every row of a new `[n, d]` array.
fn rows_into(x: &ArrayView2<f32>, f: impl Fn(&[f32], &mut [f32])) -> Array2<f32> {
    let x = x.as_standard_layout();
    let mut out = Array2::<f32>::zeros(x.raw_dim());
    for (xr, mut or) in x.rows().into_iter().zip(out.rows_mut()) {
        if let (Some(xs), Some(os)) = (xr.as_slice(), or.as_slice_mut()) {
            f(xs, os);
        }
    }
    out
}

/// RMSNorm over the features of every row: `x / sqrt(mean(x²) + eps) * gamma`.
pub fn rms_norm(x: &ArrayView2<f32>, gamma: &Array1<f32>, eps: f32) -> Array2<f32> {
    if let Some(g) = gamma.as_slice() {
        return rows_into(x, |xr, or| fast::rms_norm_row(xr, g, eps, or));
    }
    let mut out = x.to_owned();
    let d = x.ncols() as f32;
    for mut row in out.rows_mut() {
        let ms = row.iter().map(|v| v * v).sum::<f32>() / d;
        let inv = 1.0 / (ms + eps).sqrt();
        row.iter_mut()
            .zip(gamma.iter())
            .for_each(|(v, g)| *v = *v * inv * g);
    }
    out
}

pub fn relu(x: f32) -> f32 {
    x.max(0.0)
}

/// Exact GELU, `0.5·x·(1 + erf(x/√2))` (BERT's `gelu`), in single precision (`erff`, < 1 ulp): an f64 `erf` was 16 %
/// of a 40-token MiniLM forward, since it runs on `tokens × d_ff` values per layer.
pub fn gelu_erf(x: f32) -> f32 {
    0.5 * x * (1.0 + libm::erff(x * std::f32::consts::FRAC_1_SQRT_2))
}

/// tanh-approximate GELU (GPT-2's `gelu_new`).
pub fn gelu_tanh(x: f32) -> f32 {
    let xd = x as f64;
    let c = (2.0 / std::f64::consts::PI).sqrt();
    (0.5 * xd * (1.0 + (c * (xd + 0.044715 * xd * xd * xd)).tanh())) as f32
}

/// The feed-forward activations of Hugging Face configs (`hidden_act` / `activation_function`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// `gelu`: exact, erf-based.
    GeluErf,
    /// `gelu_new`, `gelu_pytorch_tanh`: the tanh approximation.
    GeluTanh,
    Relu,
    /// `silu`, `swish`.
    Silu,
}

impl Activation {
    /// The names understood, for error messages.
    pub const HF_NAMES: &'static str = "gelu, gelu_new, gelu_pytorch_tanh, relu, silu, swish";

    pub fn from_hf(name: &str) -> Option<Self> {
        Some(match name {
            "gelu" => Activation::GeluErf,
            "gelu_new" | "gelu_pytorch_tanh" => Activation::GeluTanh,
            "relu" => Activation::Relu,
            "silu" | "swish" => Activation::Silu,
            _ => return None,
        })
    }

    pub fn apply_in_place(self, x: &mut Array2<f32>) {
        match self {
            Activation::GeluErf => match x.as_slice_mut() {
                Some(s) => fast::gelu_erf_slice(s),
                None => x.mapv_inplace(gelu_erf),
            },
            Activation::GeluTanh => x.mapv_inplace(gelu_tanh),
            Activation::Relu => x.mapv_inplace(relu),
            Activation::Silu => x.mapv_inplace(silu),
        }
    }
}

/// SiLU / swish, `x · sigmoid(x)`.
pub fn silu(x: f32) -> f32 {
    x / (1.0 + (-x).exp())
}

/// L2 norm of every row.
pub fn row_norms(x: &ArrayView2<f32>) -> Vec<f32> {
    x.rows().into_iter().map(|r| l2(&r)).collect()
}

pub fn l2(v: &ArrayView1<f32>) -> f32 {
    v.iter()
        .map(|a| (*a as f64) * (*a as f64))
        .sum::<f64>()
        .sqrt() as f32
}

/// Sinusoidal positional encoding of "Attention Is All You Need":
/// `PE(pos, 2i) = sin(pos / 10000^(2i/d))`, `PE(pos, 2i+1) = cos(pos / 10000^(2i/d))`.
pub fn sinusoidal_positions(n: usize, d: usize) -> Array2<f32> {
    let mut pe = Array2::<f32>::zeros((n, d));
    for pos in 0..n {
        for i in (0..d).step_by(2) {
            let angle = pos as f64 / 10000f64.powf(i as f64 / d as f64);
            pe[[pos, i]] = angle.sin() as f32;
            if i + 1 < d {
                pe[[pos, i + 1]] = angle.cos() as f32;
            }
        }
    }
    pe
}

/// Rotary frequencies `base^(-2i/dim)` for `i in 0..dim/2`.
pub fn rope_freqs(dim: usize, base: f32) -> Vec<f32> {
    (0..dim / 2)
        .map(|i| (1.0 / (base as f64).powf(2.0 * i as f64 / dim as f64)) as f32)
        .collect()
}

/// Rotation angle `pos · freq` for every position and frequency pair, `[n, freqs.len()]`.
pub fn rope_angles(n: usize, freqs: &[f32]) -> Array2<f32> {
    Array2::from_shape_fn((n, freqs.len()), |(p, i)| p as f32 * freqs[i])
}

/// `cos` and `sin` of every rotation angle, `[n, freqs.len()]` each, for [`apply_rope_half`].
pub fn rope_cos_sin(angles: &Array2<f32>) -> (Array2<f32>, Array2<f32>) {
    (angles.mapv(f32::cos), angles.mapv(f32::sin))
}

/// Apply RoPE in place, "rotate-half" convention (transformers' Llama): within each head of width `head_dim`,
/// dimension `i` pairs with `i + rot/2`, rotated by the angle whose cosine and sine are `cos[pos, i]`, `sin[pos, i]`
/// (from [`rope_cos_sin`], computed once per input rather than per head); dimensions past `rot` are left alone.
pub fn apply_rope_half(
    x: &mut Array2<f32>,
    n_heads: usize,
    head_dim: usize,
    cos: &Array2<f32>,
    sin: &Array2<f32>,
) {
    let half = cos.ncols();
    for ((mut row, c), s) in x.rows_mut().into_iter().zip(cos.rows()).zip(sin.rows()) {
        let (Some(row), Some(c), Some(s)) = (row.as_slice_mut(), c.as_slice(), s.as_slice()) else {
            continue;
        };
        for head in row.chunks_exact_mut(head_dim).take(n_heads) {
            let (lo, hi) = head.split_at_mut(half);
            for (((a, b), c), s) in lo.iter_mut().zip(hi.iter_mut()).zip(c).zip(s) {
                let (x0, x1) = (*a, *b);
                *a = x0 * c - x1 * s;
                *b = x1 * c + x0 * s;
            }
        }
    }
}

/// The result of scaled dot-product attention over all heads.
pub struct Attention {
    /// `[heads, n, n]`, row = query, column = key; rows sum to 1.
    pub probs: Array3<f32>,
    /// Heads concatenated, `[n, heads · head_dim]` (before the output projection).
    pub context: Array2<f32>,
}

/// Multi-head (and grouped-query) scaled dot-product attention: for each head `h`,
/// `softmax(Q_h K_gᵀ / √head_dim) V_g` where `g = h / (n_heads / n_kv_heads)`.
/// `q` is `[n, n_heads · head_dim]`; `k` and `v` are `[n, n_kv_heads · head_dim]`.
/// `causal` masks every key after the query.
pub fn attention(
    q: &Array2<f32>,
    k: &Array2<f32>,
    v: &Array2<f32>,
    n_heads: usize,
    n_kv_heads: usize,
    head_dim: usize,
    causal: bool,
) -> Attention {
    let n = q.nrows();
    let group = n_heads / n_kv_heads.max(1);
    let scale = 1.0 / (head_dim as f32).sqrt();
    // Heads are independent: for longer inputs compute them in parallel, then lay them out (the same numbers as a
    // serial loop). Short inputs stay on one thread, where spreading them out costs more than it saves.
    let min_len = if n < 32 { n_heads.max(1) } else { 1 };
    let heads: Vec<(Array2<f32>, Array2<f32>)> = (0..n_heads)
        .into_par_iter()
        .with_min_len(min_len)
        .map(|h| {
            let g = h / group.max(1);
            let qh = q.slice(s![.., h * head_dim..(h + 1) * head_dim]);
            let kh = k.slice(s![.., g * head_dim..(g + 1) * head_dim]);
            let vh = v.slice(s![.., g * head_dim..(g + 1) * head_dim]);
            let mut scores = qh.dot(&kh.t());
            scores.mapv_inplace(|x| x * scale);
            if causal {
                for i in 0..n {
                    scores.slice_mut(s![i, i + 1..]).fill(f32::NEG_INFINITY);
                }
            }
            softmax_rows(&mut scores);
            let ctx = scores.dot(&vh);
            (scores, ctx)
        })
        .collect();
    let mut probs = Array3::<f32>::zeros((n_heads, n, n));
    let mut context = Array2::<f32>::zeros((n, n_heads * head_dim));
    for (h, (p, c)) in heads.into_iter().enumerate() {
        probs.index_axis_mut(Axis(0), h).assign(&p);
        context
            .slice_mut(s![.., h * head_dim..(h + 1) * head_dim])
            .assign(&c);
    }
    Attention { probs, context }
}

/// Indices of the `k` largest values, largest first.
pub fn top_k(values: &ArrayView1<f32>, k: usize) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..values.len()).collect();
    let k = k.min(idx.len());
    if k == 0 {
        return vec![];
    }
    idx.select_nth_unstable_by(k - 1, |a, b| values[*b].total_cmp(&values[*a]));
    idx.truncate(k);
    idx.sort_by(|a, b| values[*b].total_cmp(&values[*a]));
    idx
}

/// The `k` most likely entries of a row of logits, largest first, with their softmax probabilities over the whole
/// row: one pass for the top-k (a small sorted buffer behind a threshold test), one vectorizable pass for the
/// normalizer `Σ exp(v - max)` (with [`exp_nonpos`]); the probabilities of the `k` winners use `f32::exp`.
pub fn softmax_top_k(logits: &[f32], k: usize) -> Vec<(usize, f32)> {
    let k = k.min(logits.len());
    if k == 0 {
        return vec![];
    }
    let mut top: Vec<(usize, f32)> = Vec::with_capacity(k + 1);
    let mut threshold = f32::NEG_INFINITY;
    for (i, &v) in logits.iter().enumerate() {
        if top.len() < k || v > threshold {
            let at = top.partition_point(|&(_, w)| w >= v);
            top.insert(at, (i, v));
            top.truncate(k);
            if top.len() == k {
                threshold = top[k - 1].1;
            }
        }
    }
    let max = top.iter().map(|t| t.1).fold(f32::NEG_INFINITY, f32::max);
    if max == f32::NEG_INFINITY || !max.is_finite() || logits.iter().any(|v| v.is_nan()) {
        return top.into_iter().map(|(i, _)| (i, 0.0)).collect();
    }
    let mut lanes = [0f32; 8];
    let chunks = logits.chunks_exact(8);
    let tail: f32 = chunks
        .remainder()
        .iter()
        .map(|&v| exp_nonpos(v - max))
        .sum();
    for c in chunks {
        for j in 0..8 {
            lanes[j] += exp_nonpos(c[j] - max);
        }
    }
    let sum = lanes.iter().sum::<f32>() + tail;
    top.into_iter()
        .map(|(i, v)| (i, (v - max).exp() / sum))
        .collect()
}

pub use super::fast::exp_nonpos;

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{arr1, arr2};

    fn close(a: f32, b: f32, tol: f32) -> bool {
        (a - b).abs() <= tol
    }

    #[test]
    fn softmax_matches_hand_values() {
        // softmax([1, 2, 3]) = e^(x-3) / sum = [0.09003057, 0.24472847, 0.66524096]
        let mut m = arr2(&[[1.0f32, 2.0, 3.0]]);
        softmax_rows(&mut m);
        let want = [0.09003057f32, 0.24472847, 0.66524096];
        for (g, w) in m.iter().zip(want) {
            assert!(close(*g, w, 1e-7), "{g} vs {w}");
        }
        // Large values must not overflow.
        let mut big = arr2(&[[1000.0f32, 1000.0]]);
        softmax_rows(&mut big);
        assert_eq!(big, arr2(&[[0.5f32, 0.5]]));
        // -inf entries get zero.
        let mut masked = arr2(&[[0.0f32, f32::NEG_INFINITY]]);
        softmax_rows(&mut masked);
        assert_eq!(masked, arr2(&[[1.0f32, 0.0]]));
    }

    #[test]
    fn layer_norm_matches_hand_values() {
        // x = [1, 2, 3, 4]: mean 2.5, biased var 1.25, (x-mean)/sqrt(1.25) = [-1.3416408, -0.4472136, ...]
        let x = arr2(&[[1.0f32, 2.0, 3.0, 4.0]]);
        let g = arr1(&[1.0f32, 1.0, 2.0, 1.0]);
        let b = arr1(&[0.0f32, 0.5, 0.0, 0.0]);
        let y = layer_norm(&x.view(), &g, &b, 0.0);
        let want = [-1.3416408f32, -0.4472136 + 0.5, 2.0 * 0.4472136, 1.3416408];
        for (g, w) in y.iter().zip(want) {
            assert!(close(*g, w, 1e-6), "{g} vs {w}");
        }
    }

    #[test]
    fn rms_norm_matches_hand_values() {
        // x = [3, 4]: mean square 12.5, rms 3.5355339 → [0.8485281, 1.1313708]
        let x = arr2(&[[3.0f32, 4.0]]);
        let y = rms_norm(&x.view(), &arr1(&[1.0f32, 1.0]), 0.0);
        assert!(close(y[[0, 0]], 0.8485281, 1e-6));
        assert!(close(y[[0, 1]], 1.1313708, 1e-6));
    }

    #[test]
    fn activations_match_hand_values() {
        // gelu(1) = 0.5·(1+erf(1/√2)) = 0.8413447; tanh approximation 0.8411920; silu(1) = 0.7310586
        assert!(close(gelu_erf(1.0), 0.841_344_7, 1e-6));
        assert!(close(gelu_tanh(1.0), 0.841_192, 1e-6));
        assert!(close(silu(1.0), 0.731_058_6, 1e-6));
        assert_eq!(relu(-2.0), 0.0);
        assert_eq!(gelu_erf(0.0), 0.0);
    }

    #[test]
    fn sinusoidal_matches_formula() {
        let pe = sinusoidal_positions(50, 16);
        assert_eq!(pe[[0, 0]], 0.0);
        assert_eq!(pe[[0, 1]], 1.0);
        // pos 1, i = 0: sin(1), cos(1)
        assert!(close(pe[[1, 0]], 0.841_470_96, 1e-7));
        assert!(close(pe[[1, 1]], 0.540_302_3, 1e-7));
        // pos 3, dims 4/5: angle = 3 / 10000^(4/16) = 3/10 = 0.3
        assert!(close(pe[[3, 4]], 0.295_520_2, 1e-7));
        assert!(close(pe[[3, 5]], 0.955_336_5, 1e-7));
        // pos 49, dims 14/15: angle = 49 / 10000^(14/16)
        let a = 49.0f64 / 10000f64.powf(14.0 / 16.0);
        assert!(close(pe[[49, 14]], a.sin() as f32, 1e-7));
        assert!(close(pe[[49, 15]], a.cos() as f32, 1e-7));
    }

    #[test]
    fn attention_rows_sum_to_one_and_causal_is_lower_triangular() {
        let n = 5;
        let q = Array2::from_shape_fn((n, 8), |(i, j)| ((i * 7 + j * 3) % 5) as f32 * 0.3 - 0.6);
        let k = Array2::from_shape_fn((n, 4), |(i, j)| ((i * 5 + j) % 7) as f32 * 0.2 - 0.5);
        let v = Array2::from_shape_fn((n, 4), |(i, j)| (i + j) as f32);
        for causal in [false, true] {
            let a = attention(&q, &k, &v, 4, 2, 2, causal);
            assert_eq!(a.probs.dim(), (4, n, n));
            for h in 0..4 {
                for i in 0..n {
                    let sum: f32 = a.probs.slice(s![h, i, ..]).sum();
                    assert!(close(sum, 1.0, 1e-6));
                    if causal {
                        for j in i + 1..n {
                            assert_eq!(a.probs[[h, i, j]], 0.0);
                        }
                    }
                }
            }
            // The first query of a causal model can only see itself.
            if causal {
                assert_eq!(a.probs[[0, 0, 0]], 1.0);
            }
        }
    }

    #[test]
    fn rope_rotates_pairs_and_keeps_norm() {
        let freqs = rope_freqs(4, 10000.0);
        assert_eq!(freqs, vec![1.0, 0.01]);
        let mut x = Array2::from_shape_fn((3, 4), |(_, j)| (j + 1) as f32);
        let before = row_norms(&x.view());
        let (c, s) = rope_cos_sin(&rope_angles(3, &freqs));
        apply_rope_half(&mut x, 1, 4, &c, &s);
        // position 0 is unchanged
        assert_eq!(x.row(0).to_vec(), vec![1.0, 2.0, 3.0, 4.0]);
        // position 1, pair (0, 2) rotated by 1 rad: (1cos1 - 3sin1, 3cos1 + 1sin1)
        assert!(close(x[[1, 0]], 1.0 * 1f32.cos() - 3.0 * 1f32.sin(), 1e-6));
        assert!(close(x[[1, 2]], 3.0 * 1f32.cos() + 1.0 * 1f32.sin(), 1e-6));
        for (a, b) in before.iter().zip(row_norms(&x.view())) {
            assert!(close(*a, b, 1e-5));
        }
    }

    #[test]
    fn softmax_top_k_matches_full_softmax() {
        let v: Vec<f32> = (0..1000)
            .map(|i| ((i * 7919) % 1009) as f32 * 0.01)
            .collect();
        let mut full = Array2::from_shape_vec((1, 1000), v.clone()).unwrap();
        softmax_rows(&mut full);
        let want = top_k(&full.row(0), 5);
        let got = softmax_top_k(&v, 5);
        assert_eq!(got.iter().map(|p| p.0).collect::<Vec<_>>(), want);
        for (i, p) in got {
            assert!(close(p, full[[0, i]], 1e-6));
        }
        assert_eq!(
            softmax_top_k(&[1.0, 3.0, 2.0], 10)
                .iter()
                .map(|p| p.0)
                .collect::<Vec<_>>(),
            vec![1, 2, 0]
        );
        assert!(softmax_top_k(&[1.0], 0).is_empty());
    }

    #[test]
    fn exp_nonpos_matches_exp() {
        let mut worst = 0f32;
        for i in 0..=86_000 {
            let x = -(i as f32) * 0.001;
            let (a, b) = (exp_nonpos(x), x.exp());
            worst = worst.max(((a - b) / b).abs());
        }
        assert!(worst < 1e-6, "relative error {worst}");
        assert_eq!(exp_nonpos(0.0), 1.0);
        assert!(exp_nonpos(-1000.0) < 1e-37);
    }

    #[test]
    fn top_k_orders_largest_first() {
        let v = arr1(&[0.1f32, 0.7, 0.05, 0.15]);
        assert_eq!(top_k(&v.view(), 2), vec![1, 3]);
        assert_eq!(top_k(&v.view(), 10), vec![1, 3, 0, 2]);
        assert!(top_k(&v.view(), 0).is_empty());
    }
}
