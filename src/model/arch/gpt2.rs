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

use crate::model::{Arch, Model, ModelInfo, Origin};
use crate::numeric::ops::{self, Activation};
use crate::numeric::packed::PackedMatrix;
use crate::tokenize::{Encoded, Tokenizer};
use crate::trace::{ForwardOptions, LayerTrace, Positional, TopToken, Trace};
use crate::weights::safetensors::{Matrix, SafeTensors, Vector};
use crate::{Error, Result};
use ndarray::{Array2, Array3, s};
use serde::Deserialize;
use std::time::Instant;

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
        crate::model::check_hf_sizes(
            file,
            &[
                ("vocab_size", self.vocab_size),
                ("n_embd", self.n_embd),
                ("n_layer", self.n_layer),
                ("n_head", self.n_head),
                ("n_positions", self.n_positions),
                ("n_inner", self.d_ff()),
            ],
            ("n_layer", self.n_layer),
            [("n_embd", self.n_embd), ("n_head", self.n_head)],
            ("layer_norm_epsilon", self.layer_norm_epsilon),
        )?;
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

struct Block {
    ln1_g: Vector,
    ln1_b: Vector,
    /// `[3d, d]` (transposed view of Conv1D `[d, 3d]`).
    qkv: PackedMatrix,
    qkv_b: Vector,
    o: PackedMatrix,
    o_b: Vector,
    ln2_g: Vector,
    ln2_b: Vector,
    fc: PackedMatrix,
    fc_b: Vector,
    proj: PackedMatrix,
    proj_b: Vector,
}

pub struct Gpt2 {
    cfg: Gpt2Config,
    act: Activation,
    eps: f32,
    info: ModelInfo,
    tokenizer: Tokenizer,
    wte: Matrix,
    wpe: Matrix,
    blocks: Vec<Block>,
    lnf_g: Vector,
    lnf_b: Vector,
    /// The LM head `[vocab, d]`, packed: `lm_head.weight` when the file has one, else `wte` (tied).
    head: PackedMatrix,
}

impl Gpt2 {
    /// Build from an opened folder: config.json text (`config_file` names it in errors), the weights and the
    /// tokenizer.
    pub fn load(
        config: &str,
        config_file: &str,
        weights: &SafeTensors,
        tokenizer: Tokenizer,
        origin: Origin,
    ) -> Result<Self> {
        let cfg: Gpt2Config = crate::model::parse_config(config, config_file)?;
        let act = cfg.validate(config_file)?;
        let pre = if weights.contains("transformer.wte.weight") {
            "transformer."
        } else {
            ""
        };
        let d = cfg.n_embd;
        let f = cfg.d_ff();
        let vec = |name: &str, n: usize| weights.vector(&format!("{pre}{name}"), n);
        // Conv1D: stored [in, out], presented as [out, in].
        let conv = |name: &str, out: usize, inp: usize| {
            weights.matrix_transposed(&format!("{pre}{name}"), out, inp)
        };
        let wte = weights.matrix(&format!("{pre}wte.weight"), cfg.vocab_size, d)?;
        let wpe = weights.matrix(&format!("{pre}wpe.weight"), cfg.n_positions, d)?;
        let mut blocks = Vec::with_capacity(cfg.n_layer);
        for l in 0..cfg.n_layer {
            let p = format!("h.{l}.");
            blocks.push(Block {
                ln1_g: vec(&format!("{p}ln_1.weight"), d)?,
                ln1_b: vec(&format!("{p}ln_1.bias"), d)?,
                qkv: PackedMatrix::from_view(
                    &conv(&format!("{p}attn.c_attn.weight"), 3 * d, d)?.view(),
                ),
                qkv_b: vec(&format!("{p}attn.c_attn.bias"), 3 * d)?,
                o: PackedMatrix::from_view(&conv(&format!("{p}attn.c_proj.weight"), d, d)?.view()),
                o_b: vec(&format!("{p}attn.c_proj.bias"), d)?,
                ln2_g: vec(&format!("{p}ln_2.weight"), d)?,
                ln2_b: vec(&format!("{p}ln_2.bias"), d)?,
                fc: PackedMatrix::from_view(&conv(&format!("{p}mlp.c_fc.weight"), f, d)?.view()),
                fc_b: vec(&format!("{p}mlp.c_fc.bias"), f)?,
                proj: PackedMatrix::from_view(
                    &conv(&format!("{p}mlp.c_proj.weight"), d, f)?.view(),
                ),
                proj_b: vec(&format!("{p}mlp.c_proj.bias"), d)?,
            });
        }
        let lnf_g = vec("ln_f.weight", d)?;
        let lnf_b = vec("ln_f.bias", d)?;
        let lm_head = if weights.contains("lm_head.weight") {
            Some(weights.matrix("lm_head.weight", cfg.vocab_size, d)?)
        } else {
            None
        };
        let head = PackedMatrix::from_view(&lm_head.as_ref().unwrap_or(&wte).view());
        let notes = vec![
            "pre-LN blocks: x + attn(ln_1(x)), then x + mlp(ln_2(x)); final ln_f".to_string(),
            format!(
                "activation {} ({:?}), LayerNorm eps {:e}",
                cfg.activation_function, act, cfg.layer_norm_epsilon
            ),
            format!(
                "Conv1D weights [in, out] used transposed; LM head {}",
                if lm_head.is_some() {
                    "separate"
                } else {
                    "tied to wte"
                }
            ),
            crate::model::dtype_note(weights),
        ];
        let info = ModelInfo {
            spec: origin.spec,
            name: origin.name,
            arch: Arch::Gpt2,
            n_layers: cfg.n_layer,
            n_heads: cfg.n_head,
            n_kv_heads: cfg.n_head,
            d_model: d,
            d_ff: f,
            vocab_size: cfg.vocab_size,
            max_len: cfg.n_positions,
            n_params: crate::model::count_params(weights),
            causal: true,
            positional: "learned".into(),
            tokenizer: tokenizer.description().to_string(),
            source: origin.source,
            notes,
        };
        Ok(Gpt2 {
            eps: cfg.layer_norm_epsilon as f32,
            cfg,
            act,
            info,
            tokenizer,
            wte,
            wpe,
            blocks,
            lnf_g,
            lnf_b,
            head,
        })
    }

    fn attention(&self, b: &Block, x: &Array2<f32>) -> ops::Attention {
        let a = ops::layer_norm_view(&x.view(), &b.ln1_g.view(), &b.ln1_b.view(), self.eps);
        let qkv = b.qkv.matmul_t(&a.view()) + b.qkv_b.view();
        let d = self.cfg.n_embd;
        let q = qkv.slice(s![.., 0..d]).to_owned();
        let k = qkv.slice(s![.., d..2 * d]).to_owned();
        let v = qkv.slice(s![.., 2 * d..3 * d]).to_owned();
        let h = self.cfg.n_head;
        ops::attention(&q, &k, &v, h, h, d / h, true)
    }

    /// LM-head logits `[n, vocab]` of `ln_f(hidden)`.
    pub fn logits(&self, hidden: &Array2<f32>) -> Array2<f32> {
        let h = ops::layer_norm_view(
            &hidden.view(),
            &self.lnf_g.view(),
            &self.lnf_b.view(),
            self.eps,
        );
        self.head.matmul_t(&h.view())
    }

    fn top_tokens(&self, logits: &Array2<f32>, k: usize) -> Vec<Vec<TopToken>> {
        logits
            .rows()
            .into_iter()
            .map(|row| {
                let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let sum: f64 = row.iter().map(|v| ((v - max) as f64).exp()).sum();
                ops::top_k(&row, k)
                    .into_iter()
                    .map(|i| TopToken {
                        id: i as u32,
                        text: self.tokenizer.token_label(i as u32),
                        prob: (((row[i] - max) as f64).exp() / sum) as f32,
                    })
                    .collect()
            })
            .collect()
    }
}

impl Model for Gpt2 {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    fn forward(&self, enc: &Encoded, opts: &ForwardOptions) -> Result<Trace> {
        let start = Instant::now();
        let n = enc.ids.len();
        let d = self.cfg.n_embd;
        let wpe = self.wpe.view();
        if n > wpe.nrows() {
            return Err(Error::Input(format!(
                "the text is {n} tokens long; {} takes at most {}",
                self.info.name,
                wpe.nrows()
            )));
        }
        let pos = wpe.slice(s![..n, ..]).to_owned();
        let wte = self.wte.view();
        let mut x = pos.clone();
        for (i, mut row) in x.rows_mut().into_iter().enumerate() {
            let id = enc.ids.get(i).copied().unwrap_or(0) as usize;
            if id >= wte.nrows() {
                return Err(Error::Input(format!(
                    "token id {id} at position {i} is outside the model's vocabulary of {} (tokenizer.json does not \
                     match the weights)",
                    wte.nrows()
                )));
            }
            row += &wte.row(id);
        }
        debug_assert_eq!(x.ncols(), d);
        let mut hidden = Vec::with_capacity(self.blocks.len() + 1);
        hidden.push(x.clone());
        let mut layers = Vec::with_capacity(self.blocks.len());
        for (l, b) in self.blocks.iter().enumerate() {
            let att = self.attention(b, &x);
            let attn_out = b.o.matmul_t(&att.context.view()) + b.o_b.view();
            x += &attn_out;
            let mid = x.clone();
            let m = ops::layer_norm_view(&x.view(), &b.ln2_g.view(), &b.ln2_b.view(), self.eps);
            let mut inner = b.fc.matmul_t(&m.view()) + b.fc_b.view();
            self.act.apply_in_place(&mut inner);
            let ffn_out = b.proj.matmul_t(&inner.view()) + b.proj_b.view();
            x += &ffn_out;
            layers.push(LayerTrace::record(
                att.probs,
                opts.keep_attention,
                mid,
                &attn_out,
                &ffn_out,
            ));
            opts.report(l + 1, self.blocks.len());
            hidden.push(x.clone());
        }
        let next_tokens = (opts.top_k > 0).then(|| self.top_tokens(&self.logits(&x), opts.top_k));
        let mut trace = Trace::new(
            enc.tokens.clone(),
            hidden,
            layers,
            Positional::Learned(pos),
            start.elapsed(),
        );
        trace.next_tokens = next_tokens;
        Ok(trace)
    }

    fn layer_attention(&self, layer: usize, resid_in: &Array2<f32>) -> Result<Array3<f32>> {
        let b = crate::model::checked_block(&self.blocks, layer, resid_in, self.cfg.n_embd)?;
        Ok(self.attention(b, resid_in).probs)
    }

    fn logit_lens(&self, hidden: &Array2<f32>, k: usize) -> Option<Vec<Vec<TopToken>>> {
        if hidden.ncols() != self.cfg.n_embd {
            return None;
        }
        Some(self.top_tokens(&self.logits(hidden), k))
    }
}
