//! Marian (`model_type` marian, the Opus-MT translators) following transformers' `modeling_marian.py`: BART's
//! post-LN blocks and weight names, with fixed sinusoidal positions whose sines fill the first half of the vector
//! and cosines the second ([`PositionKind::SinusoidalHalves`](crate::model::embed::PositionKind)), embeddings ×
//! √d_model (`scale_embedding`), no `layernorm_embedding`, swish (SiLU), one embedding table shared by encoder,
//! decoder and LM head, and `final_logits_bias`. The decoder starts from `<pad>`.

use super::bart::Family;
use crate::model::Arch;

/// Marian: loaded by [`super::bart::load_family`].
pub const MARIAN: Family = Family {
    arch: Arch::Marian,
    learned_positions: false,
    note: "Marian: post-LN, sinusoidal positions (sines | cosines), embeddings × √d_model",
};
