//! BERT-architecture encoders from a Hugging Face folder (`model_type: bert`): BERT, all-MiniLM-L6-v2 and other
//! checkpoints of the same shape.
//!
//! Embedding: `LayerNorm(word[id] + position[i] + token_type[segment])`. Then post-LN blocks:
//! `mid = LayerNorm(x + O·attn(Q x, K x, V x))`, `x' = LayerNorm(mid + W₂·gelu(W₁·mid))`, with exact (erf) GELU
//! unless `hidden_act` says otherwise. No final norm, no causal mask.
//!
//! Weight layout: every projection is nn.Linear, stored `[out, in]`, used as stored. Tensor names are those of
//! transformers' `BertModel`, with or without the `bert.` prefix (`BertFor…` heads save it); old checkpoints that
//! call LayerNorm parameters `gamma`/`beta` are accepted too. The pooler and task heads are not used.
//!
//! Trace: `hidden[0]` is the embedding output (after its LayerNorm), `hidden[l + 1]` the output of block `l` (equal
//! to transformers' `hidden_states`); `mid` is the stream after the first LayerNorm of the block; the update norms
//! are those of the attention output projection and of the second feed-forward matrix (biases included);
//! `Positional::Learned` holds the position-embedding rows that were added.

use crate::model::attention::{AttnSpec, AttnWeights};
use crate::model::block::{Block, Linear, Mlp, Norm, Placement, Stack};
use crate::model::config::HfFolder;
use crate::model::embed::{Embeddings, PositionKind, TokenTable};
use crate::model::{Arch, ModelInfo, Transformer};
use crate::numeric::ops::Activation;
use crate::weights::source::Vb;
use crate::{Error, Result};
use serde::Deserialize;

/// The fields of a BERT config.json that the forward pass needs.
#[derive(Debug, Clone, Deserialize)]
pub struct BertConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    pub max_position_embeddings: usize,
    #[serde(default = "default_type_vocab")]
    pub type_vocab_size: usize,
    #[serde(default = "default_eps")]
    pub layer_norm_eps: f64,
    #[serde(default = "default_act")]
    pub hidden_act: String,
    #[serde(default)]
    pub position_embedding_type: Option<String>,
    #[serde(default)]
    pub is_decoder: bool,
}

fn default_type_vocab() -> usize {
    2
}
fn default_eps() -> f64 {
    1e-12
}
fn default_act() -> String {
    "gelu".into()
}

impl BertConfig {
    /// Reject configurations the forward pass cannot honour. `file` names config.json in messages.
    pub fn validate(&self, file: &str) -> Result<Activation> {
        let bad = |m: String| Err(Error::Config(format!("{file}: {m}")));
        crate::model::config::hf_sizes!(file, self,
            sizes: [vocab_size, intermediate_size, max_position_embeddings, type_vocab_size],
            layers: num_hidden_layers, width: hidden_size / num_attention_heads, eps: layer_norm_eps)?;
        if let Some(p) = &self.position_embedding_type
            && p != "absolute"
        {
            return bad(format!(
                "`position_embedding_type` `{p}` is not supported (only `absolute`)"
            ));
        }
        if self.is_decoder {
            return bad("`is_decoder: true` BERT models are not supported".into());
        }
        crate::model::hf_activation(file, "hidden_act", &self.hidden_act)
    }
}

/// Build from an opened folder: config.json text (`config_file` names it in errors), the weights and the tokenizer.
pub fn load(folder: HfFolder) -> Result<Transformer> {
    let (config_file, weights) = (folder.file, folder.weights);
    let cfg: BertConfig = folder.parse()?;
    let act = cfg.validate(config_file)?;
    let vb = Vb::new(weights).pp_if_present("bert", "embeddings.word_embeddings.weight");
    let (d, f, h) = (
        cfg.hidden_size,
        cfg.intermediate_size,
        cfg.num_attention_heads,
    );
    let eps = cfg.layer_norm_eps as f32;
    let emb = vb.pp("embeddings");
    let embed = Embeddings {
        token: TokenTable::load(&emb, "word_embeddings.weight", cfg.vocab_size, d)?,
        scale: 1.0,
        position: PositionKind::Learned {
            table: emb.table("position_embeddings.weight", cfg.max_position_embeddings, d)?,
            offset: 0,
        },
        segments: Some(emb.table("token_type_embeddings.weight", cfg.type_vocab_size, d)?),
        norm: Some(Norm::layer_norm(&emb, "LayerNorm", d, eps)?),
        d_model: d,
        max_positions: cfg.max_position_embeddings,
    };
    let mut blocks = Vec::with_capacity(cfg.num_hidden_layers);
    for l in 0..cfg.num_hidden_layers {
        let b = vb.pp("encoder.layer").pp(l);
        let a = b.pp("attention");
        blocks.push(Block {
            attn: AttnWeights {
                q: Linear::load(&a, "self.query", d, d, true)?,
                k: Linear::load(&a, "self.key", d, d, true)?,
                v: Linear::load(&a, "self.value", d, d, true)?,
                o: Linear::load(&a, "output.dense", d, d, true)?,
            },
            ln_attn: Norm::layer_norm(&a, "output.LayerNorm", d, eps)?,
            cross: None,
            mlp: Mlp::Plain {
                up: Linear::load(&b, "intermediate.dense", f, d, true)?,
                act,
                down: Linear::load(&b, "output.dense", d, f, true)?,
            },
            ln_mlp: Norm::layer_norm(&b, "output.LayerNorm", d, eps)?,
        });
    }
    let mut notes = vec![
        "post-LN blocks: MHA → add → LayerNorm → FFN → add → LayerNorm".to_string(),
        format!(
            "activation {} ({:?}), LayerNorm eps {:e}",
            cfg.hidden_act, act, cfg.layer_norm_eps
        ),
        format!(
            "word + learned position + token-type embeddings ({} segments) → LayerNorm",
            cfg.type_vocab_size
        ),
    ];
    notes.push(crate::model::dtype_note(weights));
    let info = ModelInfo {
        spec: folder.origin.spec,
        name: folder.origin.name,
        arch: Arch::Bert,
        n_layers: cfg.num_hidden_layers,
        n_heads: h,
        n_kv_heads: h,
        d_model: d,
        d_ff: f,
        vocab_size: cfg.vocab_size,
        max_len: cfg.max_position_embeddings,
        n_params: crate::model::count_params(weights),
        causal: false,
        positional: crate::trace::PositionalKind::Learned,
        tokenizer: folder.tokenizer.description().to_string(),
        source: folder.origin.source,
        notes,
    };
    Ok(Transformer {
        info,
        tokenizer: folder.tokenizer,
        embed,
        stack: Stack {
            placement: Placement::Post,
            attn: AttnSpec::standard(h, d / h, false),
            cross: None,
            blocks,
        },
        head: None,
    })
}
