//! One file per architecture: its configuration, its weight mapping and its embeddings.

pub mod bart;
pub mod bert;
pub mod gpt2;
pub mod llama;
pub mod llama_hf;
pub mod marian;
pub mod t5;
pub mod textbook;
pub mod textbook_dates;
pub mod textbook_encdec;
