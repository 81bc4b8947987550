//! GPT-2-architecture decoders from a Hugging Face folder (`model_type: gpt2`).
//!
//! Embedding: `wte[id] + wpe[i]` (no norm). Pre-LN blocks: `x += c_proj(attn(c_attn(ln_1(x))))` with a causal mask,
//! `x += mlp.c_proj(gelu_new(mlp.c_fc(ln_2(x))))`. After the last block `ln_f`, then the LM head, tied to `wte`
//! unless the file has its own `lm_head.weight`.
//!
//! Weight layout: GPT-2's Conv1D stores weights `[in, out]` (the transpose of nn.Linear). The loader presents each
//! as a transposed `[out, in]` view of the mapped data and packs it once (`PackedMatrix`), so the forward pass uses
//! the same `x · wᵀ + b` as every other model. `c_attn` packs Q, K and V along its output: columns `0..d` are Q, `d..2d` K, `2d..3d` V.
//! Tensor names are those of `GPT2Model`, with or without the `transformer.` prefix of `GPT2LMHeadModel`; the
//! causal-mask buffers some checkpoints store (`attn.bias`, `attn.masked_bias`) are ignored.
//!
//! Trace: `hidden[l]` is the raw residual stream entering block `l`, and `hidden[L]` the stream leaving the last
//! block *before* `ln_f` (transformers' last `hidden_states` entry is after `ln_f`); `mid` is the stream after the
//! attention residual add; `next_tokens` is the top-k of `softmax(lm_head(ln_f(hidden[L])))` at every position.

use crate::model::attention::{AttnSpec, AttnWeights};
use crate::model::block::{Block, Linear, Mlp, Norm, Placement, Stack};
use crate::model::config::HfFolder;
use crate::model::embed::{Embeddings, PositionKind, TokenTable};
use crate::model::head::LmHead;
use crate::model::{Arch, ModelInfo, Transformer};
use crate::numeric::Matrix;
use crate::numeric::ops::Activation;
use crate::numeric::packed::PackedMatrix;
use crate::weights::source::Vb;
use crate::{Error, Result};
use ndarray::s;
use serde::Deserialize;

/// The fields of a GPT-2 config.json that the forward pass needs.
#[derive(Debug, Clone, Deserialize)]
pub struct Gpt2Config {
    pub vocab_size: usize,
    pub n_embd: usize,
    pub n_layer: usize,
    pub n_head: usize,
    pub n_positions: usize,
    #[serde(default)]
    pub n_inner: Option<usize>,
    #[serde(default = "default_eps")]
    pub layer_norm_epsilon: f64,
    #[serde(default = "default_act")]
    pub activation_function: String,
    #[serde(default = "yes")]
    pub scale_attn_weights: bool,
    #[serde(default)]
    pub scale_attn_by_inverse_layer_idx: bool,
    #[serde(default)]
    pub reorder_and_upcast_attn: bool,
}

fn default_eps() -> f64 {
    1e-5
}
fn default_act() -> String {
    "gelu_new".into()
}
fn yes() -> bool {
    true
}

impl Gpt2Config {
    pub fn d_ff(&self) -> usize {
        self.n_inner.unwrap_or(4 * self.n_embd)
    }

    /// Reject configurations the forward pass cannot honour. `file` names config.json in messages.
    pub fn validate(&self, file: &str) -> Result<Activation> {
        let bad = |m: String| Err(Error::Config(format!("{file}: {m}")));
        crate::model::config::hf_sizes!(file, self,
            sizes: [vocab_size, n_positions], extra: ["n_inner" = self.d_ff()],
            layers: n_layer, width: n_embd / n_head, eps: layer_norm_epsilon)?;
        if !self.scale_attn_weights
            || self.scale_attn_by_inverse_layer_idx
            || self.reorder_and_upcast_attn
        {
            return bad(
                "only the standard attention scaling is supported (scale_attn_weights: true, \
                 scale_attn_by_inverse_layer_idx: false, reorder_and_upcast_attn: false)"
                    .into(),
            );
        }
        crate::model::hf_activation(file, "activation_function", &self.activation_function)
    }
}

/// A Conv1D layer `name.weight` `[in, out]` + `name.bias`, as a `[out, in]` linear map.
fn conv1d(vb: &Vb, name: &str, out: usize, inp: usize) -> Result<Linear> {
    let weight = format!("{name}.weight");
    let w = match vb.half(&weight, (out, inp), true)? {
        Some(q) => Matrix::Quant(q),
        None => PackedMatrix::from_view(&vb.table_t(&weight, out, inp)?.view()).into(),
    };
    Ok(Linear::from_matrix(
        w,
        Some(vb.vector(&format!("{name}.bias"), out)?),
    ))
}

/// `c_attn` packs Q, K and V along its output (columns `0..d`, `d..2d`, `2d..3d` of the `[in, 3d]` Conv1D weight):
/// split into three `[d, d]` linear maps.
fn c_attn(vb: &Vb, d: usize) -> Result<(Linear, Linear, Linear)> {
    let name = "attn.c_attn.weight";
    let b = vb.vector("attn.c_attn.bias", 3 * d)?;
    let bias = |i: usize| Some(b.slice(s![i * d..(i + 1) * d]).to_owned());
    if let Some(q) = vb.half(name, (3 * d, d), true)? {
        let part = |i: usize| {
            let rows: Vec<usize> = (i * d..(i + 1) * d).collect();
            Linear::from_matrix(Matrix::Quant(q.select_rows(&rows)), bias(i))
        };
        return Ok((part(0), part(1), part(2)));
    }
    let w = vb.table_t(name, 3 * d, d)?;
    let part = |i: usize| {
        Linear::new(
            PackedMatrix::from_view(&w.view().slice(s![i * d..(i + 1) * d, ..])),
            bias(i),
        )
    };
    Ok((part(0), part(1), part(2)))
}

/// Build from an opened folder: config.json text (`config_file` names it in errors), the weights and the tokenizer.
pub fn load(folder: HfFolder) -> Result<Transformer> {
    let (config_file, weights) = (folder.file, folder.weights);
    let cfg: Gpt2Config = folder.parse()?;
    let act = cfg.validate(config_file)?;
    let root = Vb::new(weights);
    let vb = root.pp_if_present("transformer", "wte.weight");
    let (d, f, h) = (cfg.n_embd, cfg.d_ff(), cfg.n_head);
    let eps = cfg.layer_norm_epsilon as f32;
    let mut blocks = Vec::with_capacity(cfg.n_layer);
    for l in 0..cfg.n_layer {
        let b = vb.pp("h").pp(l);
        let (q, k, v) = c_attn(&b, d)?;
        blocks.push(Block {
            ln_attn: Norm::layer_norm(&b, "ln_1", d, eps)?,
            attn: AttnWeights {
                q,
                k,
                v,
                o: conv1d(&b, "attn.c_proj", d, d)?,
            },
            cross: None,
            ln_mlp: Norm::layer_norm(&b, "ln_2", d, eps)?,
            mlp: Mlp::Plain {
                up: conv1d(&b, "mlp.c_fc", f, d)?,
                act,
                down: conv1d(&b, "mlp.c_proj", d, f)?,
            },
        });
    }
    let wte = TokenTable::load(&vb, "wte.weight", cfg.vocab_size, d)?;
    let separate = weights.contains("lm_head.weight");
    let unembed = if separate {
        root.matrix("lm_head.weight", cfg.vocab_size, d)?
    } else {
        wte.unembedding()?
    };
    let head = LmHead {
        norm: Some(Norm::layer_norm(&vb, "ln_f", d, eps)?),
        unembed,
        bias: None,
        scale: 1.0,
        tied: !separate,
    };
    let embed = Embeddings {
        token: wte,
        scale: 1.0,
        position: PositionKind::Learned {
            table: vb.table("wpe.weight", cfg.n_positions, d)?,
            offset: 0,
        },
        segments: None,
        norm: None,
        d_model: d,
        max_positions: cfg.n_positions,
    };
    let notes = vec![
        "pre-LN blocks: x + attn(ln_1(x)), then x + mlp(ln_2(x)); final ln_f".to_string(),
        format!(
            "activation {} ({:?}), LayerNorm eps {:e}",
            cfg.activation_function, act, cfg.layer_norm_epsilon
        ),
        format!(
            "Conv1D weights [in, out] used transposed; LM head {}",
            if separate { "separate" } else { "tied to wte" }
        ),
        crate::model::dtype_note(weights),
    ];
    let info = ModelInfo {
        spec: folder.origin.spec,
        name: folder.origin.name,
        arch: Arch::Gpt2,
        n_layers: cfg.n_layer,
        n_heads: h,
        n_kv_heads: h,
        d_model: d,
        d_ff: f,
        vocab_size: cfg.vocab_size,
        max_len: cfg.n_positions,
        n_params: crate::model::count_params(weights),
        causal: true,
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
            placement: Placement::Pre,
            attn: AttnSpec::standard(h, d / h, true),
            cross: None,
            blocks,
        },
        head: Some(head),
    })
}
