//! Marian (`model_type` marian, the Opus-MT translators) following transformers' `modeling_marian.py`: BART's
//! post-LN blocks and weight names, with fixed sinusoidal positions whose sines fill the first half of the vector
//! and cosines the second ([`PositionKind::SinusoidalHalves`](crate::model::embed::PositionKind)), embeddings ×
//! √d_model (`scale_embedding`), no `layernorm_embedding`, swish (SiLU), one embedding table shared by encoder,
//! decoder and LM head, and `final_logits_bias`. The decoder starts from `<pad>`.

use super::bart::{Family, load_family};
use crate::Result;
use crate::model::Arch;
use crate::model::config::Origin;
use crate::model::encdec::EncoderDecoder;
use crate::tokenize::Tokenizer;
use crate::weights::safetensors::SafeTensors;

/// Load a Marian folder's opened parts.
pub fn load(
    config: &str,
    file: &str,
    st: &SafeTensors,
    tokenizer: Tokenizer,
    origin: Origin,
) -> Result<EncoderDecoder> {
    let marian = Family {
        arch: Arch::Marian,
        learned_positions: false,
        note: "Marian: post-LN, sinusoidal positions (sines | cosines), embeddings × √d_model",
    };
    load_family(&marian, config, file, st, tokenizer, origin)
}
