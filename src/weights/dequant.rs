//! GGML tensor types and their dequantization to f32: the decoders live in the leaf [`crate::numeric::quant`] (the
//! quantized matrix kernel decodes with the same functions); this module keeps the loader's names.

pub use crate::numeric::quant::{DequantError, GgmlType, QK_K, dequantize};
