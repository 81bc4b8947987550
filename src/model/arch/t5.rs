//! T5 (`model_type` t5) as an encoder–decoder on the block engine, following transformers' `modeling_t5.py`:
//!
//! - no positional embeddings: the first block of each stack owns `relative_attention_bias` `[buckets, heads]`, and
//!   the bias it gives every (query, key) pair is added to the scores of every block of that stack
//!   ([`RelativeBias`]; bidirectional buckets in the encoder, causal buckets in the decoder); cross-attention has no
//!   position bias;
//! - no `1/√d` scaling of the scores; `d_kv × num_heads` may differ from `d_model`; no projection has a bias;
//! - pre-LN blocks with T5LayerNorm (RMSNorm: no mean, no bias), and a final norm after each stack
//!   (`encoder.final_layer_norm` before cross-attention reads the encoder, `decoder.final_layer_norm` before the LM
//!   head);
//! - `feed_forward_proj`: `relu` (`wi`, `wo`) or `gated-gelu` (`wi_0` through gelu_new = tanh GELU, times `wi_1`,
//!   then `wo`), or another `[gated-]activation`;
//! - tied embeddings (`tie_word_embeddings` absent or true): the LM head is `shared.weight` and the decoder output is
//!   scaled by `d_model^−½` first; untied (T5 v1.1, FLAN-T5): `lm_head.weight`, no scaling;
//! - the decoder starts from `decoder_start_token_id` (= `<pad>`, 0).

use crate::model::attention::AttnWeights;
use crate::model::block::{Block, Cross, Linear, Mlp, Norm, Placement};
use crate::model::config::{HfFolder, hf_activation, parse_config};
use crate::model::embed::{Embeddings, PositionKind, TokenTable};
use crate::model::encdec::{EncoderDecoder, ScoreBias, stacks};
use crate::model::head::LmHead;
use crate::model::{Arch, ModelInfo};
use crate::numeric::ops::Activation;
use crate::tokenize::Tokenizer;
use crate::weights::source::Vb;
use crate::{Error, Result};
use ndarray::{Array2, Array3};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
pub struct Config {
    pub vocab_size: usize,
    pub d_model: usize,
    pub d_kv: usize,
    pub d_ff: usize,
    pub num_layers: usize,
    #[serde(default)]
    pub num_decoder_layers: Option<usize>,
    pub num_heads: usize,
    #[serde(default = "default_buckets")]
    pub relative_attention_num_buckets: usize,
    #[serde(default = "default_max_distance")]
    pub relative_attention_max_distance: usize,
    #[serde(default = "default_eps")]
    pub layer_norm_epsilon: f64,
    #[serde(default = "default_ff")]
    pub feed_forward_proj: String,
    #[serde(default)]
    pub tie_word_embeddings: Option<bool>,
    #[serde(default)]
    pub decoder_start_token_id: Option<u32>,
    #[serde(default)]
    pub pad_token_id: Option<u32>,
    #[serde(default = "default_eos")]
    pub eos_token_id: u32,
    /// The longest input attn accepts (relative positions have no table limit; T5 was trained on 512).
    #[serde(default = "default_positions")]
    pub n_positions: usize,
}

fn default_buckets() -> usize {
    32
}
fn default_max_distance() -> usize {
    128
}
fn default_eps() -> f64 {
    1e-6
}
fn default_ff() -> String {
    "relu".into()
}
fn default_eos() -> u32 {
    1
}
fn default_positions() -> usize {
    512
}

/// transformers' `T5Attention._relative_position_bucket` of `relative = key position − query position`, in the
/// same float32 steps (so the logarithmic buckets match at their edges).
pub fn relative_bucket(
    relative: i64,
    bidirectional: bool,
    num_buckets: usize,
    max_distance: usize,
) -> usize {
    let mut buckets = num_buckets;
    let mut bucket = 0;
    let distance = if bidirectional {
        buckets /= 2;
        if relative > 0 {
            bucket += buckets;
        }
        relative.unsigned_abs() as usize
    } else {
        (-relative.min(0)) as usize
    };
    let max_exact = buckets / 2;
    if distance < max_exact {
        return bucket + distance;
    }
    let log_ratio = ((max_distance as f64) / (max_exact as f64)).ln() as f32;
    let large =
        (distance as f32 / max_exact as f32).ln() / log_ratio * (buckets - max_exact) as f32;
    // `.to(torch.long)` truncates toward zero.
    let large = max_exact + large.max(0.0) as usize;
    bucket + large.min(buckets - 1)
}

/// T5's relative position bias: a learned scalar per (bucket, head), the same for every block of a stack.
#[derive(Debug, Clone)]
pub struct RelativeBias {
    /// `[num_buckets, heads]` (`relative_attention_bias.weight`).
    pub table: Array2<f32>,
    /// Encoder: both directions have their own buckets; decoder: keys after the query share bucket 0 (masked).
    pub bidirectional: bool,
    pub max_distance: usize,
}

impl ScoreBias for RelativeBias {
    fn bias(&self, n_query: usize, n_key: usize) -> Array3<f32> {
        let (buckets, heads) = self.table.dim();
        let mut out = Array3::zeros((heads, n_query, n_key));
        for i in 0..n_query {
            for j in 0..n_key {
                let b = relative_bucket(
                    j as i64 - i as i64,
                    self.bidirectional,
                    buckets,
                    self.max_distance,
                );
                for h in 0..heads {
                    out[[h, i, j]] = self.table[[b.min(buckets - 1), h]];
                }
            }
        }
        out
    }
}

/// The feed-forward activation and whether it is gated, from `feed_forward_proj`.
fn feed_forward(file: &str, proj: &str) -> Result<(Activation, bool)> {
    if proj == "gated-gelu" {
        // transformers keeps this old name for gelu_new (the tanh approximation).
        return Ok((Activation::GeluTanh, true));
    }
    let (name, gated) = match proj.strip_prefix("gated-") {
        Some(act) => (act, true),
        None => (proj, false),
    };
    Ok((hf_activation(file, "feed_forward_proj", name)?, gated))
}

/// Load a T5 folder's opened parts.
pub fn load(folder: HfFolder) -> Result<EncoderDecoder> {
    let (file, st, tokenizer, origin) =
        (folder.file, folder.weights, folder.tokenizer, folder.origin);
    let cfg: Config = parse_config(folder.config, file)?;
    let (d, h, hd, f) = (cfg.d_model, cfg.num_heads, cfg.d_kv, cfg.d_ff);
    for (key, v) in [
        ("d_model", d),
        ("num_heads", h),
        ("d_kv", hd),
        ("d_ff", f),
        (
            "relative_attention_num_buckets",
            cfg.relative_attention_num_buckets,
        ),
    ] {
        if v == 0 {
            return Err(Error::Config(format!(
                "{file}: `{key}` is 0; it must be positive"
            )));
        }
    }
    let dec_layers = cfg.num_decoder_layers.unwrap_or(cfg.num_layers);
    for (key, n) in [
        ("num_layers", cfg.num_layers),
        ("num_decoder_layers", dec_layers),
    ] {
        if n == 0 || n > crate::model::config::MAX_HF_LAYERS {
            return Err(Error::Config(format!(
                "{file}: `{key}` {n} must be between 1 and {}",
                crate::model::config::MAX_HF_LAYERS
            )));
        }
    }
    let eps = cfg.layer_norm_epsilon as f32;
    let (act, gated) = feed_forward(file, &cfg.feed_forward_proj)?;
    let root = Vb::new(st);
    let names = ["q", "k", "v", "o"];
    let inner = h * hd;
    let stack = |side: &str, n: usize, cross: bool| -> Result<Vec<Block>> {
        (0..n)
            .map(|i| {
                let vb = root.pp(format!("{side}.block.{i}.layer"));
                // Sub-layers: 0 self-attention, then 1 cross-attention in the decoder, then the feed-forward.
                let ff = vb.pp(if cross { "2" } else { "1" });
                let dense = ff.pp("DenseReluDense");
                Ok(Block {
                    ln_attn: Norm::rms_norm(&vb, "0.layer_norm.weight", d, eps)?,
                    attn: AttnWeights::load(&vb.pp("0.SelfAttention"), names, d, inner, false)?,
                    cross: if cross {
                        Some(Cross {
                            norm: Norm::rms_norm(&vb, "1.layer_norm.weight", d, eps)?,
                            attn: AttnWeights::load(
                                &vb.pp("1.EncDecAttention"),
                                names,
                                d,
                                inner,
                                false,
                            )?,
                        })
                    } else {
                        None
                    },
                    ln_mlp: Norm::rms_norm(&ff, "layer_norm.weight", d, eps)?,
                    mlp: if gated {
                        Mlp::Gated {
                            gate: Linear::load(&dense, "wi_0", f, d, false)?,
                            up: Linear::load(&dense, "wi_1", f, d, false)?,
                            act,
                            down: Linear::load(&dense, "wo", d, f, false)?,
                        }
                    } else {
                        Mlp::Plain {
                            up: Linear::load(&dense, "wi", f, d, false)?,
                            act,
                            down: Linear::load(&dense, "wo", d, f, false)?,
                        }
                    },
                })
            })
            .collect()
    };
    let encoder = stack("encoder", cfg.num_layers, false)?;
    let decoder = stack("decoder", dec_layers, true)?;
    let bias = |side: &str, bidirectional: bool| -> Result<Box<dyn ScoreBias>> {
        let name = format!("{side}.block.0.layer.0.SelfAttention.relative_attention_bias.weight");
        Ok(Box::new(RelativeBias {
            table: root
                .table(&name, cfg.relative_attention_num_buckets, h)?
                .view()
                .to_owned(),
            bidirectional,
            max_distance: cfg.relative_attention_max_distance,
        }))
    };
    let embed = || -> Result<Embeddings> {
        Ok(Embeddings::plain(
            TokenTable::load(&root, "shared.weight", cfg.vocab_size, d)?,
            d,
            1.0,
            PositionKind::None,
            cfg.n_positions,
        ))
    };
    // transformers' T5Config: `scale_decoder_outputs = tie_word_embeddings is not False`.
    let tied = cfg.tie_word_embeddings != Some(false);
    let unembed = if tied {
        TokenTable::load(&root, "shared.weight", cfg.vocab_size, d)?.unembedding()?
    } else {
        root.matrix("lm_head.weight", cfg.vocab_size, d)?
    };
    let start = cfg.decoder_start_token_id.or(cfg.pad_token_id).unwrap_or(0);
    let info = ModelInfo {
        spec: origin.spec,
        name: origin.name,
        arch: Arch::T5,
        n_layers: cfg.num_layers,
        n_heads: h,
        n_kv_heads: h,
        d_model: d,
        d_ff: f,
        vocab_size: cfg.vocab_size,
        max_len: cfg.n_positions,
        n_params: crate::model::config::count_params(st),
        causal: false,
        positional: crate::trace::PositionalKind::Relative,
        tokenizer: tokenizer.description().to_string(),
        source: origin.source,
        notes: vec![
            format!(
                "encoder–decoder: {} encoder + {dec_layers} decoder layers (T5: pre-LN RMSNorm, relative position \
                 bias of {} buckets up to distance {}, unscaled scores, d_kv {hd} × {h} heads)",
                cfg.num_layers,
                cfg.relative_attention_num_buckets,
                cfg.relative_attention_max_distance
            ),
            format!(
                "feed-forward `{}`; LM head {}",
                crate::tokenize::escape_label(&cfg.feed_forward_proj),
                if tied {
                    "tied to the embedding, decoder output × d_model^−½"
                } else {
                    "untied (lm_head.weight)"
                }
            ),
        ],
    };
    let (encoder, decoder) = stacks(Placement::Pre, [(h, hd); 2], Some(1.0), [encoder, decoder]);
    Ok(EncoderDecoder {
        info,
        source_tokenizer: Tokenizer::new(tokenizer.inner().clone(), tokenizer.description())?,
        target_tokenizer: tokenizer,
        enc_embed: embed()?,
        encoder,
        enc_norm: Some(Norm::rms_norm(
            &root,
            "encoder.final_layer_norm.weight",
            d,
            eps,
        )?),
        dec_embed: embed()?,
        decoder,
        head: LmHead {
            norm: Some(Norm::rms_norm(
                &root,
                "decoder.final_layer_norm.weight",
                d,
                eps,
            )?),
            unembed,
            bias: None,
            scale: if tied { (d as f32).powf(-0.5) } else { 1.0 },
            tied,
        },
        enc_bias: Some(bias("encoder", true)?),
        dec_bias: Some(bias("decoder", false)?),
        decoder_start: start,
        eos: cfg.eos_token_id,
    })
}

#[cfg(test)]
mod tests {
    use super::relative_bucket;

    #[test]
    fn buckets_match_transformers() {
        // Values from transformers' T5Attention._relative_position_bucket (32 buckets, max distance 128).
        let enc: Vec<usize> = [-200, -128, -20, -8, -7, -1, 0, 1, 7, 8, 20, 128, 200]
            .iter()
            .map(|&r| relative_bucket(r, true, 32, 128))
            .collect();
        assert_eq!(enc, [15, 15, 10, 8, 7, 1, 0, 17, 23, 24, 26, 31, 31]);
        let dec: Vec<usize> = [-200, -20, -16, -15, -1, 0, 5]
            .iter()
            .map(|&r| relative_bucket(r, false, 32, 128))
            .collect();
        assert_eq!(dec, [31, 17, 16, 15, 1, 0, 0]);
    }
}
