//! Llama-family decoders from Hugging Face folders (`model_type: llama`: SmolLM2, TinyLlama, Llama 2 style):
//! config.json + model.safetensors + tokenizer.json. The same blocks as the GGUF loader ([`super::llama`]), with
//! transformers' tensor names; Q and K rows are already in rotate-half order (only llama.cpp's converter permutes
//! them). F16/BF16 weights stay in their dtype.

use super::llama::{About, LlamaConfig, Names, build};
use crate::model::Transformer;
use crate::model::config::HfFolder;
use crate::model::embed::TokenTable;
use crate::weights::source::Vb;
use crate::{Error, Result};
use serde::Deserialize;

/// transformers' names (`LlamaForCausalLM`).
const HF_NAMES: Names = Names {
    embed: "model.embed_tokens.weight",
    blocks: "model.layers",
    attn_norm: "input_layernorm.weight",
    q: "self_attn.q_proj.weight",
    k: "self_attn.k_proj.weight",
    v: "self_attn.v_proj.weight",
    o: "self_attn.o_proj.weight",
    mlp_norm: "post_attention_layernorm.weight",
    gate: "mlp.gate_proj.weight",
    up: "mlp.up_proj.weight",
    down: "mlp.down_proj.weight",
    out_norm: "model.norm.weight",
    output: "lm_head.weight",
    permuted: false,
};

/// The config.json fields the forward pass reads (transformers' `LlamaConfig` defaults where a field may be absent).
#[derive(Debug, Deserialize)]
struct HfLlamaConfig {
    vocab_size: usize,
    hidden_size: usize,
    intermediate_size: usize,
    num_hidden_layers: usize,
    num_attention_heads: usize,
    num_key_value_heads: Option<usize>,
    head_dim: Option<usize>,
    #[serde(default = "default_eps")]
    rms_norm_eps: f64,
    /// transformers 4: `rope_theta` (+ `rope_scaling`); transformers 5: `rope_parameters {rope_theta, rope_type}`.
    rope_theta: Option<f64>,
    #[serde(default)]
    rope_parameters: Option<RopeParameters>,
    #[serde(default = "default_positions")]
    max_position_embeddings: usize,
    #[serde(default)]
    tie_word_embeddings: bool,
    #[serde(default = "default_act")]
    hidden_act: String,
    #[serde(default)]
    rope_scaling: Option<serde_json::Value>,
    #[serde(default)]
    attention_bias: bool,
    #[serde(default)]
    mlp_bias: bool,
}

#[derive(Debug, Deserialize)]
struct RopeParameters {
    rope_theta: Option<f64>,
    #[serde(default = "default_rope_type")]
    rope_type: String,
}

fn default_rope_type() -> String {
    "default".into()
}
fn default_eps() -> f64 {
    1e-6
}
fn default_theta() -> f64 {
    10000.0
}
fn default_positions() -> usize {
    2048
}
fn default_act() -> String {
    "silu".into()
}

impl HfLlamaConfig {
    /// The shared [`LlamaConfig`], or an error naming `file` and the field the forward pass cannot honour.
    fn validate(&self, file: &str) -> Result<LlamaConfig> {
        let bad = |m: String| Err(Error::Config(format!("{file}: {m}")));
        let n_kv = self.num_key_value_heads.unwrap_or(self.num_attention_heads);
        crate::model::config::hf_sizes!(file, self,
            sizes: [vocab_size, intermediate_size, max_position_embeddings],
            extra: ["num_key_value_heads" = n_kv],
            layers: num_hidden_layers, width: hidden_size / num_attention_heads, eps: rms_norm_eps)?;
        let head_dim = self.hidden_size / self.num_attention_heads;
        if self.head_dim.is_some_and(|h| h != head_dim) {
            return bad(format!(
                "`head_dim` {} differs from hidden_size / num_attention_heads = {head_dim}; only full-width heads \
                 are supported",
                self.head_dim.unwrap_or_default()
            ));
        }
        if !head_dim.is_multiple_of(2) {
            return bad(format!(
                "the head size {head_dim} is odd; rotary embeddings need pairs"
            ));
        }
        if !self.num_attention_heads.is_multiple_of(n_kv) {
            return bad(format!(
                "`num_key_value_heads` {n_kv} does not divide `num_attention_heads` {}",
                self.num_attention_heads
            ));
        }
        if let Some(v) = &self.rope_scaling
            && !v.is_null()
        {
            return bad(format!(
                "`rope_scaling` {} is not supported (plain RoPE only)",
                crate::tokenize::escape_label(&v.to_string())
            ));
        }
        if self.attention_bias || self.mlp_bias {
            return bad("`attention_bias` / `mlp_bias` true is not supported".into());
        }
        if self.hidden_act != "silu" {
            return bad(format!(
                "`hidden_act` `{}` is not supported (Llama's SwiGLU uses silu)",
                crate::tokenize::escape_label(&self.hidden_act)
            ));
        }
        if let Some(p) = &self.rope_parameters
            && p.rope_type != "default"
        {
            return bad(format!(
                "`rope_parameters.rope_type` `{}` is not supported (plain RoPE only)",
                crate::tokenize::escape_label(&p.rope_type)
            ));
        }
        let theta = self
            .rope_parameters
            .as_ref()
            .and_then(|p| p.rope_theta)
            .or(self.rope_theta)
            .unwrap_or_else(default_theta);
        if !(theta.is_finite() && theta > 1.0) {
            return bad(format!(
                "`rope_theta` {theta} must be a finite number above 1"
            ));
        }
        if self.rms_norm_eps <= 0.0 {
            return bad(format!(
                "`rms_norm_eps` {} must be positive",
                self.rms_norm_eps
            ));
        }
        Ok(LlamaConfig {
            n_layers: self.num_hidden_layers,
            d_model: self.hidden_size,
            d_ff: self.intermediate_size,
            n_heads: self.num_attention_heads,
            n_kv_heads: n_kv,
            head_dim,
            rope_base: theta as f32,
            eps: self.rms_norm_eps as f32,
            context_length: self.max_position_embeddings,
        })
    }
}

/// Build from an opened folder (see [`crate::model::load::HfLoader::Single`]).
pub fn load(folder: HfFolder) -> Result<Transformer> {
    let (config_file, weights) = (folder.file, folder.weights);
    let hf: HfLlamaConfig = folder.parse()?;
    let cfg = hf.validate(config_file)?;
    let vb = Vb::new(weights);
    let token = TokenTable::load(&vb, HF_NAMES.embed, hf.vocab_size, cfg.d_model)?;
    if !hf.tie_word_embeddings && !weights.contains(HF_NAMES.output) {
        return Err(Error::Config(format!(
            "{config_file}: `tie_word_embeddings` is false but {} has no `{}`",
            weights.name(),
            HF_NAMES.output
        )));
    }
    build(
        &vb,
        &cfg,
        &HF_NAMES,
        token,
        hf.tie_word_embeddings,
        folder.tokenizer,
        |_| About {
            spec: folder.origin.spec,
            name: folder.origin.name,
            source: folder.origin.source,
            weights_note: crate::model::config::dtype_note(weights),
            n_params: crate::model::count_params(weights),
        },
    )
}
