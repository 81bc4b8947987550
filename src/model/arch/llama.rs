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

use crate::model::{Arch, Model, ModelInfo};
use crate::numeric::ops;
use crate::numeric::packed::PackedMatrix;
use crate::tokenize::gguf as gguf_tokenizer;
use crate::tokenize::{Encoded, Tokenizer};
use crate::trace::{ForwardOptions, LayerTrace, Positional, TopToken, Trace};
use crate::weights::Gguf;
use crate::{Error, Result};
use ndarray::{Array1, Array2, Array3, Axis, Ix1, Ix2};
use rayon::prelude::*;
use std::collections::BTreeMap;
use std::time::Instant;

/// The longest input `attn` runs through a Llama model (the attention of one layer alone is `heads × n × n` floats).
pub const MAX_INPUT: usize = 2048;
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

/// One block; the projections are packed for `x · Wᵀ` at load (see [`PackedMatrix`]).
struct Layer {
    attn_norm: Array1<f32>,
    wq: PackedMatrix,
    wk: PackedMatrix,
    wv: PackedMatrix,
    wo: PackedMatrix,
    ffn_norm: Array1<f32>,
    w_gate: PackedMatrix,
    w_up: PackedMatrix,
    w_down: PackedMatrix,
}

pub struct Llama {
    cfg: LlamaConfig,
    info: ModelInfo,
    tokenizer: Tokenizer,
    /// `[vocab, d_model]`.
    embed: Array2<f32>,
    layers: Vec<Layer>,
    out_norm: Array1<f32>,
    /// The LM head `[vocab, d_model]` (the embedding again when tied), packed.
    lm_head: PackedMatrix,
    tied: bool,
    freqs: Vec<f32>,
}

/// Undo llama.cpp's Q/K row permutation: within each of `n_heads` heads of `head_dim` rows, file row `2i + t` goes
/// back to row `t·head_dim/2 + i`.
pub fn unpermute_rows(w: &Array2<f32>, n_heads: usize, head_dim: usize) -> Array2<f32> {
    let half = head_dim / 2;
    let mut out = Array2::<f32>::zeros(w.raw_dim());
    for h in 0..n_heads {
        for i in 0..half {
            for t in 0..2 {
                out.row_mut(h * head_dim + t * half + i)
                    .assign(&w.row(h * head_dim + 2 * i + t));
            }
        }
    }
    out
}

/// Reads tensors by name with their shapes checked before anything is dequantized.
struct Loader<'a> {
    g: &'a Gguf,
    used: Vec<&'a str>,
}

impl<'a> Loader<'a> {
    fn info(
        &mut self,
        name: &str,
        want: &[usize],
        what: &str,
    ) -> Result<&'a crate::weights::TensorInfo> {
        let g = self.g;
        let t = g.tensor(name).ok_or_else(|| {
            Error::tensor(
                g.file_name(),
                name,
                format!("missing ({what}, expected shape {want:?})"),
            )
        })?;
        if t.shape() != want {
            return Err(Error::tensor(
                g.file_name(),
                name,
                format!(
                    "shape {:?} does not match the configuration: expected {want:?} ({what})",
                    t.shape()
                ),
            ));
        }
        self.used.push(&t.name);
        Ok(t)
    }

    fn mark_used(&mut self, name: &str) {
        if let Some(t) = self.g.tensor(name) {
            self.used.push(&t.name);
        }
    }

    fn matrix(&mut self, name: &str, rows: usize, cols: usize, what: &str) -> Result<Array2<f32>> {
        let t = self.info(name, &[rows, cols], what)?;
        self.g
            .dequantize(t)?
            .into_dimensionality::<Ix2>()
            .map_err(|e| Error::tensor(self.g.file_name(), name, e.to_string()))
    }

    fn vector(&mut self, name: &str, len: usize, what: &str) -> Result<Array1<f32>> {
        let t = self.info(name, &[len], what)?;
        self.g
            .dequantize(t)?
            .into_dimensionality::<Ix1>()
            .map_err(|e| Error::tensor(self.g.file_name(), name, e.to_string()))
    }
}

/// The tensors of block `l` are `blk.{l}.{name}.weight`.
const LAYER_TENSORS: [&str; 9] = [
    "attn_norm",
    "attn_q",
    "attn_k",
    "attn_v",
    "attn_output",
    "ffn_norm",
    "ffn_gate",
    "ffn_up",
    "ffn_down",
];

fn load_layer(g: &Gguf, cfg: &LlamaConfig, l: usize) -> Result<Layer> {
    let mut ld = Loader { g, used: vec![] };
    let (d, f, hd) = (cfg.d_model, cfg.d_ff, cfg.head_dim);
    let (q_rows, kv_rows) = (cfg.n_heads * hd, cfg.n_kv_heads * hd);
    let n = |s: &str| format!("blk.{l}.{s}.weight");
    let mut packed = |s: &str, rows: usize, cols: usize, what: &str| -> Result<PackedMatrix> {
        Ok(PackedMatrix::new(&ld.matrix(&n(s), rows, cols, what)?))
    };
    let wv = packed(
        "attn_v",
        kv_rows,
        d,
        "head_count_kv·head_dim × embedding_length",
    )?;
    let wo = packed(
        "attn_output",
        d,
        q_rows,
        "embedding_length × head_count·head_dim",
    )?;
    let w_gate = packed("ffn_gate", f, d, "feed_forward_length × embedding_length")?;
    let w_up = packed("ffn_up", f, d, "feed_forward_length × embedding_length")?;
    let w_down = packed("ffn_down", d, f, "embedding_length × feed_forward_length")?;
    let wq = ld.matrix(
        &n("attn_q"),
        q_rows,
        d,
        "head_count·head_dim × embedding_length",
    )?;
    let wk = ld.matrix(
        &n("attn_k"),
        kv_rows,
        d,
        "head_count_kv·head_dim × embedding_length",
    )?;
    Ok(Layer {
        attn_norm: ld.vector(&n("attn_norm"), d, "embedding_length")?,
        wq: PackedMatrix::new(&unpermute_rows(&wq, cfg.n_heads, hd)),
        wk: PackedMatrix::new(&unpermute_rows(&wk, cfg.n_kv_heads, hd)),
        wv,
        wo,
        ffn_norm: ld.vector(&n("ffn_norm"), d, "embedding_length")?,
        w_gate,
        w_up,
        w_down,
    })
}

impl Llama {
    /// Load from a parsed GGUF file; `spec` is what the user typed (for [`ModelInfo::spec`]).
    pub fn from_gguf(g: &Gguf, spec: &str) -> Result<Self> {
        let cfg = LlamaConfig::from_gguf(g)?;
        let tokenizer = gguf_tokenizer::from_gguf(g)?;
        // The embedding has one row per metadata token (even if two tokens share a spelling).
        let vocab = g.get_array("tokenizer.ggml.tokens")?.len();
        let (d, f, hd) = (cfg.d_model, cfg.d_ff, cfg.head_dim);

        let mut ld = Loader { g, used: vec![] };
        let embed = ld.matrix(
            "token_embd.weight",
            vocab,
            d,
            "vocabulary × embedding_length",
        )?;
        // Blocks load in parallel (dequantize, un-permute Q/K, pack); any failing block fails the load.
        let layers = (0..cfg.n_layers)
            .into_par_iter()
            .map(|l| load_layer(g, &cfg, l))
            .collect::<Result<Vec<Layer>>>()?;
        for l in 0..cfg.n_layers {
            for s in LAYER_TENSORS {
                ld.mark_used(&format!("blk.{l}.{s}.weight"));
            }
        }
        let out_norm = ld.vector("output_norm.weight", d, "embedding_length")?;
        let tied = g.tensor("output.weight").is_none();
        let lm_head = if tied {
            PackedMatrix::new(&embed)
        } else {
            PackedMatrix::new(&ld.matrix(
                "output.weight",
                vocab,
                d,
                "vocabulary × embedding_length",
            )?)
        };

        let mut types: BTreeMap<String, usize> = BTreeMap::new();
        let mut n_params = 0u64;
        for name in &ld.used {
            if let Some(t) = g.tensor(name) {
                *types.entry(t.ty.to_string()).or_default() += 1;
                n_params += t.n_elements();
            }
        }
        let mut types: Vec<(String, usize)> = types.into_iter().collect();
        types.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let quant = types
            .iter()
            .map(|(t, c)| format!("{t} ×{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        // One name everywhere (`attn models`, `info`, the header): the short name's title, else the file's own name
        // with its main weight type.
        let main_type = types
            .iter()
            .find(|(t, _)| t != "F32")
            .map(|(t, _)| format!(" {t}"))
            .unwrap_or_default();
        let name = match crate::model::short_name_title(spec) {
            Some(t) => t.to_string(),
            None => g
                .get("general.name")
                .and_then(|v| v.as_str())
                .map(|n| format!("{n}{main_type}"))
                .unwrap_or_else(|| g.file_name().to_string()),
        };
        let max_len = cfg.context_length.min(MAX_INPUT);
        let info = ModelInfo {
            spec: spec.to_string(),
            name,
            arch: Arch::Llama,
            n_layers: cfg.n_layers,
            n_heads: cfg.n_heads,
            n_kv_heads: cfg.n_kv_heads,
            d_model: d,
            d_ff: f,
            vocab_size: vocab,
            max_len,
            n_params,
            causal: true,
            positional: "rotary".into(),
            tokenizer: tokenizer.description().to_string(),
            source: g.file_name().to_string(),
            notes: vec![
                format!("weights: {quant} (dequantized to f32 at load)"),
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
        let freqs = ops::rope_freqs(hd, cfg.rope_base);
        Ok(Llama {
            cfg,
            info,
            tokenizer,
            embed,
            layers,
            out_norm,
            lm_head,
            tied,
            freqs,
        })
    }

    pub fn config(&self) -> &LlamaConfig {
        &self.cfg
    }

    /// Whether the LM head is the token embedding.
    pub fn tied(&self) -> bool {
        self.tied
    }

    /// Queries and keys with RoPE applied, and values.
    fn qkv(
        &self,
        b: &Layer,
        x: &Array2<f32>,
        cos: &Array2<f32>,
        sin: &Array2<f32>,
    ) -> ops::Attention {
        let h = ops::rms_norm(&x.view(), &b.attn_norm, self.cfg.eps);
        let hv = h.view();
        let mut q = b.wq.matmul_t(&hv);
        let mut k = b.wk.matmul_t(&hv);
        let v = b.wv.matmul_t(&hv);
        let hd = self.cfg.head_dim;
        ops::apply_rope_half(&mut q, self.cfg.n_heads, hd, cos, sin);
        ops::apply_rope_half(&mut k, self.cfg.n_kv_heads, hd, cos, sin);
        ops::attention(&q, &k, &v, self.cfg.n_heads, self.cfg.n_kv_heads, hd, true)
    }

    /// Final RMSNorm + LM head on a residual stream `[n, d]`, then the top-`k` tokens of every row.
    fn top_tokens(&self, hidden: &Array2<f32>, k: usize) -> Vec<Vec<TopToken>> {
        let normed = ops::rms_norm(&hidden.view(), &self.out_norm, self.cfg.eps);
        // One packed matmul for every position, then each row's softmax + top-k on its own thread.
        let logits = self.lm_head.matmul_t(&normed.view());
        let rows: Vec<_> = logits.rows().into_iter().collect();
        rows.into_par_iter()
            .map(|row| {
                let top = match row.as_slice() {
                    Some(s) => ops::softmax_top_k(s, k),
                    None => ops::softmax_top_k(&row.to_vec(), k),
                };
                top.into_iter()
                    .map(|(id, prob)| TopToken {
                        id: id as u32,
                        text: self.tokenizer.token_label(id as u32),
                        prob,
                    })
                    .collect()
            })
            .collect()
    }

    /// Logits `[n, vocab]` after the final norm and LM head (for tests and tools).
    pub fn logits(&self, hidden: &Array2<f32>) -> Array2<f32> {
        let normed = ops::rms_norm(&hidden.view(), &self.out_norm, self.cfg.eps);
        self.lm_head.matmul_t(&normed.view())
    }
}

impl Model for Llama {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    fn forward(&self, enc: &Encoded, opts: &ForwardOptions) -> Result<Trace> {
        let start = Instant::now();
        let n = enc.ids.len();
        if n == 0 {
            return Err(Error::Input("no tokens to run".into()));
        }
        if n > self.info.max_len {
            return Err(Error::Input(format!(
                "the text is {n} tokens long; {} takes at most {}",
                self.info.name, self.info.max_len
            )));
        }
        let d = self.cfg.d_model;
        let mut x = Array2::<f32>::zeros((n, d));
        for (i, &id) in enc.ids.iter().enumerate() {
            if (id as usize) >= self.embed.nrows() {
                return Err(Error::Input(format!(
                    "token id {id} is outside the vocabulary"
                )));
            }
            x.row_mut(i)
                .assign(&self.embed.index_axis(Axis(0), id as usize));
        }
        let angles = ops::rope_angles(n, &self.freqs);
        let (cos, sin) = ops::rope_cos_sin(&angles);
        let mut hidden = Vec::with_capacity(self.layers.len() + 1);
        let mut layers = Vec::with_capacity(self.layers.len());
        for (l, b) in self.layers.iter().enumerate() {
            hidden.push(x.clone());
            let att = self.qkv(b, &x, &cos, &sin);
            let attn_out = b.wo.matmul_t(&att.context.view());
            let mid = &x + &attn_out;
            let h = ops::rms_norm(&mid.view(), &b.ffn_norm, self.cfg.eps);
            let hv = h.view();
            let mut gate = b.w_gate.matmul_t(&hv);
            let up = b.w_up.matmul_t(&hv);
            gate.zip_mut_with(&up, |g, u| *g = ops::silu(*g) * u);
            let ffn_out = b.w_down.matmul_t(&gate.view());
            x = &mid + &ffn_out;
            layers.push(LayerTrace::record(
                att.probs,
                opts.keep_attention,
                mid,
                &attn_out,
                &ffn_out,
            ));
            opts.report(l + 1, self.layers.len());
        }
        let next_tokens = (opts.top_k > 0).then(|| self.top_tokens(&x, opts.top_k));
        hidden.push(x);
        let group = self.cfg.n_heads / self.cfg.n_kv_heads;
        let mut trace = Trace::new(
            enc.tokens.clone(),
            hidden,
            layers,
            Positional::Rotary {
                freqs: self.freqs.clone(),
                angles,
                head_dim: self.cfg.head_dim,
            },
            start.elapsed(),
        );
        trace.next_tokens = next_tokens;
        trace.kv_group = (0..self.cfg.n_heads).map(|h| h / group).collect();
        Ok(trace)
    }

    fn layer_attention(&self, layer: usize, resid_in: &Array2<f32>) -> Result<Array3<f32>> {
        let b = crate::model::checked_block(&self.layers, layer, resid_in, self.cfg.d_model)?;
        let angles = ops::rope_angles(resid_in.nrows(), &self.freqs);
        let (cos, sin) = ops::rope_cos_sin(&angles);
        Ok(self.qkv(b, resid_in, &cos, &sin).probs)
    }

    fn logit_lens(&self, hidden: &Array2<f32>, k: usize) -> Option<Vec<Vec<TopToken>>> {
        (hidden.ncols() == self.cfg.d_model).then(|| self.top_tokens(hidden, k))
    }
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
