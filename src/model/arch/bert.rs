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

use crate::model::{Arch, Model, ModelInfo, Origin};
use crate::numeric::ops::{self, Activation};
use crate::numeric::packed::PackedMatrix;
use crate::tokenize::{Encoded, Tokenizer};
use crate::trace::{ForwardOptions, LayerTrace, Positional, Trace};
use crate::weights::safetensors::{Matrix, SafeTensors, Vector};
use crate::{Error, Result};
use ndarray::{Array2, Array3, s};
use serde::Deserialize;
use std::time::Instant;

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
        crate::model::check_hf_sizes(
            file,
            &[
                ("vocab_size", self.vocab_size),
                ("hidden_size", self.hidden_size),
                ("num_hidden_layers", self.num_hidden_layers),
                ("num_attention_heads", self.num_attention_heads),
                ("intermediate_size", self.intermediate_size),
                ("max_position_embeddings", self.max_position_embeddings),
                ("type_vocab_size", self.type_vocab_size),
            ],
            ("num_hidden_layers", self.num_hidden_layers),
            [
                ("hidden_size", self.hidden_size),
                ("num_attention_heads", self.num_attention_heads),
            ],
            ("layer_norm_eps", self.layer_norm_eps),
        )?;
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

struct Block {
    q: PackedMatrix,
    q_b: Vector,
    k: PackedMatrix,
    k_b: Vector,
    v: PackedMatrix,
    v_b: Vector,
    o: PackedMatrix,
    o_b: Vector,
    ln1_g: Vector,
    ln1_b: Vector,
    ff1: PackedMatrix,
    ff1_b: Vector,
    ff2: PackedMatrix,
    ff2_b: Vector,
    ln2_g: Vector,
    ln2_b: Vector,
}

pub struct Bert {
    cfg: BertConfig,
    act: Activation,
    eps: f32,
    info: ModelInfo,
    tokenizer: Tokenizer,
    word: Matrix,
    position: Matrix,
    token_type: Matrix,
    emb_ln_g: Vector,
    emb_ln_b: Vector,
    blocks: Vec<Block>,
}

/// Finds tensors under an optional prefix and with `weight`/`gamma`, `bias`/`beta` LayerNorm spellings.
struct Names<'a> {
    st: &'a SafeTensors,
    prefix: &'static str,
}

/// Pack a loaded `[out, in]` weight once for the forward pass (see [`PackedMatrix`]).
fn packed(m: Matrix) -> PackedMatrix {
    PackedMatrix::from_view(&m.view())
}

impl Names<'_> {
    fn matrix(&self, name: &str, rows: usize, cols: usize) -> Result<Matrix> {
        self.st
            .matrix(&format!("{}{name}", self.prefix), rows, cols)
    }
    fn vector(&self, name: &str, n: usize) -> Result<Vector> {
        self.st.vector(&format!("{}{name}", self.prefix), n)
    }
    /// LayerNorm `(γ, β)` under `base` (e.g. `embeddings.LayerNorm`).
    fn layer_norm(&self, base: &str, n: usize) -> Result<(Vector, Vector)> {
        let full = format!("{}{base}", self.prefix);
        if !self.st.contains(&format!("{full}.weight"))
            && self.st.contains(&format!("{full}.gamma"))
        {
            return Ok((
                self.vector(&format!("{base}.gamma"), n)?,
                self.vector(&format!("{base}.beta"), n)?,
            ));
        }
        Ok((
            self.vector(&format!("{base}.weight"), n)?,
            self.vector(&format!("{base}.bias"), n)?,
        ))
    }
}

impl Bert {
    /// Build from an opened folder: config.json text (`config_file` names it in errors), the weights and the
    /// tokenizer.
    pub fn load(
        config: &str,
        config_file: &str,
        weights: &SafeTensors,
        tokenizer: Tokenizer,
        origin: Origin,
    ) -> Result<Self> {
        let cfg: BertConfig = crate::model::parse_config(config, config_file)?;
        let act = cfg.validate(config_file)?;
        let prefix = if weights.contains("bert.embeddings.word_embeddings.weight") {
            "bert."
        } else {
            ""
        };
        let nm = Names {
            st: weights,
            prefix,
        };
        let d = cfg.hidden_size;
        let f = cfg.intermediate_size;
        let word = nm.matrix("embeddings.word_embeddings.weight", cfg.vocab_size, d)?;
        let position = nm.matrix(
            "embeddings.position_embeddings.weight",
            cfg.max_position_embeddings,
            d,
        )?;
        let token_type = nm.matrix(
            "embeddings.token_type_embeddings.weight",
            cfg.type_vocab_size,
            d,
        )?;
        let (emb_ln_g, emb_ln_b) = nm.layer_norm("embeddings.LayerNorm", d)?;
        let mut blocks = Vec::with_capacity(cfg.num_hidden_layers);
        for l in 0..cfg.num_hidden_layers {
            let p = format!("encoder.layer.{l}.");
            let (ln1_g, ln1_b) = nm.layer_norm(&format!("{p}attention.output.LayerNorm"), d)?;
            let (ln2_g, ln2_b) = nm.layer_norm(&format!("{p}output.LayerNorm"), d)?;
            blocks.push(Block {
                q: packed(nm.matrix(&format!("{p}attention.self.query.weight"), d, d)?),
                q_b: nm.vector(&format!("{p}attention.self.query.bias"), d)?,
                k: packed(nm.matrix(&format!("{p}attention.self.key.weight"), d, d)?),
                k_b: nm.vector(&format!("{p}attention.self.key.bias"), d)?,
                v: packed(nm.matrix(&format!("{p}attention.self.value.weight"), d, d)?),
                v_b: nm.vector(&format!("{p}attention.self.value.bias"), d)?,
                o: packed(nm.matrix(&format!("{p}attention.output.dense.weight"), d, d)?),
                o_b: nm.vector(&format!("{p}attention.output.dense.bias"), d)?,
                ln1_g,
                ln1_b,
                ff1: packed(nm.matrix(&format!("{p}intermediate.dense.weight"), f, d)?),
                ff1_b: nm.vector(&format!("{p}intermediate.dense.bias"), f)?,
                ff2: packed(nm.matrix(&format!("{p}output.dense.weight"), d, f)?),
                ff2_b: nm.vector(&format!("{p}output.dense.bias"), d)?,
                ln2_g,
                ln2_b,
            });
        }
        let eps = cfg.layer_norm_eps as f32;
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
            spec: origin.spec,
            name: origin.name,
            arch: Arch::Bert,
            n_layers: cfg.num_hidden_layers,
            n_heads: cfg.num_attention_heads,
            n_kv_heads: cfg.num_attention_heads,
            d_model: d,
            d_ff: f,
            vocab_size: cfg.vocab_size,
            max_len: cfg.max_position_embeddings,
            n_params: crate::model::count_params(weights),
            causal: false,
            positional: "learned".into(),
            tokenizer: tokenizer.description().to_string(),
            source: origin.source,
            notes,
        };
        Ok(Bert {
            cfg,
            act,
            eps,
            info,
            tokenizer,
            word,
            position,
            token_type,
            emb_ln_g,
            emb_ln_b,
            blocks,
        })
    }

    fn attention(&self, b: &Block, x: &Array2<f32>) -> ops::Attention {
        let xv = x.view();
        let q = b.q.matmul_t(&xv) + b.q_b.view();
        let k = b.k.matmul_t(&xv) + b.k_b.view();
        let v = b.v.matmul_t(&xv) + b.v_b.view();
        let h = self.cfg.num_attention_heads;
        ops::attention(&q, &k, &v, h, h, self.cfg.hidden_size / h, false)
    }

    /// `word[id] + position[i] + token_type[segment]` before the embedding LayerNorm, and the position rows.
    fn embed(&self, enc: &Encoded) -> Result<(Array2<f32>, Array2<f32>)> {
        let n = enc.ids.len();
        let d = self.cfg.hidden_size;
        let pos_all = self.position.view();
        if n > pos_all.nrows() {
            return Err(Error::Input(format!(
                "the text is {n} tokens long; {} takes at most {}",
                self.info.name,
                pos_all.nrows()
            )));
        }
        let pos = pos_all.slice(s![..n, ..]).to_owned();
        let word = self.word.view();
        let tt = self.token_type.view();
        let mut x = Array2::<f32>::zeros((n, d));
        for (i, mut row) in x.rows_mut().into_iter().enumerate() {
            let id = enc.ids.get(i).copied().unwrap_or(0) as usize;
            let seg = enc.type_ids.get(i).copied().unwrap_or(0) as usize;
            if id >= word.nrows() {
                return Err(Error::Input(format!(
                    "token id {id} at position {i} is outside the model's vocabulary of {} (tokenizer.json does not \
                     match the weights)",
                    word.nrows()
                )));
            }
            if seg >= tt.nrows() {
                return Err(Error::Input(format!(
                    "segment (token type) {seg} at position {i}: the model has only {} token types",
                    tt.nrows()
                )));
            }
            row.assign(&word.row(id));
            row += &pos.row(i);
            row += &tt.row(seg);
        }
        Ok((x, pos))
    }
}

impl Model for Bert {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    fn forward(&self, enc: &Encoded, opts: &ForwardOptions) -> Result<Trace> {
        let start = Instant::now();
        let (raw, pos) = self.embed(enc)?;
        let mut x = ops::layer_norm_view(
            &raw.view(),
            &self.emb_ln_g.view(),
            &self.emb_ln_b.view(),
            self.eps,
        );
        let mut hidden = Vec::with_capacity(self.blocks.len() + 1);
        hidden.push(x.clone());
        let mut layers = Vec::with_capacity(self.blocks.len());
        for (l, b) in self.blocks.iter().enumerate() {
            let att = self.attention(b, &x);
            let attn_out = b.o.matmul_t(&att.context.view()) + b.o_b.view();
            x += &attn_out;
            let mid = ops::layer_norm_view(&x.view(), &b.ln1_g.view(), &b.ln1_b.view(), self.eps);
            let mut inner = b.ff1.matmul_t(&mid.view()) + b.ff1_b.view();
            self.act.apply_in_place(&mut inner);
            let ffn_out = b.ff2.matmul_t(&inner.view()) + b.ff2_b.view();
            let sum = &mid + &ffn_out;
            x = ops::layer_norm_view(&sum.view(), &b.ln2_g.view(), &b.ln2_b.view(), self.eps);
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
        Ok(Trace::new(
            enc.tokens.clone(),
            hidden,
            layers,
            Positional::Learned(pos),
            start.elapsed(),
        ))
    }

    fn layer_attention(&self, layer: usize, resid_in: &Array2<f32>) -> Result<Array3<f32>> {
        let b = crate::model::checked_block(&self.blocks, layer, resid_in, self.cfg.hidden_size)?;
        Ok(self.attention(b, resid_in).probs)
    }
}
