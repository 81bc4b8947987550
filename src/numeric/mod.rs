//! Numeric kernels, a leaf: elementwise ops, norms, softmax, RoPE, the pack-once matrix kernel, the
//! quantized (GGML block) matrix kernel and the [`Matrix`] enum over both.

pub mod cpu;
pub mod fast;
pub mod input;
pub mod matrix;
pub mod ops;
pub mod pack;
pub mod packed;
pub mod quant;

pub use matrix::Matrix;
