//! GGML tensor types and their dequantization to f32.
//!
//! Block layouts follow ggml (`ggml-common.h`) as implemented by the `gguf` Python package's `quants.py`; the order of
//! floating-point operations mirrors that reference (f32 throughout, no fused multiply-add) so results match it
//! bit for bit. Each function takes whole blocks of raw little-endian bytes and writes `block_size` floats per block.

use half::f16;
use half::slice::HalfFloatSliceExt;

/// Elements per block for the "k-quants" (Q2_K … Q8_K).
pub const QK_K: usize = 256;

macro_rules! ggml_types {
    ($( $variant:ident = $id:literal, $name:literal, $block:expr, $size:expr; )*) => {
        /// A GGML tensor element type, with the numeric id GGUF stores.
        #[allow(non_camel_case_types)]
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum GgmlType {
            $( $variant, )*
        }

        impl GgmlType {
            /// Every type this crate knows (can parse); see [`GgmlType::can_dequantize`] for the ones it can read.
            pub const ALL: &'static [GgmlType] = &[$( GgmlType::$variant, )*];

            /// The type with this GGUF id, or `None` for an unknown or removed id.
            pub fn from_id(id: u32) -> Option<GgmlType> {
                match id {
                    $( $id => Some(GgmlType::$variant), )*
                    _ => None,
                }
            }
            /// The id GGUF stores for this type.
            pub fn id(self) -> u32 {
                match self { $( GgmlType::$variant => $id, )* }
            }
            /// The ggml name (`"Q4_K"`, `"F32"`, ...).
            pub fn name(self) -> &'static str {
                match self { $( GgmlType::$variant => $name, )* }
            }
            /// Elements per block (1 for plain types).
            pub fn block_size(self) -> usize {
                match self { $( GgmlType::$variant => $block, )* }
            }
            /// Bytes per block.
            pub fn type_size(self) -> usize {
                match self { $( GgmlType::$variant => $size, )* }
            }
        }
    };
}

ggml_types! {
    F32 = 0, "F32", 1, 4;
    F16 = 1, "F16", 1, 2;
    Q4_0 = 2, "Q4_0", 32, 2 + 16;
    Q4_1 = 3, "Q4_1", 32, 2 + 2 + 16;
    Q5_0 = 6, "Q5_0", 32, 2 + 4 + 16;
    Q5_1 = 7, "Q5_1", 32, 2 + 2 + 4 + 16;
    Q8_0 = 8, "Q8_0", 32, 2 + 32;
    Q8_1 = 9, "Q8_1", 32, 4 + 4 + 32;
    Q2_K = 10, "Q2_K", QK_K, 2 + 2 + QK_K / 16 + QK_K / 4;
    Q3_K = 11, "Q3_K", QK_K, 2 + QK_K / 4 + QK_K / 8 + 12;
    Q4_K = 12, "Q4_K", QK_K, 2 + 2 + QK_K / 2 + 12;
    Q5_K = 13, "Q5_K", QK_K, 2 + 2 + QK_K / 2 + QK_K / 8 + 12;
    Q6_K = 14, "Q6_K", QK_K, 2 + QK_K / 2 + QK_K / 4 + QK_K / 16;
    Q8_K = 15, "Q8_K", QK_K, 4 + QK_K + QK_K / 8;
    IQ2_XXS = 16, "IQ2_XXS", QK_K, 2 + QK_K / 4;
    IQ2_XS = 17, "IQ2_XS", QK_K, 2 + QK_K / 4 + QK_K / 32;
    IQ3_XXS = 18, "IQ3_XXS", QK_K, 2 + QK_K / 4 + QK_K / 8;
    IQ1_S = 19, "IQ1_S", QK_K, 2 + QK_K / 8 + QK_K / 16;
    IQ4_NL = 20, "IQ4_NL", 32, 2 + 16;
    IQ3_S = 21, "IQ3_S", QK_K, 2 + QK_K / 4 + QK_K / 8 + QK_K / 32 + 4;
    IQ2_S = 22, "IQ2_S", QK_K, 2 + QK_K / 4 + QK_K / 16;
    IQ4_XS = 23, "IQ4_XS", QK_K, 2 + 2 + QK_K / 2 + QK_K / 64;
    I8 = 24, "I8", 1, 1;
    I16 = 25, "I16", 1, 2;
    I32 = 26, "I32", 1, 4;
    I64 = 27, "I64", 1, 8;
    F64 = 28, "F64", 1, 8;
    IQ1_M = 29, "IQ1_M", QK_K, QK_K / 8 + QK_K / 16 + QK_K / 32;
    BF16 = 30, "BF16", 1, 2;
    TQ1_0 = 34, "TQ1_0", QK_K, 2 + 4 * 13;
    TQ2_0 = 35, "TQ2_0", QK_K, 2 + 64;
    MXFP4 = 39, "MXFP4", 32, 1 + 16;
}

impl GgmlType {
    /// Whether [`dequantize`] supports this type.
    pub fn can_dequantize(self) -> bool {
        use GgmlType::*;
        matches!(
            self,
            F32 | F16
                | BF16
                | F64
                | I8
                | I16
                | I32
                | Q4_0
                | Q4_1
                | Q5_0
                | Q5_1
                | Q8_0
                | Q2_K
                | Q3_K
                | Q4_K
                | Q5_K
                | Q6_K
        )
    }
}

impl std::fmt::Display for GgmlType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

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
        Q4_K => blocks::<QK_K>(bytes, ts, out, q4_k),
        Q5_K => blocks::<QK_K>(bytes, ts, out, q5_k),
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

#[inline(always)]
fn h(b: &[u8], at: usize) -> f32 {
    f16::from_bits(u16::from_le_bytes([b[at], b[at + 1]])).to_f32()
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

/// The 8 six-bit scales and mins of Q4_K/Q5_K, packed in 12 bytes.
#[inline(always)]
fn k_scale_min(s: &[u8]) -> ([u8; 8], [u8; 8]) {
    let mut sc = [0u8; 8];
    let mut mn = [0u8; 8];
    for j in 0..4 {
        sc[j] = s[j] & 0x3F;
        mn[j] = s[j + 4] & 0x3F;
        sc[j + 4] = (s[j + 8] & 0x0F) | ((s[j] >> 2) & 0x30);
        mn[j + 4] = (s[j + 8] >> 4) | ((s[j + 4] >> 2) & 0x30);
    }
    (sc, mn)
}

/// Q4_K: d, dmin, scales[12], qs[128]; 8 sub-blocks of 32.
fn q4_k(b: &[u8], o: &mut [f32; QK_K]) {
    let (d, dmin) = (h(b, 0), h(b, 2));
    let (sc, mn) = k_scale_min(&b[4..16]);
    let qs = &b[16..144];
    for (sb, o) in o.chunks_exact_mut(32).enumerate() {
        let ds = d * sc[sb] as f32;
        let dm = dmin * mn[sb] as f32;
        let (chunk, shift) = (sb / 2, 4 * (sb % 2));
        for (j, o) in o.iter_mut().enumerate() {
            let q = (qs[chunk * 32 + j] >> shift) & 0x0F;
            *o = ds * q as f32 - dm;
        }
    }
}

/// Q5_K: d, dmin, scales[12], qh[32], qs[128]; 8 sub-blocks of 32.
fn q5_k(b: &[u8], o: &mut [f32; QK_K]) {
    let (d, dmin) = (h(b, 0), h(b, 2));
    let (sc, mn) = k_scale_min(&b[4..16]);
    let qh = &b[16..48];
    let qs = &b[48..176];
    for (sb, o) in o.chunks_exact_mut(32).enumerate() {
        let ds = d * sc[sb] as f32;
        let dm = dmin * mn[sb] as f32;
        let (chunk, shift) = (sb / 2, 4 * (sb % 2));
        for (j, o) in o.iter_mut().enumerate() {
            let q = ((qs[chunk * 32 + j] >> shift) & 0x0F) | (((qh[j] >> sb) & 1) << 4);
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
mod tests {
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
}
