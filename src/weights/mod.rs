//! Weight sources: memory-mapped files parsed with every size and offset checked before use.

pub mod dequant;
pub mod gguf;
mod gguf_parse;
pub mod gguf_types;
pub mod safetensors;
mod safetensors_header;
pub mod source;

pub use dequant::GgmlType;
pub use gguf::{Gguf, GgufValue, TensorInfo};
