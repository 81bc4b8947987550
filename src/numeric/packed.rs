//! A weight matrix packed once, at load time, for `x · Wᵀ`.
//!
//! Why: a general GEMM (matrixmultiply, and MKL inside PyTorch) copies ("packs") its operands into cache-friendly
//! panels on every call. For a decoder run on a few dozen tokens that copy of the weights costs about as much as the
//! arithmetic (SmolLM2: 540 MB of f32 weights per forward pass). Packing the weights once at load removes it.
//!
//! Layout: the `m` output rows are cut into panels of [`NR`] = 16 rows (the last one zero-padded); a panel is stored
//! `[k][16]`, so step `kk` of the inner loop reads the 16 weights `W[p·16 .. p·16+16, kk]` as two contiguous 8-float
//! vectors. The kernel keeps a tile of up to [`MR`] tokens × 16 outputs in registers and, for each `kk`, broadcasts
//! `x[t, kk]` and multiply-adds it into the tile. Panels are split across threads (rayon). On x86-64 with AVX2 and FMA
//! the kernel uses them (checked at run time); elsewhere the same loop in portable Rust.

use ndarray::{Array2, ArrayView2};
use rayon::prelude::*;

/// Output rows per panel.
pub const NR: usize = 16;
/// Tokens per register tile.
pub const MR: usize = 6;

/// `W` `[m, k]` (nn.Linear layout) packed in panels of [`NR`] rows.
#[derive(Clone)]
pub struct PackedMatrix {
    m: usize,
    k: usize,
    panels: Vec<f32>,
}

impl std::fmt::Debug for PackedMatrix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PackedMatrix [{}, {}]", self.m, self.k)
    }
}

/// Below this many values a matrix is packed on one thread (spreading it costs more than it saves).
const SMALL_PACK: usize = 1 << 16;

impl PackedMatrix {
    pub fn new(w: &Array2<f32>) -> Self {
        Self::from_view(&w.view())
    }

    /// Pack any `[m, k]` view (e.g. a memory-mapped or transposed weight). The loops follow the view's memory
    /// order: row by row for a row-major view, column by column (16 contiguous values into 16 contiguous panel slots)
    /// for a transposed one such as an attention head's `vᵀ`. Small matrices (an attention head's keys or values)
    /// are packed on the calling thread.
    pub fn from_view(w: &ArrayView2<f32>) -> Self {
        let (m, k) = w.dim();
        let n_panels = m.div_ceil(NR);
        let mut panels = vec![0f32; n_panels * k * NR];
        let by_columns = w.strides()[0] == 1 && m > 1;
        let pack = |(p, panel): (usize, &mut [f32])| {
            let rows = NR.min(m.saturating_sub(p * NR));
            if by_columns {
                for kk in 0..k {
                    let col = w.slice(ndarray::s![p * NR..p * NR + rows, kk]);
                    for (j, v) in col.iter().enumerate() {
                        panel[kk * NR + j] = *v;
                    }
                }
            } else {
                // The panel's rows as slices (contiguous views), read in step: the writes stay sequential.
                let src: Vec<&[f32]> = (0..rows)
                    .filter_map(|j| w.row(p * NR + j).to_slice())
                    .collect();
                if src.len() == rows {
                    super::pack::pack_panel(&src, k, panel);
                } else {
                    for j in 0..rows {
                        for (kk, v) in w.row(p * NR + j).iter().enumerate() {
                            panel[kk * NR + j] = *v;
                        }
                    }
                }
            }
        };
        let chunk = (k * NR).max(1);
        if m * k < SMALL_PACK {
            panels.chunks_mut(chunk).enumerate().for_each(pack);
        } else {
            panels.par_chunks_mut(chunk).enumerate().for_each(pack);
        }
        PackedMatrix { m, k, panels }
    }

    /// `[m, k]`.
    pub fn dim(&self) -> (usize, usize) {
        (self.m, self.k)
    }

    /// Row `i` of `W` (`[k]`), unpacked; `None` out of range.
    pub fn row(&self, i: usize) -> Option<ndarray::Array1<f32>> {
        if i >= self.m {
            return None;
        }
        let (p, j) = (i / NR, i % NR);
        let base = p * self.k * NR;
        Some(
            (0..self.k)
                .map(|kk| self.panels[base + kk * NR + j])
                .collect(),
        )
    }

    /// The weights back as `[m, k]` f32 (for explanations; the forward pass never needs it).
    pub fn to_f32(&self) -> Array2<f32> {
        Array2::from_shape_fn((self.m, self.k), |(i, kk)| {
            self.panels[(i / NR) * self.k * NR + kk * NR + i % NR]
        })
    }

    /// Bytes the packed panels occupy.
    pub fn n_bytes(&self) -> usize {
        self.panels.len() * 4
    }

    /// `x · Wᵀ`, `[n, m]`. Panics if `x` does not have `k` columns (a programming error: shapes are checked at load).
    pub fn matmul_t(&self, x: &ArrayView2<f32>) -> Array2<f32> {
        let x = match crate::numeric::input::rows_for("PackedMatrix::matmul_t", x, (self.m, self.k))
        {
            Ok(x) => x,
            Err(empty) => return empty,
        };
        let (n, k, m) = (x.nrows(), self.k, self.m);
        let xs = x.as_slice().expect("standard layout is contiguous");
        let n_panels = m.div_ceil(NR);
        let threads = rayon::current_num_threads().max(1);
        // A few groups of panels per thread; each group fills its own [n, width] block.
        let per_group = n_panels.div_ceil(threads * 2).max(1);
        let groups: Vec<(usize, Vec<f32>)> = self
            .panels
            .par_chunks(per_group * k * NR)
            .enumerate()
            .map(|(g, panels)| {
                let np = panels.len() / (k * NR).max(1);
                let width = np * NR;
                let mut out = vec![0f32; n * width];
                kernel_dispatch(xs, n, k, panels, np, &mut out, width);
                (g * per_group * NR, out)
            })
            .collect();
        let mut y = Array2::<f32>::zeros((n, m));
        for (col0, out) in groups {
            let width = out.len() / n;
            for t in 0..n {
                let take = width.min(m - col0);
                let dst = &mut y.row_mut(t).into_slice().expect("row of a standard array")
                    [col0..col0 + take];
                dst.copy_from_slice(&out[t * width..t * width + take]);
            }
        }
        y
    }
}

pub(crate) fn kernel_dispatch(
    xs: &[f32],
    n: usize,
    k: usize,
    panels: &[f32],
    np: usize,
    out: &mut [f32],
    width: usize,
) {
    #[cfg(target_arch = "x86_64")]
    {
        if crate::numeric::cpu::avx2_fma() {
            // SAFETY: the CPU supports AVX2 and FMA (checked just above).
            unsafe { avx2::run(xs, n, k, panels, np, out, width) };
            return;
        }
    }
    portable::run(xs, n, k, panels, np, out, width)
}

mod portable {
    use super::{MR, NR};

    pub fn run(
        xs: &[f32],
        n: usize,
        k: usize,
        panels: &[f32],
        np: usize,
        out: &mut [f32],
        width: usize,
    ) {
        for p in 0..np {
            let panel = &panels[p * k * NR..(p + 1) * k * NR];
            let mut t0 = 0;
            while t0 < n {
                let rows = MR.min(n - t0);
                let mut acc = [[0f32; NR]; MR];
                for kk in 0..k {
                    let w = &panel[kk * NR..(kk + 1) * NR];
                    for (t, a) in acc.iter_mut().enumerate().take(rows) {
                        let xv = xs[(t0 + t) * k + kk];
                        for j in 0..NR {
                            a[j] += xv * w[j];
                        }
                    }
                }
                for (t, a) in acc.iter().enumerate().take(rows) {
                    let o = (t0 + t) * width + p * NR;
                    out[o..o + NR].copy_from_slice(a);
                }
                t0 += rows;
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::{MR, NR};
    use std::arch::x86_64::*;

    #[target_feature(enable = "avx2,fma")]
    pub fn run(
        xs: &[f32],
        n: usize,
        k: usize,
        panels: &[f32],
        np: usize,
        out: &mut [f32],
        width: usize,
    ) {
        for p in 0..np {
            let panel = &panels[p * k * NR..(p + 1) * k * NR];
            let mut t0 = 0;
            while t0 < n {
                let rows = MR.min(n - t0);
                let x = &xs[t0 * k..(t0 + rows) * k];
                let o = &mut out[t0 * width + p * NR..];
                match rows {
                    6 => tile::<6>(x, k, panel, o, width),
                    5 => tile::<5>(x, k, panel, o, width),
                    4 => tile::<4>(x, k, panel, o, width),
                    3 => tile::<3>(x, k, panel, o, width),
                    2 => tile::<2>(x, k, panel, o, width),
                    _ => tile::<1>(x, k, panel, o, width),
                }
                t0 += rows;
            }
        }
    }

    /// `R` tokens × 16 outputs: `out[t·width + j] = Σ_kk x[t·k + kk] · panel[kk·16 + j]`.
    #[target_feature(enable = "avx2,fma")]
    fn tile<const R: usize>(x: &[f32], k: usize, panel: &[f32], out: &mut [f32], width: usize) {
        assert!(x.len() >= R * k && panel.len() >= k * NR && out.len() >= (R - 1) * width + NR);
        let mut lo = [_mm256_setzero_ps(); R];
        let mut hi = [_mm256_setzero_ps(); R];
        let wp = panel.as_ptr();
        let xp = x.as_ptr();
        for kk in 0..k {
            // SAFETY: kk < k, so kk·16 + 16 ≤ panel.len() and t·k + kk < R·k ≤ x.len() (asserted above).
            unsafe {
                let w0 = _mm256_loadu_ps(wp.add(kk * NR));
                let w1 = _mm256_loadu_ps(wp.add(kk * NR + 8));
                for t in 0..R {
                    let xv = _mm256_broadcast_ss(&*xp.add(t * k + kk));
                    lo[t] = _mm256_fmadd_ps(xv, w0, lo[t]);
                    hi[t] = _mm256_fmadd_ps(xv, w1, hi[t]);
                }
            }
        }
        for t in 0..R {
            let o = &mut out[t * width..t * width + NR];
            // SAFETY: `o` has exactly 16 floats.
            unsafe {
                _mm256_storeu_ps(o.as_mut_ptr(), lo[t]);
                _mm256_storeu_ps(o.as_mut_ptr().add(8), hi[t]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_unpacks_what_was_packed() {
        let w = Array2::from_shape_fn((37, 5), |(i, j)| (i * 10 + j) as f32);
        let p = PackedMatrix::new(&w);
        for i in [0, 15, 16, 36] {
            assert_eq!(p.row(i).unwrap(), w.row(i));
        }
        assert!(p.row(37).is_none());
    }

    #[test]
    fn a_transposed_view_packs_like_its_copy() {
        // Column-major views take the column-by-column loop; small and large ones (threaded) alike.
        for (m, k) in [(37, 5), (1, 9), (300, 400)] {
            let stored = Array2::from_shape_fn((k, m), |(i, j)| (i * 1000 + j) as f32);
            let view = stored.t();
            let p = PackedMatrix::from_view(&view);
            let q = PackedMatrix::new(&view.to_owned());
            assert_eq!(p.panels, q.panels, "{m}×{k}");
        }
    }

    #[test]
    fn packed_matmul_equals_dot() {
        for (n, k, m) in [
            (1, 5, 3),
            (3, 576, 37),
            (7, 64, 300),
            (17, 40, 513),
            (40, 9, 16),
            (6, 8, 33),
            (13, 3, 1),
        ] {
            let x = Array2::from_shape_fn((n, k), |(i, j)| {
                ((i * 31 + j * 17) % 23) as f32 * 0.05 - 0.5
            });
            let w =
                Array2::from_shape_fn((m, k), |(i, j)| ((i * 7 + j * 13) % 19) as f32 * 0.03 - 0.2);
            let want = x.dot(&w.t());
            let packed = PackedMatrix::new(&w);
            assert_eq!(packed.dim(), (m, k));
            let got = packed.matmul_t(&x.view());
            assert_eq!(got.dim(), (n, m));
            for (a, b) in got.iter().zip(want.iter()) {
                assert!(
                    (a - b).abs() <= 1e-4 * (1.0 + b.abs()),
                    "{n}×{k}×{m}: {a} vs {b}"
                );
            }
            let mut out = vec![0f32; n * m.div_ceil(NR) * NR];
            portable::run(
                x.as_slice().unwrap(),
                n,
                k,
                &packed.panels,
                m.div_ceil(NR),
                &mut out,
                m.div_ceil(NR) * NR,
            );
            for t in 0..n {
                for j in 0..m {
                    let (a, b) = (out[t * m.div_ceil(NR) * NR + j], want[[t, j]]);
                    assert!(
                        (a - b).abs() <= 1e-4 * (1.0 + b.abs()),
                        "portable {n}×{k}×{m}: {a} vs {b}"
                    );
                }
            }
        }
    }
}
