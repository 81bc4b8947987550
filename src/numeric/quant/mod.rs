//! GGML block formats: the type table, their decoding to f32 (portable and AVX2, bit-identical), and
//! [`QuantMatrix`], a weight matrix that stays in its file's format and is decoded inside the matrix kernel.

pub mod decode;
#[cfg(target_arch = "x86_64")]
mod fused;
pub mod matrix;
#[cfg(target_arch = "x86_64")]
mod simd;
pub mod types;

pub use decode::{DequantError, decode, decode_portable, dequantize};
pub use matrix::{QuantMatrix, SharedBytes};
pub use types::{GgmlType, QK_K};
