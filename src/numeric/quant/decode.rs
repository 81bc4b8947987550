//! Dequantization of GGML blocks to f32.
//!
//! Block layouts follow ggml (`ggml-common.h`) as implemented by the `gguf` Python package's `quants.py`; the order of
//! floating-point operations mirrors that reference (f32 throughout, no fused multiply-add) so results match it
//! bit for bit. Each function takes whole blocks of raw little-endian bytes and writes `block_size` floats per block.
//!
//! [`decode`] is the one entry point used by both the loader ([`dequantize`]) and the in-kernel decoding of
//! [`super::QuantMatrix`]: on x86-64 with AVX2 (and F16C) the common 32-element formats and F16/BF16 are decoded with
//! SIMD code that performs the same f32 operations in the same order (a multiply, then an add: never fused), so the
//! floats are the same bits either way (tested against the portable functions below).

use super::types::{GgmlType, QK_K};
use super::types::{h, k_scale_min};
use half::f16;
use half::slice::HalfFloatSliceExt;

/// Why a dequantization could not run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DequantError {
    /// The type has no dequantizer here.
    Unsupported(GgmlType),
    /// `bytes.len()` is not `out.len() / block_size * type_size`, or `out.len()` is not a whole number of blocks.
    Size { bytes: usize, elements: usize },
}

impl std::fmt::Display for DequantError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DequantError::Unsupported(t) => write!(f, "dequantizing {t} is not supported"),
            DequantError::Size { bytes, elements } => {
                write!(
                    f,
                    "{bytes} bytes do not hold {elements} elements of this type"
                )
            }
        }
    }
}

/// Dequantize `bytes` (whole blocks of type `ty`) into `out` (`out.len()` elements).
pub fn dequantize(ty: GgmlType, bytes: &[u8], out: &mut [f32]) -> Result<(), DequantError> {
    let (bs, ts) = (ty.block_size(), ty.type_size());
    let size_err = DequantError::Size {
        bytes: bytes.len(),
        elements: out.len(),
    };
    if !out.len().is_multiple_of(bs) {
        return Err(size_err);
    }
    match (out.len() / bs).checked_mul(ts) {
        Some(n) if n == bytes.len() => {}
        _ => return Err(size_err),
    }
    decode(ty, bytes, out)
}

/// Decode whole blocks without the size checks of [`dequantize`]: `out.len()` must be a multiple of the block size
/// and `bytes` must hold those blocks (extra bytes or floats are ignored). Unsupported types leave `out` unchanged
/// and return the error.
pub fn decode(ty: GgmlType, bytes: &[u8], out: &mut [f32]) -> Result<(), DequantError> {
    #[cfg(target_arch = "x86_64")]
    if super::simd::decode(ty, bytes, out) {
        return Ok(());
    }
    decode_portable(ty, bytes, out)
}

/// The portable decoders (the reference the SIMD ones are tested against).
pub fn decode_portable(ty: GgmlType, bytes: &[u8], out: &mut [f32]) -> Result<(), DequantError> {
    let ts = ty.type_size();
    use GgmlType::*;
    match ty {
        F32 => plain::<4>(bytes, out, f32::from_le_bytes),
        F64 => plain::<8>(bytes, out, |b| f64::from_le_bytes(b) as f32),
        I8 => plain::<1>(bytes, out, |b| b[0] as i8 as f32),
        I16 => plain::<2>(bytes, out, |b| i16::from_le_bytes(b) as f32),
        I32 => plain::<4>(bytes, out, |b| i32::from_le_bytes(b) as f32),
        BF16 => plain::<2>(bytes, out, |b| {
            f32::from_bits((u16::from_le_bytes(b) as u32) << 16)
        }),
        F16 => f16_to_f32(bytes, out),
        Q4_0 => blocks::<32>(bytes, ts, out, q4_0),
        Q4_1 => blocks::<32>(bytes, ts, out, q4_1),
        Q5_0 => blocks::<32>(bytes, ts, out, q5_0),
        Q5_1 => blocks::<32>(bytes, ts, out, q5_1),
        Q8_0 => blocks::<32>(bytes, ts, out, q8_0),
        Q2_K => blocks::<QK_K>(bytes, ts, out, q2_k),
        Q3_K => blocks::<QK_K>(bytes, ts, out, q3_k),
        Q4_K => blocks::<QK_K>(bytes, ts, out, qx_k::<false>),
        Q5_K => blocks::<QK_K>(bytes, ts, out, qx_k::<true>),
        Q6_K => blocks::<QK_K>(bytes, ts, out, q6_k),
        _ => return Err(DequantError::Unsupported(ty)),
    }
    Ok(())
}

fn plain<const N: usize>(bytes: &[u8], out: &mut [f32], f: impl Fn([u8; N]) -> f32) {
    for (o, c) in out.iter_mut().zip(bytes.chunks_exact(N)) {
        let mut a = [0u8; N];
        a.copy_from_slice(c);
        *o = f(a);
    }
}

fn f16_to_f32(bytes: &[u8], out: &mut [f32]) {
    // Convert in stack-sized chunks so half's vectorised conversion can run.
    const CHUNK: usize = 1024;
    let mut tmp = [f16::ZERO; CHUNK];
    for (o, b) in out.chunks_mut(CHUNK).zip(bytes.chunks(CHUNK * 2)) {
        let t = &mut tmp[..o.len()];
        for (h, c) in t.iter_mut().zip(b.chunks_exact(2)) {
            *h = f16::from_bits(u16::from_le_bytes([c[0], c[1]]));
        }
        t.convert_to_f32_slice(o);
    }
}

fn blocks<const B: usize>(bytes: &[u8], ts: usize, out: &mut [f32], f: fn(&[u8], &mut [f32; B])) {
    for (o, b) in out.chunks_exact_mut(B).zip(bytes.chunks_exact(ts)) {
        if let Ok(o) = <&mut [f32; B]>::try_from(o) {
            f(b, o);
        }
    }
}

// Every block function below receives exactly `type_size` bytes (from `chunks_exact`), so its constant indices are
// in range by construction.

fn q4_0(b: &[u8], o: &mut [f32; 32]) {
    let d = h(b, 0);
    let qs = &b[2..18];
    for j in 0..16 {
        o[j] = d * ((qs[j] & 0x0F) as i32 - 8) as f32;
        o[j + 16] = d * ((qs[j] >> 4) as i32 - 8) as f32;
    }
}

fn q4_1(b: &[u8], o: &mut [f32; 32]) {
    let (d, m) = (h(b, 0), h(b, 2));
    let qs = &b[4..20];
    for j in 0..16 {
        o[j] = d * (qs[j] & 0x0F) as f32 + m;
        o[j + 16] = d * (qs[j] >> 4) as f32 + m;
    }
}

fn q5_0(b: &[u8], o: &mut [f32; 32]) {
    let d = h(b, 0);
    let qh = u32::from_le_bytes([b[2], b[3], b[4], b[5]]);
    let qs = &b[6..22];
    for j in 0..16 {
        let lo = (qs[j] & 0x0F) as u32 | ((qh >> j) & 1) << 4;
        let hi = (qs[j] >> 4) as u32 | ((qh >> (j + 16)) & 1) << 4;
        o[j] = d * (lo as i32 - 16) as f32;
        o[j + 16] = d * (hi as i32 - 16) as f32;
    }
}

fn q5_1(b: &[u8], o: &mut [f32; 32]) {
    let (d, m) = (h(b, 0), h(b, 2));
    let qh = u32::from_le_bytes([b[4], b[5], b[6], b[7]]);
    let qs = &b[8..24];
    for j in 0..16 {
        let lo = (qs[j] & 0x0F) as u32 | ((qh >> j) & 1) << 4;
        let hi = (qs[j] >> 4) as u32 | ((qh >> (j + 16)) & 1) << 4;
        o[j] = d * lo as f32 + m;
        o[j + 16] = d * hi as f32 + m;
    }
}

fn q8_0(b: &[u8], o: &mut [f32; 32]) {
    let d = h(b, 0);
    for (o, &q) in o.iter_mut().zip(&b[2..34]) {
        *o = q as i8 as f32 * d;
    }
}

/// Q2_K: scales[16] (low nibble: scale, high: min), qs[64] (2 bits each), d, dmin.
fn q2_k(b: &[u8], o: &mut [f32; QK_K]) {
    let scales = &b[0..16];
    let qs = &b[16..80];
    let (d, dmin) = (h(b, 80), h(b, 82));
    for (i, o) in o.iter_mut().enumerate() {
        let (half, k, j) = (i / 128, (i / 32) % 4, i % 32);
        let q = (qs[half * 32 + j] >> (2 * k)) & 3;
        let sc = scales[i / 16];
        let dl = d * (sc & 0x0F) as f32;
        let ml = dmin * (sc >> 4) as f32;
        *o = dl * q as f32 - ml;
    }
}

/// Q3_K: hmask[32], qs[64], scales[12] (16 six-bit scales), d.
fn q3_k(b: &[u8], o: &mut [f32; QK_K]) {
    let hmask = &b[0..32];
    let qs = &b[32..96];
    let sc = &b[96..108];
    let d = h(b, 108);
    let mut dl = [0f32; 16];
    for (i, dl) in dl.iter_mut().enumerate() {
        let lo = if i < 8 { sc[i] & 0x0F } else { sc[i - 8] >> 4 };
        let hi = (sc[8 + i % 4] >> (2 * (i / 4))) & 3;
        let s = (lo | (hi << 4)) as i32 - 32;
        *dl = d * s as f32;
    }
    for (i, o) in o.iter_mut().enumerate() {
        let (half, k, j) = (i / 128, (i / 32) % 4, i % 32);
        let ql = ((qs[half * 32 + j] >> (2 * k)) & 3) as i32;
        let hbit = ((hmask[j] >> (i / 32)) & 1) as i32;
        let q = ql - ((hbit ^ 1) << 2);
        *o = dl[i / 16] * q as f32;
    }
}

/// Q4_K (`FIVE` false: d, dmin, scales[12], qs[128]) and Q5_K (`FIVE` true: d, dmin, scales[12], qh[32], qs[128]);
/// 8 sub-blocks of 32.
fn qx_k<const FIVE: bool>(b: &[u8], o: &mut [f32; QK_K]) {
    let (d, dmin) = (h(b, 0), h(b, 2));
    let (sc, mn) = k_scale_min(&b[4..16]);
    let qh = &b[16..48];
    let qs = if FIVE { &b[48..176] } else { &b[16..144] };
    for (sb, o) in o.chunks_exact_mut(32).enumerate() {
        let ds = d * sc[sb] as f32;
        let dm = dmin * mn[sb] as f32;
        let (chunk, shift) = (sb / 2, 4 * (sb % 2));
        for (j, o) in o.iter_mut().enumerate() {
            let fifth = if FIVE { ((qh[j] >> sb) & 1) << 4 } else { 0 };
            let q = ((qs[chunk * 32 + j] >> shift) & 0x0F) | fifth;
            *o = ds * q as f32 - dm;
        }
    }
}

/// Q6_K: ql[128] (low 4 bits), qh[64] (high 2 bits), scales[16] (i8), d.
fn q6_k(b: &[u8], o: &mut [f32; QK_K]) {
    let ql = &b[0..128];
    let qh = &b[128..192];
    let scales = &b[192..208];
    let d = h(b, 208);
    for (i, o) in o.iter_mut().enumerate() {
        let (half, r) = (i / 128, i % 128);
        let lo = (ql[half * 64 + r % 64] >> (4 * (r / 64))) & 0x0F;
        let hi = (qh[half * 32 + r % 32] >> (2 * (r / 32))) & 3;
        let q = (lo | (hi << 4)) as i32 - 32;
        let ds = d * scales[i / 16] as i8 as f32;
        *o = ds * q as f32;
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn type_table_is_consistent() {
        for &t in GgmlType::ALL {
            assert_eq!(GgmlType::from_id(t.id()), Some(t));
            assert!(t.block_size() >= 1 && t.type_size() >= 1, "{t}");
        }
        assert_eq!(GgmlType::from_id(4), None);
        assert_eq!(GgmlType::from_id(u32::MAX), None);
        assert_eq!(GgmlType::Q4_K.type_size(), 144);
        assert_eq!(GgmlType::Q6_K.type_size(), 210);
        assert_eq!(GgmlType::Q5_K.type_size(), 176);
    }

    #[test]
    fn size_mismatch_is_an_error() {
        let mut out = [0f32; 32];
        assert!(dequantize(GgmlType::Q8_0, &[0u8; 33], &mut out).is_err());
        let mut out = [0f32; 31];
        assert!(dequantize(GgmlType::Q8_0, &[0u8; 34], &mut out).is_err());
        let mut out = [0f32; 256];
        assert_eq!(
            dequantize(GgmlType::IQ2_XXS, &[0u8; 66], &mut out),
            Err(DequantError::Unsupported(GgmlType::IQ2_XXS))
        );
    }

    #[test]
    fn q8_0_by_hand() {
        let mut b = vec![0u8; 34];
        b[0..2].copy_from_slice(&f16::from_f32(0.5).to_bits().to_le_bytes());
        for j in 0..32 {
            b[2 + j] = (j as i8 - 16) as u8;
        }
        let mut out = [0f32; 32];
        dequantize(GgmlType::Q8_0, &b, &mut out).unwrap();
        for (j, v) in out.iter().enumerate() {
            assert_eq!(*v, (j as f32 - 16.0) * 0.5);
        }
    }

    /// Random but valid blocks of `ty`: random bytes with finite f16 scales at the offsets the format stores them.
    pub(crate) fn random_blocks(ty: GgmlType, n_blocks: usize, seed: u64) -> Vec<u8> {
        let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let mut next = move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s
        };
        let ts = ty.type_size();
        let mut b: Vec<u8> = (0..n_blocks * ts).map(|_| next() as u8).collect();
        use GgmlType::*;
        let scales: &[usize] = match ty {
            Q4_0 | Q5_0 | Q8_0 => &[0],
            Q4_1 | Q5_1 | Q4_K | Q5_K => &[0, 2],
            Q2_K => &[80, 82],
            Q3_K => &[108],
            Q6_K => &[208],
            _ => &[],
        };
        for blk in b.chunks_exact_mut(ts) {
            for &off in scales {
                let v = ((next() % 2001) as f32 - 1000.0) * 1e-4;
                blk[off..off + 2].copy_from_slice(&f16::from_f32(v).to_bits().to_le_bytes());
            }
        }
        if matches!(ty, F16 | BF16) {
            // keep the plain halves finite: clear the top exponent bit
            for pair in b.chunks_exact_mut(2) {
                pair[1] &= 0b1011_1111;
            }
        }
        if ty == F32 {
            for q in b.chunks_exact_mut(4) {
                q[3] &= 0b1011_1111;
            }
        }
        b
    }

    #[test]
    fn simd_decoders_equal_the_portable_ones_bit_for_bit() {
        for &ty in GgmlType::ALL.iter().filter(|t| t.can_dequantize()) {
            for (n_blocks, seed) in [(1, 1), (7, 2), (64 / ty.block_size().min(64) * 3 + 1, 3)] {
                let bytes = random_blocks(ty, n_blocks, seed);
                let n = n_blocks * ty.block_size();
                let (mut a, mut b) = (vec![f32::NAN; n], vec![f32::NAN; n]);
                decode(ty, &bytes, &mut a).unwrap();
                decode_portable(ty, &bytes, &mut b).unwrap();
                for (i, (x, y)) in a.iter().zip(&b).enumerate() {
                    assert_eq!(x.to_bits(), y.to_bits(), "{ty}[{i}]: {x} vs {y}");
                }
            }
        }
    }
}
