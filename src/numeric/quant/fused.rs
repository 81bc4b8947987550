//! Fused decode-and-dot for few tokens (the decoding step of generation, short prompts): each 32-element block of a
//! weight row is decoded into four registers by the same functions the decoders of [`super::simd`] store from (so the
//! weights multiplied are the same bits as the dequantized f32), and multiplied into the values of up to four tokens at
//! once: no buffer of decoded weights, and the quantized bytes are read once per four tokens.

use super::simd::{FewTokens, has_avx2_f16c};
use super::simd::{rows_t_q4_0, rows_t_q4_1, rows_t_q5_0, rows_t_q5_1, rows_t_q8_0};
use super::types::GgmlType;

/// Whether `ty` has a fused kernel here, the CPU what it needs, and rows of `row_bytes` hold `k` values.
fn fits(ty: GgmlType, row_bytes: usize, k: usize) -> bool {
    let ok = has_avx2_f16c() && std::arch::is_x86_feature_detected!("fma");
    use GgmlType::*;
    ok && matches!(ty, Q4_0 | Q4_1 | Q5_0 | Q5_1 | Q8_0) && row_bytes / ty.type_size() * 32 == k
}

/// Few tokens at once: `out[t · width + r]` = row `r` of `data` (its `data.len() / row_bytes` rows) decoded · token
/// `t` of `xs` (`n` tokens of `k` values); each block is decoded once for up to four tokens. `false` (nothing
/// written) where [`dot_rows`] would be.
pub fn dot_rows_tokens(
    ty: GgmlType,
    data: &[u8],
    row_bytes: usize,
    (xs, n, k): (&[f32], usize, usize),
    out: &mut [f32],
    width: usize,
) -> bool {
    use GgmlType::*;
    let rows = data.len() / row_bytes.max(1);
    let fit = xs.len() >= n * k && rows <= width && out.len() >= n.saturating_sub(1) * width + rows;
    if !fits(ty, row_bytes, k) || !fit {
        return false;
    }
    let ts = ty.type_size();
    let shape = FewTokens {
        rows,
        row_bytes,
        ts,
        k,
        width,
    };
    let mut t0 = 0;
    while t0 < n {
        let t = (n - t0).min(4);
        let (x, o) = (&xs[t0 * k..], &mut out[t0 * width..]);
        macro_rules! tokens {
            ($f:ident) => {
                // SAFETY: AVX2, FMA and F16C are present (`fits`); the kernel checks the lengths.
                unsafe {
                    match t {
                        1 => $f::<1, 4>(data, shape, x, o),
                        2 => $f::<2, 2>(data, shape, x, o),
                        3 => $f::<3, 2>(data, shape, x, o),
                        _ => $f::<4, 2>(data, shape, x, o),
                    }
                }
            };
        }
        match ty {
            Q4_0 => tokens!(rows_t_q4_0),
            Q4_1 => tokens!(rows_t_q4_1),
            Q5_0 => tokens!(rows_t_q5_0),
            Q5_1 => tokens!(rows_t_q5_1),
            _ => tokens!(rows_t_q8_0),
        }
        t0 += t;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::numeric::quant::decode::tests::random_blocks;
    use crate::numeric::quant::decode_portable;

    #[test]
    fn fused_dot_equals_dequantize_then_dot() {
        use GgmlType::*;
        for ty in [Q4_0, Q4_1, Q5_0, Q5_1, Q8_0] {
            for (m, k) in [(1, 32), (3, 64), (17, 576), (5, 1536)] {
                let row_bytes = k / 32 * ty.type_size();
                let data = random_blocks(ty, m * k / 32, (m * 7 + k) as u64);
                let mut w = vec![0f32; m * k];
                decode_portable(ty, &data, &mut w).unwrap();
                // 1 to 7 tokens: one, two and three register tiles, with and without a remainder.
                for n in 1..=7 {
                    let xs: Vec<f32> = (0..n * k)
                        .map(|j| ((j * 17 + n) % 23) as f32 * 0.05 - 0.5)
                        .collect();
                    let width = m + 3;
                    let mut got = vec![f32::NAN; n * width];
                    assert!(dot_rows_tokens(
                        ty,
                        &data,
                        row_bytes,
                        (&xs, n, k),
                        &mut got,
                        width
                    ));
                    for t in 0..n {
                        let x = &xs[t * k..(t + 1) * k];
                        for r in 0..m {
                            let row = &w[r * k..(r + 1) * k];
                            let want: f64 =
                                row.iter().zip(x).map(|(a, b)| *a as f64 * *b as f64).sum();
                            let mag: f64 = row
                                .iter()
                                .zip(x)
                                .map(|(a, b)| (*a as f64 * *b as f64).abs())
                                .sum();
                            let g = got[t * width + r] as f64;
                            assert!(
                                (g - want).abs() <= 1e-5 * mag.max(1e-12),
                                "{ty} {m}×{k} token {t} of {n}, row {r}: {g} vs {want}"
                            );
                        }
                        // The padding between rows of the output is not written.
                        assert!(
                            got[t * width + m..t * width + width]
                                .iter()
                                .all(|v| v.is_nan())
                        );
                    }
                }
            }
        }
        // A type without a fused kernel, or a length that does not fit, writes nothing.
        let mut out = [7f32; 2];
        assert!(!dot_rows_tokens(
            Q4_K,
            &[0; 144],
            144,
            (&[0.0; 256], 1, 256),
            &mut out,
            1
        ));
        assert!(!dot_rows_tokens(
            Q8_0,
            &[0; 34],
            34,
            (&[0.0; 64], 1, 64),
            &mut out,
            1
        ));
        assert!(!dot_rows_tokens(
            Q8_0,
            &[0; 68],
            34,
            (&[0.0; 32], 1, 32),
            &mut out[..1],
            1
        ));
        assert_eq!(out, [7.0, 7.0]);
    }
}
