//! BART (`model_type` bart) as an encoder–decoder on the block engine, following transformers' `modeling_bart.py`:
//! learned positions read at `position + 2`, `layernorm_embedding` after token (× √d_model when `scale_embedding`) +
//! position, post-LN blocks (`self_attn_layer_norm`, `encoder_attn_layer_norm`, `final_layer_norm`), every
//! projection with a bias, attention scaled by `1/√d_head`, the configured activation (GELU), and an LM head tied
//! to `model.shared.weight` plus `final_logits_bias`. Marian ([`super::marian`]) is the same model with other
//! positions and no embedding norm; both go through [`load_family`] with their [`Family`].

use crate::model::attention::AttnWeights;
use crate::model::block::{Block, Cross, Linear, Mlp, Norm, Placement};
use crate::model::config::{HfFolder, hf_activation, parse_config};
use crate::model::embed::{Embeddings, PositionKind, TokenTable};
use crate::model::encdec::{EncoderDecoder, stacks};
use crate::model::head::LmHead;
use crate::model::{Arch, ModelInfo};
use crate::tokenize::Tokenizer;
use crate::trace::PositionalKind;
use crate::weights::source::Vb;
use crate::{Error, Result};
use serde::Deserialize;

/// The config.json fields BART and Marian share.
#[derive(Debug, Deserialize)]
pub struct Config {
    pub vocab_size: usize,
    pub d_model: usize,
    pub encoder_layers: usize,
    pub decoder_layers: usize,
    pub encoder_attention_heads: usize,
    pub decoder_attention_heads: usize,
    pub encoder_ffn_dim: usize,
    pub decoder_ffn_dim: usize,
    pub max_position_embeddings: usize,
    pub activation_function: String,
    #[serde(default)]
    pub scale_embedding: bool,
    pub decoder_start_token_id: u32,
    pub eos_token_id: u32,
    #[serde(default = "yes")]
    pub share_encoder_decoder_embeddings: bool,
}

fn yes() -> bool {
    true
}

const LN_EPS: f32 = 1e-5;

/// What sets a member of the BART family apart.
pub struct Family {
    pub arch: Arch,
    /// BART: learned rows at `i + 2` and `layernorm_embedding`; Marian: sines|cosines and no embedding norm.
    pub learned_positions: bool,
    /// For `attn info`.
    pub note: &'static str,
}

/// BART.
pub const BART: Family = Family {
    arch: Arch::Bart,
    learned_positions: true,
    note: "BART: post-LN, learned positions + 2, layernorm_embedding",
};

/// Load a BART-family folder (`model.shared.weight`, `model.{encoder,decoder}.layers.{i}`, `final_logits_bias`).
pub fn load_family(family: &Family, folder: HfFolder) -> Result<EncoderDecoder> {
    let (file, st, tokenizer, origin) =
        (folder.file, folder.weights, folder.tokenizer, folder.origin);
    let cfg: Config = parse_config(folder.config, file)?;
    let d = cfg.d_model;
    for (key, h) in [
        ("encoder_attention_heads", cfg.encoder_attention_heads),
        ("decoder_attention_heads", cfg.decoder_attention_heads),
    ] {
        if h == 0 || !d.is_multiple_of(h) {
            return Err(Error::Config(format!(
                "{file}: `d_model` {d} is not a positive multiple of `{key}` {h}"
            )));
        }
    }
    if !cfg.share_encoder_decoder_embeddings {
        return Err(Error::Config(format!(
            "{file}: `share_encoder_decoder_embeddings` false (separate source and target vocabularies) is not \
             supported"
        )));
    }
    let act = hf_activation(file, "activation_function", &cfg.activation_function)?;
    let root = Vb::new(st);
    let m = root.pp("model");
    let names = ["q_proj", "k_proj", "v_proj", "out_proj"];
    let stack = |side: &str, n: usize, f: usize, cross: bool| -> Result<Vec<Block>> {
        (0..n)
            .map(|i| {
                let vb = m.pp(format!("{side}.layers.{i}"));
                Ok(Block {
                    ln_attn: Norm::layer_norm(&vb, "self_attn_layer_norm", d, LN_EPS)?,
                    attn: AttnWeights::load(&vb.pp("self_attn"), names, d, d, true)?,
                    cross: if cross {
                        Some(Cross {
                            norm: Norm::layer_norm(&vb, "encoder_attn_layer_norm", d, LN_EPS)?,
                            attn: AttnWeights::load(&vb.pp("encoder_attn"), names, d, d, true)?,
                        })
                    } else {
                        None
                    },
                    ln_mlp: Norm::layer_norm(&vb, "final_layer_norm", d, LN_EPS)?,
                    mlp: Mlp::Plain {
                        up: Linear::load(&vb, "fc1", f, d, true)?,
                        act,
                        down: Linear::load(&vb, "fc2", d, f, true)?,
                    },
                })
            })
            .collect()
    };
    let encoder = stack("encoder", cfg.encoder_layers, cfg.encoder_ffn_dim, false)?;
    let decoder = stack("decoder", cfg.decoder_layers, cfg.decoder_ffn_dim, true)?;
    let unembed = TokenTable::load(&m, "shared.weight", cfg.vocab_size, d)?.unembedding()?;
    let n_pos = cfg.max_position_embeddings;
    let scale = if cfg.scale_embedding {
        (d as f32).sqrt()
    } else {
        1.0
    };
    let embed = |side: &str| -> Result<Embeddings> {
        let vb = m.pp(side);
        let token = TokenTable::load(&m, "shared.weight", cfg.vocab_size, d)?;
        if !family.learned_positions {
            return Ok(Embeddings::plain(
                token,
                d,
                scale,
                PositionKind::SinusoidalHalves,
                n_pos,
            ));
        }
        let position = PositionKind::Learned {
            table: vb.table("embed_positions.weight", n_pos + 2, d)?,
            offset: 2,
        };
        Ok(Embeddings {
            norm: Some(Norm::layer_norm(&vb, "layernorm_embedding", d, LN_EPS)?),
            ..Embeddings::plain(token, d, scale, position, n_pos)
        })
    };
    let bias = if root.contains("final_logits_bias") {
        let t = root.table("final_logits_bias", 1, cfg.vocab_size)?;
        Some(t.view().row(0).to_owned())
    } else {
        None
    };
    let (eh, dh) = (cfg.encoder_attention_heads, cfg.decoder_attention_heads);
    let info = ModelInfo {
        spec: origin.spec,
        name: origin.name,
        arch: family.arch,
        n_layers: cfg.encoder_layers,
        n_heads: eh,
        n_kv_heads: eh,
        d_model: d,
        d_ff: cfg.encoder_ffn_dim,
        vocab_size: cfg.vocab_size,
        max_len: n_pos,
        n_params: crate::model::config::count_params(st),
        causal: false,
        positional: if family.learned_positions {
            PositionalKind::Learned
        } else {
            PositionalKind::Sinusoidal
        },
        tokenizer: tokenizer.description().to_string(),
        source: origin.source,
        notes: vec![format!(
            "encoder–decoder: {} encoder + {} decoder layers ({})",
            cfg.encoder_layers, cfg.decoder_layers, family.note
        )],
    };
    let (encoder, decoder) = stacks(
        Placement::Post,
        [(eh, d / eh), (dh, d / dh)],
        None,
        [encoder, decoder],
    );
    Ok(EncoderDecoder {
        info,
        source_tokenizer: Tokenizer::new(tokenizer.inner().clone(), tokenizer.description())?,
        target_tokenizer: tokenizer,
        enc_embed: embed("encoder")?,
        encoder,
        enc_norm: None,
        dec_embed: embed("decoder")?,
        decoder,
        head: LmHead {
            norm: None,
            unembed,
            bias,
            scale: 1.0,
            tied: true,
        },
        enc_bias: None,
        dec_bias: None,
        decoder_start: cfg.decoder_start_token_id,
        eos: cfg.eos_token_id,
    })
}
