//! BART (`model_type` bart) as an encoder–decoder on the block engine, following transformers' `modeling_bart.py`:
//! learned positions read at `position + 2`, `layernorm_embedding` after token (× √d_model when `scale_embedding`) +
//! position, post-LN blocks (`self_attn_layer_norm`, `encoder_attn_layer_norm`, `final_layer_norm`), every
//! projection with a bias, attention scaled by `1/√d_head`, the configured activation (GELU), and an LM head tied
//! to `model.shared.weight` plus `final_logits_bias`.

use crate::model::attention::{AttnSpec, AttnWeights};
use crate::model::block::{Block, Cross, Linear, Mlp, Norm, Placement, Stack};
use crate::model::config::{Origin, hf_activation, parse_config};
use crate::model::embed::{Embeddings, PositionKind, TokenTable};
use crate::model::encdec::EncoderDecoder;
use crate::model::head::LmHead;
use crate::model::{Arch, ModelInfo};
use crate::numeric::packed::PackedMatrix;
use crate::tokenize::Tokenizer;
use crate::weights::safetensors::SafeTensors;
use crate::weights::source::Vb;
use crate::{Error, Result};
use serde::Deserialize;

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
}

const LN_EPS: f32 = 1e-5;

fn attn(vb: &Vb, d: usize) -> Result<AttnWeights> {
    Ok(AttnWeights {
        q: Linear::load(vb, "q_proj", d, d, true)?,
        k: Linear::load(vb, "k_proj", d, d, true)?,
        v: Linear::load(vb, "v_proj", d, d, true)?,
        o: Linear::load(vb, "out_proj", d, d, true)?,
    })
}

/// Load a BART folder's opened parts.
pub fn load(
    config: &str,
    file: &str,
    st: &SafeTensors,
    tokenizer: Tokenizer,
    origin: Origin,
) -> Result<EncoderDecoder> {
    let cfg: Config = parse_config(config, file)?;
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
    let act = hf_activation(file, "activation_function", &cfg.activation_function)?;
    let root = Vb::new(st);
    let m = root.pp("model");
    let layer = |vb: &Vb, f: usize, cross: bool| -> Result<Block> {
        Ok(Block {
            ln_attn: Norm::layer_norm(vb, "self_attn_layer_norm", d, LN_EPS)?,
            attn: attn(&vb.pp("self_attn"), d)?,
            cross: if cross {
                Some(Cross {
                    norm: Norm::layer_norm(vb, "encoder_attn_layer_norm", d, LN_EPS)?,
                    attn: attn(&vb.pp("encoder_attn"), d)?,
                })
            } else {
                None
            },
            ln_mlp: Norm::layer_norm(vb, "final_layer_norm", d, LN_EPS)?,
            mlp: Mlp::Plain {
                up: Linear::load(vb, "fc1", f, d, true)?,
                act,
                down: Linear::load(vb, "fc2", d, f, true)?,
            },
        })
    };
    let encoder = (0..cfg.encoder_layers)
        .map(|i| {
            layer(
                &m.pp(format!("encoder.layers.{i}")),
                cfg.encoder_ffn_dim,
                false,
            )
        })
        .collect::<Result<Vec<_>>>()?;
    let decoder = (0..cfg.decoder_layers)
        .map(|i| {
            layer(
                &m.pp(format!("decoder.layers.{i}")),
                cfg.decoder_ffn_dim,
                true,
            )
        })
        .collect::<Result<Vec<_>>>()?;
    let shared = m.table("shared.weight", cfg.vocab_size, d)?;
    let n_pos = cfg.max_position_embeddings;
    let embed = |side: &str| -> Result<Embeddings> {
        let vb = m.pp(side);
        Ok(Embeddings {
            token: TokenTable::Table(m.table("shared.weight", cfg.vocab_size, d)?),
            scale: if cfg.scale_embedding {
                (d as f32).sqrt()
            } else {
                1.0
            },
            position: PositionKind::Learned {
                table: vb.table("embed_positions.weight", n_pos + 2, d)?,
                offset: 2,
            },
            segments: None,
            norm: Some(Norm::layer_norm(&vb, "layernorm_embedding", d, LN_EPS)?),
            d_model: d,
            max_positions: n_pos,
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
        arch: Arch::Bart,
        n_layers: cfg.encoder_layers,
        n_heads: eh,
        n_kv_heads: eh,
        d_model: d,
        d_ff: cfg.encoder_ffn_dim,
        vocab_size: cfg.vocab_size,
        max_len: n_pos,
        n_params: crate::model::config::count_params(st),
        causal: false,
        positional: crate::trace::PositionalKind::Learned,
        tokenizer: tokenizer.description().to_string(),
        source: origin.source,
        notes: vec![format!(
            "encoder–decoder: {} encoder + {} decoder layers (BART, post-LN, learned positions + 2)",
            cfg.encoder_layers, cfg.decoder_layers
        )],
    };
    Ok(EncoderDecoder {
        info,
        source_tokenizer: Tokenizer::new(tokenizer.inner().clone(), tokenizer.description())?,
        target_tokenizer: tokenizer,
        enc_embed: embed("encoder")?,
        encoder: Stack {
            placement: Placement::Post,
            attn: AttnSpec::standard(eh, d / eh, false),
            cross: None,
            blocks: encoder,
        },
        dec_embed: embed("decoder")?,
        decoder: Stack {
            placement: Placement::Post,
            attn: AttnSpec::standard(dh, d / dh, true),
            cross: Some(AttnSpec::standard(dh, d / dh, false)),
            blocks: decoder,
        },
        head: LmHead {
            norm: None,
            unembed: PackedMatrix::from_view(&shared.view()).into(),
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
