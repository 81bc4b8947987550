//! Vectorisable row kernels (softmax, GELU, LayerNorm, RMSNorm) and the two products of one attention head on the
//! pack-once kernel. Every loop here is branch-free over chunks of 8 lanes so the compiler emits SIMD code; the
//! functions in [`super::ops`] call these.

use super::packed::PackedMatrix;
use ndarray::{Array2, ArrayView2};

const LANES: usize = 8;

/// Sum of a slice in 8 independent lanes (vectorises; the order differs from a left-to-right sum).
#[inline(always)]
fn sum_lanes(v: &[f32], f: impl Fn(f32) -> f32) -> f32 {
    let mut acc = [0f32; LANES];
    let chunks = v.chunks_exact(LANES);
    let tail: f32 = chunks.remainder().iter().map(|&x| f(x)).sum();
    for c in chunks {
        for l in 0..LANES {
            acc[l] += f(c[l]);
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// `pub fn $name(args)` that runs `$body` compiled for AVX2 + FMA when the CPU has them, else as built.
macro_rules! wide {
    ($(#[$doc:meta])* pub fn $name:ident($($a:ident: $t:ty),*) $body:block) => {
        $(#[$doc])*
        pub fn $name($($a: $t),*) {
            #[inline(always)]
            fn body($($a: $t),*) $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx2,fma")]
                unsafe fn wide($($a: $t),*) {
                    body($($a),*)
                }
                if crate::numeric::cpu::avx2_fma() {
                    // SAFETY: the CPU has AVX2 and FMA (checked by `avx2_fma`).
                    return unsafe { wide($($a),*) };
                }
            }
            body($($a),*)
        }
    };
}

wide! {
/// Numerically stable softmax of one row in place, fused: one pass for the maximum, one that writes
/// `exp(x − max)` ([`exp_nonpos`], relative error < 1e-6) and sums it, one that scales by the reciprocal of the
/// sum. `-inf` entries (masked keys) get exactly 0; a row of only `-inf` becomes all 0.
pub fn softmax(row: &mut [f32]) {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if max == f32::NEG_INFINITY || max.is_nan() {
        if max == f32::NEG_INFINITY {
            row.fill(0.0);
        }
        return;
    }
    // Branch-free, so the loop vectorises: a masked key (−∞) gives exp(−∞) = exactly 0 from `exp_nonpos`.
    let mut acc = [0f32; LANES];
    let mut chunks = row.chunks_exact_mut(LANES);
    for c in &mut chunks {
        for l in 0..LANES {
            let e = exp_nonpos(c[l] - max);
            c[l] = e;
            acc[l] += e;
        }
    }
    let mut sum = 0f32;
    for x in chunks.into_remainder() {
        let e = exp_nonpos(*x - max);
        *x = e;
        sum += e;
    }
    let inv = 1.0 / (sum + acc.iter().sum::<f32>());
    row.iter_mut().for_each(|x| *x *= inv);
}
}

/// `erf(x)` in f32 with a rational approximation on `[-4, 4]` (odd polynomial of degree 13 over an even one of
/// degree 8; outside that range erf is ±1 to f32 precision). Branch-free, so loops over it vectorise.
/// Maximum absolute error against libm's `erff` over `[-6, 6]`: below 5e-7 (tested).
#[inline(always)]
pub fn erf(x: f32) -> f32 {
    let x = x.clamp(-4.0, 4.0);
    let x2 = x * x;
    let mut p = x2 * -2.726_142_3e-10 + 2.770_681_4e-8;
    p = x2 * p + -2.101_024e-6;
    p = x2 * p + -5.692_506_4e-5;
    p = x2 * p + -7.349_906_3e-4;
    p = x2 * p + -2.954_600_2e-3;
    p = x2 * p + -1.609_603_3e-2;
    p *= x;
    let mut q = x2 * -1.456_607_2e-5 + -2.133_740_6e-4;
    q = x2 * q + -1.682_827e-3;
    q = x2 * q + -7.373_329e-3;
    q = x2 * q + -1.426_474e-2;
    p / q
}

wide! {
/// Exact (erf-based) GELU `0.5·x·(1 + erf(x/√2))` with [`erf`]; absolute error below 2e-6 for |x| ≤ 6 against the
/// libm-based [`super::ops::gelu_erf`] (tested), in place over a slice.
pub fn gelu_erf_slice(v: &mut [f32]) {
    for x in v.iter_mut() {
        *x = 0.5 * *x * (1.0 + erf(*x * std::f32::consts::FRAC_1_SQRT_2));
    }
}
}

wide! {
/// LayerNorm of one row: `(x − mean)/√(var + eps)·γ + β` (biased variance, two passes), written into `out`.
pub fn layer_norm_row(x: &[f32], gamma: &[f32], beta: &[f32], eps: f32, out: &mut [f32]) {
    let d = x.len() as f32;
    let mean = sum_lanes(x, |v| v) / d;
    let var = sum_lanes(x, |v| (v - mean) * (v - mean)) / d;
    let inv = 1.0 / (var + eps).sqrt();
    for (((o, &v), &g), &b) in out.iter_mut().zip(x).zip(gamma).zip(beta) {
        *o = (v - mean) * inv * g + b;
    }
}
}

wide! {
/// RMSNorm of one row: `x/√(mean(x²) + eps)·γ`, written into `out`.
pub fn rms_norm_row(x: &[f32], gamma: &[f32], eps: f32, out: &mut [f32]) {
    let ms = sum_lanes(x, |v| v * v) / x.len() as f32;
    let inv = 1.0 / (ms + eps).sqrt();
    for ((o, &v), &g) in out.iter_mut().zip(x).zip(gamma) {
        *o = v * inv * g;
    }
}
}

/// Scores of one head, `q · kᵀ · scale`, `[n, m]`, on the register-tiled kernel (`k` packed once per call).
pub fn head_scores(q: &ArrayView2<f32>, k: &ArrayView2<f32>, scale: f32) -> Array2<f32> {
    let mut s = PackedMatrix::from_view(k).matmul_t(q);
    if scale != 1.0 {
        s.mapv_inplace(|x| x * scale);
    }
    s
}

/// Context of one head, `α · v`, `[n, head_dim]`, on the register-tiled kernel (`vᵀ` packed once per call).
pub fn head_context(pattern: &ArrayView2<f32>, v: &ArrayView2<f32>) -> Array2<f32> {
    PackedMatrix::from_view(&v.t()).matmul_t(pattern)
}

/// `exp(x)` for `x ≤ 0`, branch-free so loops over it vectorize: `2^n · p(r)` with `n = round(x·log₂e)`,
/// `r = x − n·ln 2` (Cody–Waite split) and a degree-6 Taylor polynomial on `|r| ≤ ln2/2`; relative error below 1e-6.
/// Inputs below −87 (−∞ included) give exactly 0 (`exp(−87) ≈ 1.6e-38`: nothing next to a sum that includes
/// `exp(0) = 1`).
#[inline(always)]
pub fn exp_nonpos(x: f32) -> f32 {
    const SHIFT: f32 = 12_582_912.0; // 1.5 · 2^23: adding it rounds to an integer held in the low mantissa bits
    // All ones when x ≥ −87, else 0: the result's bits are and-ed with it (a select without a branch).
    let keep = ((x >= -87.0) as u32).wrapping_neg();
    let x = x.clamp(-87.0, 0.0);
    let t = x * std::f32::consts::LOG2_E + SHIFT;
    let n = t - SHIFT;
    // ln 2 = 355/512 (exact in f32) − 2.1219444e-4.
    let r = x - n * (355.0 / 512.0) + n * 2.121_944_4e-4;
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0))))));
    let e = (t.to_bits() as i32 - 0x4B40_0000 + 127) << 23;
    f32::from_bits((p * f32::from_bits(e as u32)).to_bits() & keep)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::numeric::ops::gelu_erf;

    #[test]
    fn erf_and_gelu_errors_are_within_the_stated_bounds() {
        let (mut e_erf, mut e_gelu) = (0f32, 0f32);
        for i in -600_000..=600_000 {
            let x = i as f32 * 1e-5;
            e_erf = e_erf.max((erf(x) - libm::erff(x)).abs());
            let mut g = [x];
            gelu_erf_slice(&mut g);
            e_gelu = e_gelu.max((g[0] - gelu_erf(x)).abs());
        }
        assert!(e_erf < 5e-7, "erf error {e_erf}");
        assert!(e_gelu < 2e-6, "gelu error {e_gelu}");
        assert_eq!(erf(0.0), 0.0);
        assert_eq!(erf(10.0), erf(4.0));
    }

    #[test]
    fn exp_nonpos_is_within_its_bound_and_exactly_zero_below_minus_87() {
        let mut worst = 0f64;
        for i in 0..=870_000 {
            let x = -(i as f32) * 1e-4;
            let want = (x as f64).exp();
            worst = worst.max(((exp_nonpos(x) as f64) - want).abs() / want);
        }
        assert!(worst < 1e-6, "relative error {worst}");
        assert_eq!(exp_nonpos(0.0), 1.0);
        for x in [-87.01f32, -100.0, -1e30, f32::NEG_INFINITY] {
            assert_eq!(exp_nonpos(x).to_bits(), 0, "{x}");
        }
    }

    #[test]
    fn softmax_matches_the_textbook_formula_and_masks() {
        for n in [1usize, 7, 8, 9, 33, 100] {
            let mut row: Vec<f32> = (0..n).map(|i| ((i * 37) % 11) as f32 * 0.7 - 3.0).collect();
            if n > 3 {
                row[2] = f32::NEG_INFINITY;
            }
            let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let sum: f64 = row.iter().map(|&x| ((x - max) as f64).exp()).sum();
            let want: Vec<f64> = row
                .iter()
                .map(|&x| ((x - max) as f64).exp() / sum)
                .collect();
            softmax(&mut row);
            for (a, b) in row.iter().zip(&want) {
                assert!((*a as f64 - b).abs() < 1e-6, "{n}: {a} vs {b}");
            }
            if n > 3 {
                assert_eq!(row[2], 0.0);
            }
        }
        let mut masked = [f32::NEG_INFINITY; 10];
        softmax(&mut masked);
        assert_eq!(masked, [0.0; 10]);
        let mut big = [1000.0f32, 1000.0];
        softmax(&mut big);
        assert_eq!(big, [0.5, 0.5]);
    }

    #[test]
    fn norms_match_their_formulas() {
        let x: Vec<f32> = (0..37)
            .map(|i| (i as f32 * 0.37).sin() * 3.0 + 1.0)
            .collect();
        let g: Vec<f32> = (0..37).map(|i| 1.0 + i as f32 * 0.01).collect();
        let b: Vec<f32> = (0..37).map(|i| i as f32 * -0.02).collect();
        let mut out = vec![0f32; 37];
        layer_norm_row(&x, &g, &b, 1e-5, &mut out);
        let mean: f64 = x.iter().map(|&v| v as f64).sum::<f64>() / 37.0;
        let var: f64 = x.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / 37.0;
        for i in 0..37 {
            let want = (x[i] as f64 - mean) / (var + 1e-5).sqrt() * g[i] as f64 + b[i] as f64;
            assert!((out[i] as f64 - want).abs() < 1e-5, "{i}");
        }
        rms_norm_row(&x, &g, 1e-6, &mut out);
        let ms: f64 = x.iter().map(|&v| (v as f64).powi(2)).sum::<f64>() / 37.0;
        for i in 0..37 {
            let want = x[i] as f64 / (ms + 1e-6).sqrt() * g[i] as f64;
            assert!((out[i] as f64 - want).abs() < 1e-5, "{i}");
        }
    }

    #[test]
    fn head_products_equal_dot() {
        let q = Array2::from_shape_fn((9, 32), |(i, j)| ((i * 5 + j * 3) % 7) as f32 * 0.1 - 0.3);
        let k = Array2::from_shape_fn((11, 32), |(i, j)| ((i * 3 + j) % 5) as f32 * 0.2 - 0.4);
        let v = Array2::from_shape_fn((11, 32), |(i, j)| (i + 2 * j) as f32 * 0.01);
        let s = head_scores(&q.view(), &k.view(), 0.5);
        let want = q.dot(&k.t()) * 0.5;
        assert!(s.iter().zip(want.iter()).all(|(a, b)| (a - b).abs() < 1e-5));
        let p = Array2::from_shape_fn((9, 11), |(i, j)| ((i + j) % 3) as f32 * 0.25);
        let c = head_context(&p.view(), &v.view());
        let want = p.dot(&v);
        assert_eq!(c.dim(), (9, 32));
        assert!(c.iter().zip(want.iter()).all(|(a, b)| (a - b).abs() < 1e-5));
    }
}
