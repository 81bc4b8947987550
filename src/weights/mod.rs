//! Weight sources: memory-mapped files parsed with every size and offset checked before use.

pub mod dequant;
pub mod gguf;
pub mod safetensors;
pub mod source;

pub use dequant::GgmlType;
pub use gguf::{Gguf, GgufValue, TensorInfo};
