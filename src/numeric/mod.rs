//! Numeric kernels, a leaf: elementwise ops, norms, softmax, RoPE, and the pack-once matrix kernel.

pub mod ops;
pub mod packed;
