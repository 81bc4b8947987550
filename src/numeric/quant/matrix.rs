//! A weight matrix kept in its file's block format, multiplied with blocks decoded inside the kernel.
//!
//! `QuantMatrix` holds the rows of `W` `[m, k]` (nn.Linear layout) as the file stores them — GGML blocks along each
//! row — and shares the bytes with their owner (the memory-mapped file, or an owned buffer): no f32 copy of the
//! weights exists. `matmul_t(x)` = `x · Wᵀ` decodes blocks with [`super::decode`] (the loader's decoder: the floats
//! multiplied are the same bits as the dequantized f32 weights) into a small buffer that stays in the L1/L2 cache and
//! multiplies them there:
//! - few tokens (< [`PANEL_MIN_TOKENS`]): each group of 4 rows is decoded once and dotted with every token (a
//!   register tile of up to 3 tokens × 4 rows, AVX2/FMA); the run is bound by reading the quantized bytes once;
//! - more tokens: 16 rows are decoded into a panel in the layout of [`crate::numeric::packed`], and the pack-once
//!   kernel runs on it for every token, so decoding is amortised over the tokens.
//!
//! Rows are split across threads (rayon). The order of the additions differs from a dequantize-then-multiply, so
//! results agree with it to rounding (tested), not bit for bit.

use super::decode::{DequantError, decode};
use super::types::GgmlType;
use crate::numeric::packed::{self, NR};
use ndarray::{Array2, ArrayView2};
use rayon::prelude::*;
use std::ops::Range;
use std::sync::Arc;

/// From this many tokens on, rows are decoded into packed panels (see the module docs).
pub const PANEL_MIN_TOKENS: usize = 8;
/// Below this many weights a one-token product runs on the calling thread (a parallel region costs more).
const SERIAL_WEIGHTS: usize = 1 << 16;
/// Rows decoded together on the few-token path.
const ROWS: usize = 4;
/// Tokens per register tile on the few-token path.
const TOKENS: usize = 3;

/// Bytes shared with their owner: a memory-mapped file or an owned buffer.
#[derive(Clone)]
pub struct SharedBytes {
    owner: Arc<dyn AsRef<[u8]> + Send + Sync>,
    range: Range<usize>,
}

impl std::fmt::Debug for SharedBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SharedBytes [{}..{}]", self.range.start, self.range.end)
    }
}

impl SharedBytes {
    /// `range` of `owner`'s bytes, or `None` if it lies outside them.
    pub fn new(owner: Arc<dyn AsRef<[u8]> + Send + Sync>, range: Range<usize>) -> Option<Self> {
        let len = owner.as_ref().as_ref().len();
        (range.start <= range.end && range.end <= len).then_some(SharedBytes { owner, range })
    }

    /// Owned bytes.
    pub fn from_vec(v: Vec<u8>) -> Self {
        let range = 0..v.len();
        SharedBytes {
            owner: Arc::new(v),
            range,
        }
    }

    pub fn bytes(&self) -> &[u8] {
        &self.owner.as_ref().as_ref()[self.range.clone()]
    }
}

/// `W` `[m, k]` in a GGML block format (see the module docs).
#[derive(Clone)]
pub struct QuantMatrix {
    ty: GgmlType,
    m: usize,
    k: usize,
    row_bytes: usize,
    data: SharedBytes,
}

impl std::fmt::Debug for QuantMatrix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "QuantMatrix {} [{}, {}]", self.ty, self.m, self.k)
    }
}

impl QuantMatrix {
    /// `m` rows of `k` elements of type `ty`, row after row in `data`. Errors if the type cannot be decoded, `k` is
    /// not a whole number of blocks, or `data` does not hold exactly `m` such rows.
    pub fn new(ty: GgmlType, m: usize, k: usize, data: SharedBytes) -> Result<Self, DequantError> {
        if !ty.can_dequantize() {
            return Err(DequantError::Unsupported(ty));
        }
        let len = data.bytes().len();
        let size = DequantError::Size {
            bytes: len,
            elements: m.saturating_mul(k),
        };
        if !k.is_multiple_of(ty.block_size()) {
            return Err(size);
        }
        let row_bytes = k / ty.block_size() * ty.type_size();
        if m.checked_mul(row_bytes) != Some(len) {
            return Err(size);
        }
        Ok(QuantMatrix {
            ty,
            m,
            k,
            row_bytes,
            data,
        })
    }

    /// `[m, k]`.
    pub fn dim(&self) -> (usize, usize) {
        (self.m, self.k)
    }

    pub fn ty(&self) -> GgmlType {
        self.ty
    }

    /// Bytes held (shared with the file when mapped).
    pub fn n_bytes(&self) -> usize {
        self.m * self.row_bytes
    }

    /// The raw bytes of row `i` (panics if `i ≥ m`).
    pub fn row_bytes(&self, i: usize) -> &[u8] {
        &self.data.bytes()[i * self.row_bytes..(i + 1) * self.row_bytes]
    }

    /// Decode row `i` into `out` (`k` floats; panics on other lengths or `i ≥ m`).
    pub fn decode_row(&self, i: usize, out: &mut [f32]) {
        assert_eq!(out.len(), self.k, "QuantMatrix::decode_row: wrong length");
        // `new` checked that the type decodes and that every row holds k / block_size whole blocks.
        let _ = decode(self.ty, self.row_bytes(i), out);
    }

    /// Rows `rows` decoded, `[rows.len(), k]` (panics on an index ≥ m).
    pub fn rows_f32(&self, rows: &[usize]) -> Array2<f32> {
        let mut out = Array2::<f32>::zeros((rows.len(), self.k));
        for (&r, mut o) in rows.iter().zip(out.rows_mut()) {
            if let Some(o) = o.as_slice_mut() {
                self.decode_row(r, o);
            }
        }
        out
    }

    /// The whole matrix as f32 (for explanations and tests; the forward pass never needs it).
    pub fn to_f32(&self) -> Array2<f32> {
        self.rows_f32(&(0..self.m).collect::<Vec<_>>())
    }

    /// A matrix made of the rows `order` of this one (an owned copy of their bytes), e.g. to un-permute Q/K heads.
    /// Panics on an index ≥ m.
    pub fn select_rows(&self, order: &[usize]) -> QuantMatrix {
        let mut v = Vec::with_capacity(order.len() * self.row_bytes);
        for &r in order {
            v.extend_from_slice(self.row_bytes(r));
        }
        QuantMatrix {
            ty: self.ty,
            m: order.len(),
            k: self.k,
            row_bytes: self.row_bytes,
            data: SharedBytes::from_vec(v),
        }
    }

    /// `x · Wᵀ`, `[n, m]`. Panics if `x` does not have `k` columns (shapes are checked at load).
    pub fn matmul_t(&self, x: &ArrayView2<f32>) -> Array2<f32> {
        let x = match crate::numeric::input::rows_for("QuantMatrix::matmul_t", x, (self.m, self.k))
        {
            Ok(x) => x,
            Err(empty) => return empty,
        };
        let (n, m) = (x.nrows(), self.m);
        let xs = x.as_slice().expect("standard layout is contiguous");
        if n == 1 {
            return self.matvec(xs);
        }
        let threads = rayon::current_num_threads().max(1);
        // Groups of whole panels (16 rows), a few per thread; each group fills its own [n, width] block.
        let n_panels = m.div_ceil(NR);
        let per_group = n_panels.div_ceil(threads * 4).max(1) * NR;
        let groups: Vec<(usize, Vec<f32>)> = (0..m.div_ceil(per_group))
            .into_par_iter()
            .map(|g| {
                let rows = g * per_group..((g + 1) * per_group).min(m);
                let width = rows.len().div_ceil(NR) * NR;
                let mut out = vec![0f32; n * width];
                if n < PANEL_MIN_TOKENS {
                    self.rows_kernel(xs, n, rows.clone(), &mut out, width);
                } else {
                    self.panel_kernel(xs, n, rows.clone(), &mut out, width);
                }
                (rows.start, out)
            })
            .collect();
        let mut y = Array2::<f32>::zeros((n, m));
        for (col0, out) in groups {
            let width = out.len() / n;
            let take = width.min(m - col0);
            for t in 0..n {
                let dst = &mut y.row_mut(t).into_slice().expect("row of a standard array")
                    [col0..col0 + take];
                dst.copy_from_slice(&out[t * width..t * width + take]);
            }
        }
        y
    }

    /// One token (a decoding step): rows split into a few contiguous ranges across threads (none below
    /// [`SERIAL_WEIGHTS`]), each row decoded and dotted in registers where the format has a fused kernel.
    fn matvec(&self, x: &[f32]) -> Array2<f32> {
        let m = self.m;
        let mut y = vec![0f32; m];
        let threads = rayon::current_num_threads().max(1);
        let tasks = if m * self.k < SERIAL_WEIGHTS {
            1
        } else {
            2 * threads
        };
        let chunk = m.div_ceil(tasks).max(1);
        if tasks == 1 {
            self.dot_rows(x, 0, &mut y);
        } else {
            y.par_chunks_mut(chunk)
                .enumerate()
                .for_each(|(i, o)| self.dot_rows(x, i * chunk, o));
        }
        Array2::from_shape_vec((1, m), y).expect("m values")
    }

    /// `out[j] = row (r0 + j) · x` for one token.
    fn dot_rows(&self, x: &[f32], r0: usize, out: &mut [f32]) {
        let width = out.len();
        self.rows_kernel(x, 1, r0..r0 + width, out, width);
    }

    /// Few tokens: the fused kernel, or else decode [`ROWS`] rows at a time and dot them with every token.
    fn rows_kernel(&self, xs: &[f32], n: usize, rows: Range<usize>, out: &mut [f32], width: usize) {
        let k = self.k;
        #[cfg(target_arch = "x86_64")]
        {
            // Where the format has a fused kernel: each block decoded in registers, once for up to four tokens.
            let rb = self.row_bytes;
            let data = &self.data.bytes()[rows.start * rb..rows.end * rb];
            if super::fused::dot_rows_tokens(self.ty, data, rb, (xs, n, k), out, width) {
                return;
            }
        }
        let mut buf = vec![0f32; ROWS * k];
        let mut r0 = rows.start;
        while r0 < rows.end {
            let c = ROWS.min(rows.end - r0);
            for j in 0..c {
                self.decode_row(r0 + j, &mut buf[j * k..(j + 1) * k]);
            }
            let col = r0 - rows.start;
            let mut t0 = 0;
            while t0 < n {
                let r = TOKENS.min(n - t0);
                let x = &xs[t0 * k..(t0 + r) * k];
                let mut res = [[0f32; ROWS]; TOKENS];
                let w = &buf[..c * k];
                dot_dispatch(&Tile { x, r, k, w, c }, &mut res);
                for (t, row) in res.iter().enumerate().take(r) {
                    let o = (t0 + t) * width + col;
                    out[o..o + c].copy_from_slice(&row[..c]);
                }
                t0 += r;
            }
            r0 += c;
        }
    }

    /// Many tokens: decode 16 rows into a packed panel and run the pack-once kernel on it.
    fn panel_kernel(
        &self,
        xs: &[f32],
        n: usize,
        rows: Range<usize>,
        out: &mut [f32],
        width: usize,
    ) {
        let k = self.k;
        let mut decoded = vec![0f32; NR * k];
        let mut panel = vec![0f32; k * NR];
        for (p, r0) in rows.clone().step_by(NR).enumerate() {
            let c = NR.min(rows.end - r0);
            if c < NR {
                panel.fill(0.0);
            }
            for (j, row) in decoded.chunks_exact_mut(k).take(c).enumerate() {
                self.decode_row(r0 + j, row);
            }
            let src: Vec<&[f32]> = decoded.chunks_exact(k).take(c).collect();
            crate::numeric::pack::pack_panel(&src, k, &mut panel);
            packed::kernel_dispatch(xs, n, k, &panel, 1, &mut out[p * NR..], width);
        }
    }
}

/// A register tile of the few-token path: `r` tokens `x` `[r, k]` by `c` decoded rows `w` `[c, k]`.
#[derive(Clone, Copy)]
struct Tile<'a> {
    x: &'a [f32],
    r: usize,
    k: usize,
    w: &'a [f32],
    c: usize,
}

/// `res[t][j] = Σ_kk x[t·k + kk] · w[j·k + kk]` for `t < r` tokens, `j < c` rows.
fn dot_dispatch(tile: &Tile, res: &mut [[f32; ROWS]; TOKENS]) {
    #[cfg(target_arch = "x86_64")]
    {
        if crate::numeric::cpu::avx2_fma() {
            let Tile { x, r, k, w, c } = *tile;
            // SAFETY: the CPU supports AVX2 and FMA (checked just above).
            unsafe {
                match (r, c) {
                    (3, 4) => avx2::dot::<3, 4>(x, k, w, res),
                    (2, 4) => avx2::dot::<2, 4>(x, k, w, res),
                    (1, 4) => avx2::dot::<1, 4>(x, k, w, res),
                    (3, _) => (0..c).for_each(|j| avx2::dot_one::<3>(x, k, w, j, res)),
                    (2, _) => (0..c).for_each(|j| avx2::dot_one::<2>(x, k, w, j, res)),
                    _ => (0..c).for_each(|j| avx2::dot_one::<1>(x, k, w, j, res)),
                }
            }
            return;
        }
    }
    dot_portable(tile, res)
}

fn dot_portable(tile: &Tile, res: &mut [[f32; ROWS]; TOKENS]) {
    let Tile { x, r, k, w, c } = *tile;
    for (t, rt) in res.iter_mut().enumerate().take(r) {
        for (j, o) in rt.iter_mut().enumerate().take(c) {
            let (xr, wr) = (&x[t * k..(t + 1) * k], &w[j * k..(j + 1) * k]);
            let mut lanes = [0f32; 8];
            let chunks = xr.chunks_exact(8).zip(wr.chunks_exact(8));
            for (a, b) in chunks {
                for l in 0..8 {
                    lanes[l] += a[l] * b[l];
                }
            }
            let tail = k - k % 8;
            let rest: f32 = (tail..k).map(|i| xr[i] * wr[i]).sum();
            *o = lanes.iter().sum::<f32>() + rest;
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::{ROWS, TOKENS};
    use std::arch::x86_64::*;

    #[inline(always)]
    unsafe fn hsum(v: __m256) -> f32 {
        unsafe {
            let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
            let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
            let s = _mm_add_ss(s, _mm_movehdup_ps(s));
            _mm_cvtss_f32(s)
        }
    }

    /// `R` tokens × `C` rows.
    #[allow(clippy::needless_range_loop)] // t indexes both the token rows and the accumulators
    #[target_feature(enable = "avx2,fma")]
    pub fn dot<const R: usize, const C: usize>(
        x: &[f32],
        k: usize,
        w: &[f32],
        res: &mut [[f32; ROWS]; TOKENS],
    ) {
        assert!(R <= TOKENS && C <= ROWS && x.len() >= R * k && w.len() >= C * k);
        let mut acc = [[_mm256_setzero_ps(); C]; R];
        let (xp, wp) = (x.as_ptr(), w.as_ptr());
        let mut kk = 0;
        while kk + 8 <= k {
            // SAFETY: kk + 8 ≤ k, so every load stays inside its row (lengths asserted above).
            unsafe {
                let mut wv = [_mm256_setzero_ps(); C];
                for (j, w) in wv.iter_mut().enumerate() {
                    *w = _mm256_loadu_ps(wp.add(j * k + kk));
                }
                for t in 0..R {
                    let xv = _mm256_loadu_ps(xp.add(t * k + kk));
                    for j in 0..C {
                        acc[t][j] = _mm256_fmadd_ps(xv, wv[j], acc[t][j]);
                    }
                }
            }
            kk += 8;
        }
        for t in 0..R {
            for j in 0..C {
                // SAFETY: AVX is enabled in this function.
                let mut s = unsafe { hsum(acc[t][j]) };
                for i in kk..k {
                    s += x[t * k + i] * w[j * k + i];
                }
                res[t][j] = s;
            }
        }
    }

    /// `R` tokens × row `j`.
    #[target_feature(enable = "avx2,fma")]
    pub fn dot_one<const R: usize>(
        x: &[f32],
        k: usize,
        w: &[f32],
        j: usize,
        res: &mut [[f32; ROWS]; TOKENS],
    ) {
        let mut one = [[0f32; ROWS]; TOKENS];
        dot::<R, 1>(x, k, &w[j * k..(j + 1) * k], &mut one);
        for t in 0..R {
            res[t][j] = one[t][0];
        }
    }
}

#[cfg(test)]
mod tests;
