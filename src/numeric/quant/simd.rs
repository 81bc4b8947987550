//! AVX2 decoders for the common block formats: the same f32 operations as the portable decoders in
//! [`super::decode`], in the same order (multiply, then add or subtract; never fused), so the results are the same
//! bits. Scales are converted from f16 with the same scalar conversion ([`super::types::h`]).

use super::types::GgmlType;
use super::types::{h, k_scale_min};
use std::arch::x86_64::*;

/// Decode with SIMD if this type has a SIMD decoder and the CPU has what it needs; `false` if not (nothing written).
pub fn decode(ty: GgmlType, bytes: &[u8], out: &mut [f32]) -> bool {
    use GgmlType::*;
    if !has_avx2_f16c() {
        return false;
    }
    let ts = ty.type_size();
    // SAFETY (every call below): AVX2 and F16C are present (checked above), and each block
    // function receives exactly `type_size` bytes and exactly `block_size` floats.
    unsafe {
        match ty {
            F16 => half_avx2::<false>(bytes, out),
            BF16 => half_avx2::<true>(bytes, out),
            Q4_0 => each_q4_0(bytes, ts, out),
            Q4_1 => each_q4_1(bytes, ts, out),
            Q5_0 => each_q5_0(bytes, ts, out),
            Q5_1 => each_q5_1(bytes, ts, out),
            Q8_0 => each_q8_0(bytes, ts, out),
            Q4_K => each_q4_k(bytes, ts, out),
            Q5_K => each_q5_k(bytes, ts, out),
            Q6_K => each_q6_k(bytes, ts, out),
            _ => return false,
        }
    }
    true
}

/// The block loop of each format, compiled with AVX2 so the block function inlines into it.
macro_rules! block_loops {
    ($( $name:ident = $block:path, $b:expr; )*) => {$(
        #[target_feature(enable = "avx2,f16c")]
        fn $name(bytes: &[u8], ts: usize, out: &mut [f32]) {
            for (o, b) in out.chunks_exact_mut($b).zip(bytes.chunks_exact(ts)) {
                $block(b, o);
            }
        }
    )*};
}

block_loops! {
    each_q4_0 = q4_0, 32;
    each_q4_1 = q4_1, 32;
    each_q5_0 = q5_0, 32;
    each_q5_1 = q5_1, 32;
    each_q8_0 = q8_0, 32;
    each_q4_k = q45_k::<false>, 256;
    each_q5_k = q45_k::<true>, 256;
    each_q6_k = q6_k, 256;
}

/// Whether the CPU has what the decoders here need (AVX2 and F16C; every AVX2 CPU has F16C).
pub(super) fn has_avx2_f16c() -> bool {
    std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("f16c")
}

/// The f16 at byte `at` of a block, as f32, converted by F16C (exact, as [`h`]); callers enable F16C.
#[inline(always)]
unsafe fn hx(b: &[u8], at: usize) -> f32 {
    let bits = u16::from_le_bytes([b[at], b[at + 1]]);
    unsafe { _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(bits as i32))) }
}

/// 32 signed bytes → 4 × 8 floats.
#[inline(always)]
unsafe fn i8x32_to_f32(v: __m256i) -> [__m256; 4] {
    unsafe {
        let lo = _mm256_castsi256_si128(v);
        let hi = _mm256_extracti128_si256(v, 1);
        [
            _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(lo)),
            _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(lo, 8))),
            _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(hi)),
            _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(hi, 8))),
        ]
    }
}

/// 16 bytes of packed nibbles → 32 bytes: the low nibbles (elements 0..16), then the high ones (16..32).
#[inline(always)]
unsafe fn nibbles(p: *const u8) -> __m256i {
    unsafe {
        let q = _mm_loadu_si128(p as *const __m128i);
        let m = _mm_set1_epi8(0x0F);
        let lo = _mm_and_si128(q, m);
        let hi = _mm_and_si128(_mm_srli_epi16(q, 4), m);
        _mm256_set_m128i(hi, lo)
    }
}

/// Bit `i` of `bits` → 0x10 in byte `i` (else 0).
#[inline(always)]
unsafe fn bit4_from_u32(bits: u32) -> __m256i {
    unsafe {
        let v = _mm256_set1_epi32(bits as i32);
        let shuf = _mm256_setr_epi64x(
            0x0000_0000_0000_0000,
            0x0101_0101_0101_0101,
            0x0202_0202_0202_0202,
            0x0303_0303_0303_0303,
        );
        let bytes = _mm256_shuffle_epi8(v, shuf);
        let mask = _mm256_set1_epi64x(0x7fbf_dfef_f7fb_fdfe);
        let set = _mm256_cmpeq_epi8(_mm256_or_si256(bytes, mask), _mm256_set1_epi8(-1));
        _mm256_and_si256(set, _mm256_set1_epi8(0x10))
    }
}

/// `[f(v[0]), …, f(v[3])]` for an expression `f` of one register (the element-wise step of a block decoder).
macro_rules! map4 {
    ($v:expr, |$x:ident| $f:expr) => {{
        let v = $v;
        [
            {
                let $x = v[0];
                $f
            },
            {
                let $x = v[1];
                $f
            },
            {
                let $x = v[2];
                $f
            },
            {
                let $x = v[3];
                $f
            },
        ]
    }};
}

#[inline(always)]
unsafe fn store4(o: &mut [f32], v: [__m256; 4]) {
    assert!(o.len() >= 32);
    unsafe {
        for (i, v) in v.into_iter().enumerate() {
            _mm256_storeu_ps(o.as_mut_ptr().add(8 * i), v);
        }
    }
}

// The 32-element formats, decoded into four registers. `d · v` (the multiplication order of the portable decoders
// matters only for NaN payloads; kept anyway); `d · v + m` rounded after the multiplication and after the addition
// (no FMA), as the portable decoders do.

/// The quants of Q4_0/Q4_1 (nibbles at byte `at`) or, with `FIVE`, of Q5_0/Q5_1 (their fifth bits in the four bytes
/// before the nibbles), as unsigned bytes.
#[inline(always)]
unsafe fn quants<const FIVE: bool>(b: &[u8], at: usize) -> __m256i {
    assert!(b.len() >= at + 16 && (!FIVE || at >= 4));
    unsafe {
        let q = nibbles(b.as_ptr().add(at));
        if FIVE {
            let qh = u32::from_le_bytes([b[at - 4], b[at - 3], b[at - 2], b[at - 1]]);
            _mm256_or_si256(q, bit4_from_u32(qh))
        } else {
            q
        }
    }
}

/// Q4_0 (`FIVE` false) or Q5_0: `d · (q − 8)` or `d · (q − 16)`.
#[inline(always)]
pub(super) unsafe fn qx_0_regs<const FIVE: bool>(b: &[u8]) -> [__m256; 4] {
    let (at, offset) = if FIVE { (6, 16) } else { (2, 8) };
    unsafe {
        let d = _mm256_set1_ps(hx(b, 0));
        let q = _mm256_sub_epi8(quants::<FIVE>(b, at), _mm256_set1_epi8(offset));
        map4!(i8x32_to_f32(q), |v| _mm256_mul_ps(d, v))
    }
}

/// Q4_1 (`FIVE` false) or Q5_1: `d · q + m`.
#[inline(always)]
pub(super) unsafe fn qx_1_regs<const FIVE: bool>(b: &[u8]) -> [__m256; 4] {
    let at = if FIVE { 8 } else { 4 };
    unsafe {
        let (d, m) = (_mm256_set1_ps(hx(b, 0)), _mm256_set1_ps(hx(b, 2)));
        let q = quants::<FIVE>(b, at);
        map4!(i8x32_to_f32(q), |v| _mm256_add_ps(_mm256_mul_ps(d, v), m))
    }
}

#[inline(always)]
pub(super) unsafe fn q8_0_regs(b: &[u8]) -> [__m256; 4] {
    assert!(b.len() >= 34);
    unsafe {
        let d = _mm256_set1_ps(hx(b, 0));
        let q = _mm256_loadu_si256(b.as_ptr().add(2) as *const __m256i);
        map4!(i8x32_to_f32(q), |v| _mm256_mul_ps(v, d))
    }
}

/// For each 32-element format, from its register decoder: the block function (the registers, stored) and the fused
/// row loop of [`super::fused`] (each block's registers multiplied into the values of `T` tokens at once).
macro_rules! from_regs {
    ($($name:ident, $rows_t:ident = $regs:path;)*) => {$(
        #[target_feature(enable = "avx2,f16c")]
        #[inline]
        fn $name(b: &[u8], o: &mut [f32]) {
            // SAFETY: AVX2 is enabled here; `$regs` checks the block's length and `store4` the output's.
            unsafe { store4(o, $regs(b)) }
        }

        /// `out[t · width + r]` = row `r` of `data` decoded · token `t` of `xs` (`T` tokens of `k` values, one after
        /// the other), for the `rows` rows of `data`; `A` accumulators per token.
        #[target_feature(enable = "avx2,fma,f16c")]
        pub(super) fn $rows_t<const T: usize, const A: usize>(
            data: &[u8],
            shape: FewTokens,
            xs: &[f32],
            out: &mut [f32],
        ) {
            let FewTokens { rows, row_bytes, ts, k, width } = shape;
            assert!(xs.len() >= T * k && out.len() >= (T - 1) * width + rows && data.len() >= rows * row_bytes);
            for (r, row) in data.chunks_exact(row_bytes).take(rows).enumerate() {
                let mut acc = [[_mm256_setzero_ps(); A]; T];
                for (j, b) in row.chunks_exact(ts).take(k / 32).enumerate() {
                    // SAFETY: `$regs` checks the block's length; every token holds k ≥ 32 (j + 1) floats.
                    unsafe {
                        let w = $regs(b);
                        for (t, a) in acc.iter_mut().enumerate() {
                            let x = xs.as_ptr().add(t * k + 32 * j);
                            for (i, w) in w.into_iter().enumerate() {
                                a[i % A] = _mm256_fmadd_ps(w, _mm256_loadu_ps(x.add(8 * i)), a[i % A]);
                            }
                        }
                    }
                }
                for (t, a) in acc.iter().enumerate() {
                    let s = a[1..].iter().fold(a[0], |s, &v| _mm256_add_ps(s, v));
                    out[t * width + r] = hsum(s);
                }
            }
        }
    )*};
}

/// The shape of a few-token fused product: `rows` weight rows of `row_bytes` bytes (blocks of `ts` bytes), `k`
/// values per token, and the output's row stride `width`.
#[derive(Debug, Clone, Copy)]
pub(super) struct FewTokens {
    pub rows: usize,
    pub row_bytes: usize,
    pub ts: usize,
    pub k: usize,
    pub width: usize,
}

/// The sum of a register's eight lanes.
#[target_feature(enable = "avx")]
#[inline]
fn hsum(s: __m256) -> f32 {
    let s = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)))
}

from_regs! {
    q4_0, rows_t_q4_0 = qx_0_regs::<false>;
    q4_1, rows_t_q4_1 = qx_1_regs::<false>;
    q5_0, rows_t_q5_0 = qx_0_regs::<true>;
    q5_1, rows_t_q5_1 = qx_1_regs::<true>;
    q8_0, rows_t_q8_0 = q8_0_regs;
}

/// Q4_K (`FIVE` false) and Q5_K (`FIVE` true, with the fifth bits `qh[32]` before the nibbles): 8 sub-blocks of 32,
/// `d·scale · q − dmin·min`, rounded after the multiplication and after the subtraction (no FMA).
#[target_feature(enable = "avx2")]
#[inline]
fn q45_k<const FIVE: bool>(b: &[u8], o: &mut [f32]) {
    let qs = if FIVE { 48 } else { 16 };
    assert!(b.len() >= qs + 128 && o.len() >= 256);
    let (d, dmin) = (h(b, 0), h(b, 2));
    let (sc, mn) = k_scale_min(&b[4..16]);
    unsafe {
        let m = _mm256_set1_epi8(0x0F);
        let qh = _mm256_loadu_si256(b.as_ptr().add(16) as *const __m256i);
        for chunk in 0..4 {
            let q = _mm256_loadu_si256(b.as_ptr().add(qs + 32 * chunk) as *const __m256i);
            for (half, q) in [
                _mm256_and_si256(q, m),
                _mm256_and_si256(_mm256_srli_epi16(q, 4), m),
            ]
            .into_iter()
            .enumerate()
            {
                let sb = 2 * chunk + half;
                let q = if FIVE {
                    let bit = _mm256_set1_epi8(1 << sb);
                    let hb = _mm256_cmpeq_epi8(_mm256_and_si256(qh, bit), bit);
                    _mm256_or_si256(q, _mm256_and_si256(hb, _mm256_set1_epi8(0x10)))
                } else {
                    q
                };
                let ds = _mm256_set1_ps(d * sc[sb] as f32);
                let dm = _mm256_set1_ps(dmin * mn[sb] as f32);
                let v = map4!(i8x32_to_f32(q), |v| _mm256_sub_ps(_mm256_mul_ps(ds, v), dm));
                store4(&mut o[32 * sb..], v);
            }
        }
    }
}

#[target_feature(enable = "avx2")]
#[inline]
fn q6_k(b: &[u8], o: &mut [f32]) {
    assert!(b.len() >= 210 && o.len() >= 256);
    let d = h(b, 208);
    unsafe {
        let m4 = _mm256_set1_epi8(0x0F);
        let m2 = _mm256_set1_epi8(3);
        for g in 0..8 {
            // elements 32g .. 32g+32: one half (128 elements), r = (g % 4)·32 ... inside it
            let (half, rr) = (g / 4, (g % 4) * 32);
            let ql = _mm256_loadu_si256(b.as_ptr().add(half * 64 + rr % 64) as *const __m256i);
            let qh = _mm256_loadu_si256(b.as_ptr().add(128 + half * 32) as *const __m256i);
            let lo = if rr / 64 == 0 {
                _mm256_and_si256(ql, m4)
            } else {
                _mm256_and_si256(_mm256_srli_epi16(ql, 4), m4)
            };
            let hi = match rr / 32 {
                0 => _mm256_and_si256(qh, m2),
                1 => _mm256_and_si256(_mm256_srli_epi16(qh, 2), m2),
                2 => _mm256_and_si256(_mm256_srli_epi16(qh, 4), m2),
                _ => _mm256_and_si256(_mm256_srli_epi16(qh, 6), m2),
            };
            let q = _mm256_sub_epi8(
                _mm256_or_si256(lo, _mm256_slli_epi16(hi, 4)),
                _mm256_set1_epi8(32),
            );
            let s0 = d * b[192 + 2 * g] as i8 as f32;
            let s1 = d * b[192 + 2 * g + 1] as i8 as f32;
            let v = i8x32_to_f32(q);
            let (d0, d1) = (_mm256_set1_ps(s0), _mm256_set1_ps(s1));
            store4(
                &mut o[32 * g..],
                [
                    _mm256_mul_ps(d0, v[0]),
                    _mm256_mul_ps(d0, v[1]),
                    _mm256_mul_ps(d1, v[2]),
                    _mm256_mul_ps(d1, v[3]),
                ],
            );
        }
    }
}

/// F16 (`BF` false, converted by F16C) or BF16 (`BF` true: the 16 bits become the top of an f32).
#[allow(clippy::needless_range_loop)] // the scalar tail indexes bytes and out together
#[target_feature(enable = "avx2,f16c")]
fn half_avx2<const BF: bool>(bytes: &[u8], out: &mut [f32]) {
    let n = out.len().min(bytes.len() / 2);
    let mut i = 0;
    while i + 8 <= n {
        // SAFETY: elements i..i+8 are within both slices.
        unsafe {
            let hv = _mm_loadu_si128(bytes.as_ptr().add(2 * i) as *const __m128i);
            let v = if BF {
                _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(hv), 16))
            } else {
                _mm256_cvtph_ps(hv)
            };
            _mm256_storeu_ps(out.as_mut_ptr().add(i), v);
        }
        i += 8;
    }
    for j in i..n {
        out[j] = if BF {
            f32::from_bits((u16::from_le_bytes([bytes[2 * j], bytes[2 * j + 1]]) as u32) << 16)
        } else {
            h(bytes, 2 * j)
        };
    }
}
