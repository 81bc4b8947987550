//! Fused decode-and-dot for one token (the decoding step of generation): each 32-element block of a weight row is
//! decoded into four registers by the same functions the decoders of [`super::simd`] store from (so the weights
//! multiplied are the same bits as the dequantized f32), and multiplied into the token's values at once: no buffer of
//! decoded weights, and the quantized bytes are read once.

use super::simd::{has_avx2_f16c, rows_q4_0, rows_q4_1, rows_q5_0, rows_q5_1, rows_q8_0};
use super::types::GgmlType;

/// `out[r] = Σ_i decode(row r)[i] · x[i]` for the `out.len()` rows of `data` (`row_bytes` each, `x.len()` elements
/// each). `false` (nothing written) if `ty` has no fused kernel or the CPU lacks AVX2/FMA/F16C.
pub fn dot_rows(ty: GgmlType, data: &[u8], row_bytes: usize, x: &[f32], out: &mut [f32]) -> bool {
    use GgmlType::*;
    let ok = has_avx2_f16c() && std::arch::is_x86_feature_detected!("fma");
    if !ok || ty.block_size() != 32 || data.len() < out.len() * row_bytes {
        return false;
    }
    let ts = ty.type_size();
    if row_bytes / ts * 32 != x.len() {
        return false;
    }
    // SAFETY: AVX2, FMA and F16C are present (checked above); every row holds x.len() / 32 whole blocks.
    unsafe {
        match ty {
            Q4_0 => rows_q4_0(data, row_bytes, ts, x, out),
            Q4_1 => rows_q4_1(data, row_bytes, ts, x, out),
            Q5_0 => rows_q5_0(data, row_bytes, ts, x, out),
            Q5_1 => rows_q5_1(data, row_bytes, ts, x, out),
            Q8_0 => rows_q8_0(data, row_bytes, ts, x, out),
            _ => return false,
        }
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
                let x: Vec<f32> = (0..k)
                    .map(|j| ((j * 17) % 23) as f32 * 0.05 - 0.5)
                    .collect();
                let mut got = vec![f32::NAN; m];
                assert!(dot_rows(ty, &data, row_bytes, &x, &mut got), "{ty}");
                let mut w = vec![0f32; m * k];
                decode_portable(ty, &data, &mut w).unwrap();
                for (r, g) in got.iter().enumerate() {
                    let row = &w[r * k..(r + 1) * k];
                    let want: f64 = row.iter().zip(&x).map(|(a, b)| *a as f64 * *b as f64).sum();
                    let mag: f64 = row
                        .iter()
                        .zip(&x)
                        .map(|(a, b)| (*a as f64 * *b as f64).abs())
                        .sum();
                    assert!(
                        (*g as f64 - want).abs() <= 1e-5 * mag.max(1e-12),
                        "{ty} {m}×{k} row {r}: {g} vs {want}"
                    );
                }
            }
        }
        // A type without a fused kernel, or a length that does not fit, writes nothing.
        let mut out = [7f32; 1];
        assert!(!dot_rows(Q4_K, &[0; 144], 144, &[0.0; 256], &mut out));
        assert!(!dot_rows(Q8_0, &[0; 34], 34, &[0.0; 64], &mut out));
        assert_eq!(out, [7.0]);
    }
}
