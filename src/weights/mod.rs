//! Weight sources: memory-mapped files parsed with every size and offset checked before use.
pub mod safetensors;
