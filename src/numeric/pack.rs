//! Packing up to [`NR`] rows of a matrix into one panel of the layout of [`super::packed`]: `[k][NR]`, so that
//! `panel[kk · NR + j] = rows[j][kk]` (rows missing from a short last panel are left as they are: the caller zeroes
//! them). This is a transposition; with AVX it runs 8 × 8 blocks in registers (unpack, shuffle, lane permute) instead
//! of one scalar store per value, which made packing cost as much as the product for a few dozen tokens.

use super::packed::NR;

/// `panel[kk · NR + j] = rows[j][kk]` for `j < rows.len() ≤ NR`, `kk < k` (every row holds at least `k` values).
pub fn pack_panel(rows: &[&[f32]], k: usize, panel: &mut [f32]) {
    assert!(rows.len() <= NR && panel.len() >= k * NR && rows.iter().all(|r| r.len() >= k));
    let mut done = 0;
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx") {
        // SAFETY: AVX is present; the lengths were checked above.
        unsafe { done = avx::pack_eights(rows, k, panel) };
    }
    for (j, r) in rows.iter().enumerate().skip(done) {
        for (kk, v) in r[..k].iter().enumerate() {
            panel[kk * NR + j] = *v;
        }
    }
    // Whole groups of eight rows are done up to `k` rounded down to 8; the columns after it, scalar.
    if done > 0 {
        for kk in k / 8 * 8..k {
            for (j, r) in rows.iter().enumerate().take(done) {
                panel[kk * NR + j] = r[kk];
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx {
    use super::NR;
    use std::arch::x86_64::*;

    /// Packs the first `8 · ⌊rows / 8⌋` rows over the first `8 · ⌊k / 8⌋` columns; returns how many rows that is.
    #[target_feature(enable = "avx")]
    pub(super) fn pack_eights(rows: &[&[f32]], k: usize, panel: &mut [f32]) -> usize {
        let groups = rows.len() / 8;
        for g in 0..groups {
            let r = &rows[8 * g..8 * g + 8];
            for c in 0..k / 8 {
                // SAFETY: every row holds ≥ k ≥ 8c + 8 values; the panel holds k · NR ≥ (8c + 8) · NR values.
                unsafe {
                    let v: [__m256; 8] =
                        std::array::from_fn(|j| _mm256_loadu_ps(r[j].as_ptr().add(8 * c)));
                    let t = transpose(v);
                    for (i, col) in t.into_iter().enumerate() {
                        let at = (8 * c + i) * NR + 8 * g;
                        _mm256_storeu_ps(panel.as_mut_ptr().add(at), col);
                    }
                }
            }
        }
        groups * 8
    }

    /// The columns of eight rows of eight: `out[i][j] = v[j][i]`.
    #[target_feature(enable = "avx")]
    #[inline]
    fn transpose(v: [__m256; 8]) -> [__m256; 8] {
        let lo = |a, b| _mm256_unpacklo_ps(a, b);
        let hi = |a, b| _mm256_unpackhi_ps(a, b);
        let t = [
            lo(v[0], v[1]),
            hi(v[0], v[1]),
            lo(v[2], v[3]),
            hi(v[2], v[3]),
            lo(v[4], v[5]),
            hi(v[4], v[5]),
            lo(v[6], v[7]),
            hi(v[6], v[7]),
        ];
        let s = [
            _mm256_shuffle_ps::<0x44>(t[0], t[2]),
            _mm256_shuffle_ps::<0xEE>(t[0], t[2]),
            _mm256_shuffle_ps::<0x44>(t[1], t[3]),
            _mm256_shuffle_ps::<0xEE>(t[1], t[3]),
            _mm256_shuffle_ps::<0x44>(t[4], t[6]),
            _mm256_shuffle_ps::<0xEE>(t[4], t[6]),
            _mm256_shuffle_ps::<0x44>(t[5], t[7]),
            _mm256_shuffle_ps::<0xEE>(t[5], t[7]),
        ];
        std::array::from_fn(|i| {
            let (a, b) = (s[i % 4], s[i % 4 + 4]);
            if i < 4 {
                _mm256_permute2f128_ps::<0x20>(a, b)
            } else {
                _mm256_permute2f128_ps::<0x31>(a, b)
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packing_is_the_transposition_for_every_row_count_and_width() {
        for rows in [1usize, 7, 8, 9, 15, 16] {
            for k in [1usize, 7, 8, 13, 64, 67] {
                let data: Vec<Vec<f32>> = (0..rows)
                    .map(|j| (0..k + 2).map(|kk| (j * 1000 + kk) as f32).collect())
                    .collect();
                let refs: Vec<&[f32]> = data.iter().map(|r| r.as_slice()).collect();
                let mut panel = vec![-1f32; k * NR];
                pack_panel(&refs, k, &mut panel);
                for kk in 0..k {
                    for j in 0..NR {
                        let want = if j < rows {
                            (j * 1000 + kk) as f32
                        } else {
                            -1.0
                        };
                        assert_eq!(panel[kk * NR + j], want, "{rows} rows, k {k}: ({kk}, {j})");
                    }
                }
            }
        }
    }
}
