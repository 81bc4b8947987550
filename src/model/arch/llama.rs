//! Llama-family decoders from GGUF files (SmolLM2, TinyLlama-style BPE models): token embedding, then N pre-norm
//! blocks of RMSNorm → grouped-query causal self-attention with rotary position embeddings → add → RMSNorm → SwiGLU
//! feed-forward → add, then a final RMSNorm and the LM head (tied to the embedding when the file has no
//! `output.weight`).
//!
//! Weight layout. GGUF stores a matrix as `[ne0 = in, ne1 = out]`, which [`crate::weights::Gguf`] returns row-major as
//! `[out, in]` like nn.Linear, so every projection is applied as `x · Wᵀ`. One thing differs from transformers:
//! llama.cpp's converter permutes the rows of `attn_q` and `attn_k` inside each head so that its RoPE, which rotates
//! adjacent pairs `(2i, 2i+1)`, gives the same result as transformers' "rotate-half" RoPE, which rotates `(i, i+d/2)`.
//! Row `2i + t` of a head in the file is row `t·d/2 + i` of the original (`t ∈ {0, 1}`, `d` = head dim). The loader
//! undoes that permutation once ([`unpermute_rows`]), so the forward pass uses rotate-half RoPE and its queries, keys
//! and attention equal transformers' on the same file.

use crate::model::attention::{AttnSpec, AttnWeights};
use crate::model::block::{Block, Linear, Mlp, Norm, Placement, Stack};
use crate::model::embed::{Embeddings, PositionKind, TokenTable};
use crate::model::head::LmHead;
use crate::model::{Arch, ModelInfo, Transformer};
use crate::numeric::Matrix;
use crate::numeric::ops::{self, Activation};
use crate::numeric::packed::PackedMatrix;
use crate::tokenize::Tokenizer;
use crate::tokenize::gguf as gguf_tokenizer;
use crate::weights::Gguf;
use crate::weights::source::{Table, Vb};
use crate::{Error, Result};
use ndarray::Array2;
use rayon::prelude::*;

/// The longest input `attn` runs through a Llama model (SmolLM2's own context length). Long inputs run in bounded
/// memory: without `keep_attention` the forward pass never holds an `n × n` pattern (attention runs over query tiles),
/// and the next tokens go through the LM head a few hundred positions at a time.
pub const MAX_INPUT: usize = 8192;
const MAX_LAYERS: usize = 512;
const MAX_HEADS: usize = 1024;
const MAX_DIM: usize = 1 << 17;

/// The hyper-parameters, from the `llama.*` metadata keys.
#[derive(Debug, Clone, PartialEq)]
pub struct LlamaConfig {
    pub n_layers: usize,
    pub d_model: usize,
    pub d_ff: usize,
    pub n_heads: usize,
    pub n_kv_heads: usize,
    pub head_dim: usize,
    pub rope_base: f32,
    pub eps: f32,
    pub context_length: usize,
}

impl LlamaConfig {
    /// Read and check the configuration. `general.architecture` must be `llama`.
    pub fn from_gguf(g: &Gguf) -> Result<Self> {
        let file = g.file_name();
        let arch = g.get_str("general.architecture")?;
        if arch != "llama" {
            return Err(Error::format(
                file,
                format!(
                    "general.architecture = `{arch}` is not supported; attn runs `llama` GGUF files"
                ),
            ));
        }
        let size = |key: &str, max: usize| -> Result<usize> {
            let full = format!("llama.{key}");
            let v = g.get_u64(&full)?;
            if v == 0 || v > max as u64 {
                return Err(Error::Config(format!(
                    "{file}: {full} = {v} must be between 1 and {max}"
                )));
            }
            Ok(v as usize)
        };
        let n_layers = size("block_count", MAX_LAYERS)?;
        let d_model = size("embedding_length", MAX_DIM)?;
        let d_ff = size("feed_forward_length", MAX_DIM)?;
        let n_heads = size("attention.head_count", MAX_HEADS)?;
        let n_kv_heads = match g.get("llama.attention.head_count_kv") {
            Some(_) => size("attention.head_count_kv", MAX_HEADS)?,
            None => n_heads,
        };
        let context_length = match g.get("llama.context_length") {
            Some(_) => size("context_length", usize::MAX >> 1)?,
            None => MAX_INPUT,
        };
        let cfg_err = |m: String| Err(Error::Config(format!("{file}: {m}")));
        if d_model % n_heads != 0 {
            return cfg_err(format!(
                "llama.attention.head_count = {n_heads} does not divide llama.embedding_length = {d_model}"
            ));
        }
        if n_heads % n_kv_heads != 0 {
            return cfg_err(format!(
                "llama.attention.head_count_kv = {n_kv_heads} does not divide llama.attention.head_count = {n_heads}: \
                 each KV head must serve the same number of query heads"
            ));
        }
        let head_dim = d_model / n_heads;
        for key in [
            "attention.key_length",
            "attention.value_length",
            "rope.dimension_count",
        ] {
            let full = format!("llama.{key}");
            if g.get(&full).is_some() {
                let v = g.get_u64(&full)?;
                if v != head_dim as u64 {
                    return cfg_err(format!(
                        "{full} = {v} differs from the head size embedding_length / head_count = {head_dim}; \
                         only full-width rotary heads are supported"
                    ));
                }
            }
        }
        if head_dim % 2 != 0 {
            return cfg_err(format!(
                "the head size {head_dim} is odd; rotary embeddings need pairs"
            ));
        }
        if let Some(v) = g.get("llama.rope.scaling.type")
            && v.as_str().is_some_and(|s| s != "none")
        {
            return cfg_err(format!(
                "llama.rope.scaling.type = `{}` is not supported",
                v.as_str().unwrap_or_default()
            ));
        }
        if g.tensor("rope_freqs.weight").is_some() {
            return cfg_err("rope_freqs.weight (Llama 3.1 rotary scaling) is not supported".into());
        }
        let rope_base = match g.get("llama.rope.freq_base") {
            Some(_) => g.get_f32("llama.rope.freq_base")?,
            None => 10000.0,
        };
        if !(rope_base.is_finite() && rope_base > 1.0) {
            return cfg_err(format!(
                "llama.rope.freq_base = {rope_base} must be a finite number above 1"
            ));
        }
        let eps = g.get_f32("llama.attention.layer_norm_rms_epsilon")?;
        if !(eps.is_finite() && eps > 0.0) {
            return cfg_err(format!(
                "llama.attention.layer_norm_rms_epsilon = {eps} must be positive"
            ));
        }
        Ok(LlamaConfig {
            n_layers,
            d_model,
            d_ff,
            n_heads,
            n_kv_heads,
            head_dim,
            rope_base,
            eps,
            context_length,
        })
    }
}

/// Undo llama.cpp's Q/K row permutation: within each of `n_heads` heads of `head_dim` rows, file row `2i + t` goes
/// back to row `t·head_dim/2 + i`. Entry `r` of the result is the file row that becomes row `r`.
pub fn unpermute_order(n_heads: usize, head_dim: usize) -> Vec<usize> {
    let half = head_dim / 2;
    let mut order = vec![0; n_heads * head_dim];
    for h in 0..n_heads {
        for i in 0..half {
            for t in 0..2 {
                order[h * head_dim + t * half + i] = h * head_dim + 2 * i + t;
            }
        }
    }
    order
}

/// [`unpermute_order`] applied to the rows of `w`.
pub fn unpermute_rows(w: &Array2<f32>, n_heads: usize, head_dim: usize) -> Array2<f32> {
    w.select(ndarray::Axis(0), &unpermute_order(n_heads, head_dim))
}

/// Where a Llama's tensors are, by name: llama.cpp's GGUF names (Q/K rows permuted) or transformers' names.
pub(crate) struct Names {
    pub embed: &'static str,
    /// The blocks' prefix: block `l` is `{blocks}.{l}`.
    pub blocks: &'static str,
    pub attn_norm: &'static str,
    pub q: &'static str,
    pub k: &'static str,
    pub v: &'static str,
    pub o: &'static str,
    pub mlp_norm: &'static str,
    pub gate: &'static str,
    pub up: &'static str,
    pub down: &'static str,
    pub out_norm: &'static str,
    pub output: &'static str,
    /// Q and K rows are in llama.cpp's interleaved order (GGUF) and are put back in rotate-half order.
    pub permuted: bool,
}

pub(crate) const GGUF_NAMES: Names = Names {
    embed: "token_embd.weight",
    blocks: "blk",
    attn_norm: "attn_norm.weight",
    q: "attn_q.weight",
    k: "attn_k.weight",
    v: "attn_v.weight",
    o: "attn_output.weight",
    mlp_norm: "ffn_norm.weight",
    gate: "ffn_gate.weight",
    up: "ffn_up.weight",
    down: "ffn_down.weight",
    out_norm: "output_norm.weight",
    output: "output.weight",
    permuted: true,
};

/// Q or K: `name` `[heads·head_dim, d]`, with llama.cpp's row permutation undone when the file has it (quantized
/// blocks are moved as they are: only their rows' order changes).
fn rope_projection(
    vb: &Vb,
    name: &str,
    heads: usize,
    hd: usize,
    d: usize,
    permuted: bool,
) -> Result<Linear> {
    let w = vb.matrix(name, heads * hd, d)?;
    if !permuted {
        return Ok(Linear::from_matrix(w, None));
    }
    let order = unpermute_order(heads, hd);
    let w = match w {
        Matrix::Quant(q) => Matrix::Quant(q.select_rows(&order)),
        Matrix::Packed(p) => Matrix::Packed(PackedMatrix::new(
            &p.to_f32().select(ndarray::Axis(0), &order),
        )),
    };
    Ok(Linear::from_matrix(w, None))
}

fn load_block(vb: &Vb, cfg: &LlamaConfig, n: &Names) -> Result<Block> {
    let (d, f, hd) = (cfg.d_model, cfg.d_ff, cfg.head_dim);
    let lin = |name: &str, out: usize, inp: usize| -> Result<Linear> {
        Ok(Linear::from_matrix(vb.matrix(name, out, inp)?, None))
    };
    Ok(Block {
        ln_attn: Norm::rms_norm(vb, n.attn_norm, d, cfg.eps)?,
        attn: AttnWeights {
            q: rope_projection(vb, n.q, cfg.n_heads, hd, d, n.permuted)?,
            k: rope_projection(vb, n.k, cfg.n_kv_heads, hd, d, n.permuted)?,
            v: lin(n.v, cfg.n_kv_heads * hd, d)?,
            o: lin(n.o, d, cfg.n_heads * hd)?,
        },
        cross: None,
        ln_mlp: Norm::rms_norm(vb, n.mlp_norm, d, cfg.eps)?,
        mlp: Mlp::Gated {
            gate: lin(n.gate, f, d)?,
            up: lin(n.up, f, d)?,
            act: Activation::Silu,
            down: lin(n.down, d, f)?,
        },
    })
}

/// Who the model is and what to say of its weights, for [`ModelInfo`].
pub(crate) struct About {
    pub spec: String,
    pub name: String,
    pub source: String,
    pub weights_note: String,
    pub n_params: u64,
}

/// Build a Llama from its configuration and weights: `token` is the token table, `tied` says whether the LM head is
/// that table (else `names.output`).
pub(crate) fn build(
    vb: &Vb,
    cfg: &LlamaConfig,
    names: &Names,
    token: TokenTable,
    tied: bool,
    tokenizer: Tokenizer,
    about: impl FnOnce(&Vb) -> About,
) -> Result<Transformer> {
    let (d, f, hd) = (cfg.d_model, cfg.d_ff, cfg.head_dim);
    let vocab = token.vocab();
    // Blocks load in parallel (un-permute Q/K, pack); any failing block fails the load.
    let blocks = (0..cfg.n_layers)
        .into_par_iter()
        .map(|l| load_block(&vb.pp(names.blocks).pp(l), cfg, names))
        .collect::<Result<Vec<Block>>>()?;
    let out_norm = Norm::rms_norm(vb, names.out_norm, d, cfg.eps)?;
    let unembed = if tied {
        token.unembedding()?
    } else {
        vb.matrix(names.output, vocab, d)?
    };
    let about = about(vb);
    let max_len = cfg.context_length.min(MAX_INPUT);
    let freqs = ops::rope_freqs(hd, cfg.rope_base);
    let info = ModelInfo {
        spec: about.spec,
        name: about.name,
        arch: Arch::Llama,
        n_layers: cfg.n_layers,
        n_heads: cfg.n_heads,
        n_kv_heads: cfg.n_kv_heads,
        d_model: d,
        d_ff: f,
        vocab_size: vocab,
        max_len,
        n_params: about.n_params,
        causal: true,
        positional: crate::trace::PositionalKind::Rotary,
        tokenizer: tokenizer.description().to_string(),
        source: about.source,
        notes: vec![
            about.weights_note,
            format!(
                "grouped-query attention: {} query heads share {} KV heads ({} each)",
                cfg.n_heads,
                cfg.n_kv_heads,
                cfg.n_heads / cfg.n_kv_heads
            ),
            format!(
                "pre-norm blocks: RMSNorm (eps {:e}) → causal attention with RoPE (base {}) → add → RMSNorm → \
                 SwiGLU → add",
                cfg.eps, cfg.rope_base
            ),
            if tied {
                "LM head tied to the token embedding".into()
            } else {
                "separate output embedding (LM head)".into()
            },
            format!(
                "context length {}; attn runs at most {max_len} tokens",
                cfg.context_length
            ),
        ],
    };
    Ok(Transformer {
        info,
        tokenizer,
        embed: Embeddings {
            token,
            scale: 1.0,
            position: PositionKind::Rotary {
                freqs: freqs.clone(),
                head_dim: hd,
            },
            segments: None,
            norm: None,
            d_model: d,
            max_positions: usize::MAX,
        },
        stack: Stack {
            placement: Placement::Pre,
            attn: AttnSpec {
                n_heads: cfg.n_heads,
                n_kv_heads: cfg.n_kv_heads,
                head_dim: hd,
                causal: true,
                scale: 1.0 / (hd as f32).sqrt(),
                rotary: Some(freqs),
            },
            cross: None,
            blocks,
        },
        head: Some(LmHead {
            norm: Some(out_norm),
            unembed,
            bias: None,
            scale: 1.0,
            tied,
        }),
    })
}

/// Load from a parsed GGUF file; `spec` is what the user typed (for [`ModelInfo::spec`]).
pub fn from_gguf(g: &Gguf, spec: &str) -> Result<Transformer> {
    let cfg = LlamaConfig::from_gguf(g)?;
    let tokenizer = gguf_tokenizer::from_gguf(g)?;
    // The embedding has one row per metadata token (even if two tokens share a spelling).
    let vocab = g.get_array("tokenizer.ggml.tokens")?.len();
    let vb = Vb::new(g);
    // The token table stays in the file's format: rows are decoded when looked up, and a tied LM head multiplies
    // the same blocks.
    let token = match vb.matrix(GGUF_NAMES.embed, vocab, cfg.d_model)? {
        Matrix::Quant(q) => TokenTable::Quant(q),
        Matrix::Packed(p) => TokenTable::Table(Table::Owned(p.to_f32())),
    };
    let tied = g.tensor(GGUF_NAMES.output).is_none();
    build(&vb, &cfg, &GGUF_NAMES, token, tied, tokenizer, |vb| {
        let (n_params, types) = vb.used_summary();
        let quant = types
            .iter()
            .map(|(t, c)| format!("{t} ×{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        // One name everywhere (`attn models`, `info`, the header): the short name's title, else the file's own
        // name with its main weight type.
        let main_type = types
            .iter()
            .find(|(t, _)| t != "F32")
            .map(|(t, _)| format!(" {t}"))
            .unwrap_or_default();
        let name = match crate::model::config::short_name_title(spec) {
            Some(t) => t.to_string(),
            None => g
                .get("general.name")
                .and_then(|v| v.as_str())
                .map(|n| format!("{n}{main_type}"))
                .unwrap_or_else(|| g.file_name().to_string()),
        };
        About {
            spec: spec.to_string(),
            name,
            source: g.file_name().to_string(),
            weights_note: format!(
                "weights: {quant} (kept in the file's format; blocks decoded inside the matrix kernel)"
            ),
            n_params,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unpermute_inverts_llama_cpp_permutation() {
        // llama.cpp: reshape(n_head, 2, d/2, in).swapaxes(1, 2): new row (h, 2i + t) = old row (h, t·d/2 + i).
        let (heads, hd, cols) = (3, 8, 2);
        let orig = Array2::from_shape_fn((heads * hd, cols), |(r, c)| (r * 10 + c) as f32);
        let mut permuted = orig.clone();
        for h in 0..heads {
            for i in 0..hd / 2 {
                for t in 0..2 {
                    permuted
                        .row_mut(h * hd + 2 * i + t)
                        .assign(&orig.row(h * hd + t * hd / 2 + i));
                }
            }
        }
        assert_ne!(permuted, orig);
        assert_eq!(unpermute_rows(&permuted, heads, hd), orig);
    }
}
