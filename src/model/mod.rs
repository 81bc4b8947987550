//! The common model interface, model information, and loading by spec.
//!
//! Every architecture lives in its own file and implements [`Model`]. A forward pass is a plain per-layer loop that
//! fills a [`Trace`]; it never prints and never touches the terminal.

pub mod arch;
pub mod attention;
pub mod block;
pub mod budget;
pub mod config;
pub mod embed;
pub mod encdec;
pub mod engine;
pub mod generate;
pub mod head;
pub mod linear;
pub mod load;

pub use arch::{bert, gpt2, llama, textbook, textbook_dates};
pub use config::*;
pub use engine::Transformer;
pub use load::*;

use crate::tokenize::{Encoded, Tokenizer};
use crate::trace::{ForwardOptions, Trace};
use crate::{Error, Result};
use ndarray::{Array2, Array3};
use serde::Serialize;

/// The architectures `attn` runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Arch {
    Textbook,
    Bert,
    Gpt2,
    Llama,
    Bart,
    T5,
    Marian,
}

impl Arch {
    pub fn name(self) -> &'static str {
        match self {
            Arch::Textbook => "textbook",
            Arch::Bert => "bert",
            Arch::Gpt2 => "gpt2",
            Arch::Llama => "llama",
            Arch::Bart => "bart",
            Arch::T5 => "t5",
            Arch::Marian => "marian",
        }
    }
}

/// What a loaded model is: shown by `attn info`, written into `meta.json`, shown in the UI header.
#[derive(Debug, Clone, Serialize)]
pub struct ModelInfo {
    /// The spec the user gave (`textbook`, `minilm`, a path).
    pub spec: String,
    /// A human name (`all-MiniLM-L6-v2`, `textbook encoder (random weights, seed 42)`).
    pub name: String,
    pub arch: Arch,
    pub n_layers: usize,
    pub n_heads: usize,
    pub n_kv_heads: usize,
    pub d_model: usize,
    pub d_ff: usize,
    pub vocab_size: usize,
    /// The longest input in tokens.
    pub max_len: usize,
    pub n_params: u64,
    /// Decoder (causal mask).
    pub causal: bool,
    /// How positions enter: sinusoidal, learned, rotary or relative.
    pub positional: crate::trace::PositionalKind,
    /// Tokenizer description.
    pub tokenizer: String,
    /// Where it was loaded from (`built-in`, a path).
    pub source: String,
    /// Extra facts worth showing (weight dtypes, quantization types, norm eps...).
    pub notes: Vec<String>,
}

impl ModelInfo {
    pub fn head_dim(&self) -> usize {
        self.d_model / self.n_heads.max(1)
    }
    /// Whether the model reads a second sentence as its own segment (token type embeddings: BERT). Elsewhere a
    /// second sentence would only be glued on, so it is refused.
    pub fn takes_sentence_pairs(&self) -> bool {
        self.arch == Arch::Bert
    }
}

/// One Transformer, ready to run.
pub trait Model: Send + Sync {
    fn info(&self) -> &ModelInfo;
    fn tokenizer(&self) -> &Tokenizer;
    /// Run the model on already-tokenized input (`enc.ids.len() <= info().max_len` is checked by [`run`]).
    fn forward(&self, enc: &Encoded, opts: &ForwardOptions) -> Result<Trace>;
    /// Recompute the attention probabilities `[heads, n, n]` of `layer` from the residual stream entering it
    /// (`Trace::hidden[layer]`); equal to what `forward` recorded.
    fn layer_attention(&self, layer: usize, resid_in: &Array2<f32>) -> Result<Array3<f32>>;
    /// The attention `[n, n]` of each query head in `heads` of `layer`, from the residual stream entering it: the
    /// same rows as [`Model::layer_attention`], computed one head at a time (at 8k tokens a head is 256 MiB, a layer
    /// of SmolLM2 2.3 GiB).
    fn head_attention(
        &self,
        layer: usize,
        heads: &[usize],
        resid_in: &Array2<f32>,
    ) -> Result<Vec<Array2<f32>>>;
    /// Re-run blocks `layer..` from `clean.hidden[layer]` (the cached `resid_pre`) with `opts` — e.g. an
    /// intervention at `layer` — and return the whole trace: `hidden[..=layer]`, `layers[..layer]` and the captures of
    /// earlier layers are `clean`'s.
    fn resume(&self, clean: &Trace, layer: usize, opts: &ForwardOptions) -> Result<Trace>;
    /// Decoders: the top-`k` next tokens at every position if the residual stream `hidden` went straight through the
    /// final norm and LM head (the "logit lens"). `None` for encoders.
    fn logit_lens(
        &self,
        hidden: &Array2<f32>,
        k: usize,
    ) -> Option<Vec<Vec<crate::trace::TopToken>>>;
    /// The engine with its weights (for explanations that read W_O slices, the final norm, the unembedding).
    fn engine(&self) -> &Transformer;
}

/// The block `Model::layer_attention` was asked for, after checking the layer index and the residual stream's width
/// (a programming or file mix-up, reported as an error rather than a panic).
pub(crate) fn checked_block<'a, B>(
    blocks: &'a [B],
    layer: usize,
    resid_in: &Array2<f32>,
    width: usize,
) -> Result<&'a B> {
    let b = blocks.get(layer).ok_or_else(|| {
        Error::Input(format!(
            "layer {layer} out of range (the model has layers 0..={})",
            blocks.len().saturating_sub(1)
        ))
    })?;
    if resid_in.ncols() != width {
        return Err(Error::Input(format!(
            "the residual stream has width {}; the model's is {width}",
            resid_in.ncols()
        )));
    }
    Ok(b)
}

/// Tokenize and run: checks empty text and the model's length limit, then runs the forward pass.
pub fn run(
    model: &dyn Model,
    text: &str,
    text_b: Option<&str>,
    opts: &ForwardOptions,
) -> Result<Trace> {
    let enc = model.tokenizer().encode(text, text_b)?;
    let mut trace = run_encoded(model, enc, opts)?;
    trace.text = text.to_string();
    trace.text_b = text_b.map(str::to_string);
    Ok(trace)
}

/// Run exactly these token ids (nothing added; each checked against the vocabulary). The trace's text is their
/// decoding.
pub fn run_ids(model: &dyn Model, ids: &[u32], opts: &ForwardOptions) -> Result<Trace> {
    let enc = model.tokenizer().encode_ids(ids)?;
    let mut trace = run_encoded(model, enc, opts)?;
    trace.text = model.tokenizer().decode(ids);
    Ok(trace)
}

/// Check the length limit and run the forward pass on an encoded input.
pub fn run_encoded(model: &dyn Model, mut enc: Encoded, opts: &ForwardOptions) -> Result<Trace> {
    let info = model.info();
    if enc.ids.len() > info.max_len {
        let how = if info.arch == Arch::Textbook {
            " (raise it with --max-len)"
        } else {
            ", its own limit: shorten the text"
        };
        return Err(Error::Input(format!(
            "the text is {} tokens long; {} takes at most {}{how}",
            enc.ids.len(),
            info.name,
            info.max_len
        )));
    }
    let mut trace = model.forward(&enc, opts)?;
    if trace.tokens.is_empty() {
        trace.tokens = std::mem::take(&mut enc.tokens);
    }
    Ok(trace)
}

/// Settings of the built-in textbook model (the `--layers ... --max-len` flags).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TextbookConfig {
    pub layers: usize,
    pub heads: usize,
    pub d_model: usize,
    pub d_ff: usize,
    pub seed: u64,
    pub causal: bool,
    pub max_len: usize,
}

impl Default for TextbookConfig {
    fn default() -> Self {
        TextbookConfig {
            layers: 6,
            heads: 8,
            d_model: 512,
            d_ff: 2048,
            seed: 42,
            causal: false,
            max_len: 512,
        }
    }
}

/// The attention of `layer`, borrowed from the trace when kept, else recomputed from `hidden[layer]`.
pub fn layer_attention<'a>(
    model: &dyn Model,
    trace: &'a Trace,
    layer: usize,
) -> Result<std::borrow::Cow<'a, Array3<f32>>> {
    match &layer_of(trace, layer)?.attention {
        Some(a) => Ok(std::borrow::Cow::Borrowed(a)),
        None => Ok(std::borrow::Cow::Owned(
            model.layer_attention(layer, &trace.hidden[layer])?,
        )),
    }
}

/// The attention `[n, n]` of `head` at `layer`: borrowed from the trace when kept, else recomputed (that head alone)
/// from `hidden[layer]`.
pub fn head_attention(
    model: &dyn Model,
    trace: &Trace,
    layer: usize,
    head: usize,
) -> Result<Array2<f32>> {
    if let Some(a) = &layer_of(trace, layer)?.attention {
        return if head < a.dim().0 {
            Ok(a.index_axis(ndarray::Axis(0), head).to_owned())
        } else {
            Err(Error::Input(format!(
                "head {head} out of range (the model has heads 0..={})",
                a.dim().0.saturating_sub(1)
            )))
        };
    }
    let mut v = model.head_attention(layer, &[head], &trace.hidden[layer])?;
    v.pop()
        .ok_or_else(|| Error::Input(format!("layer {layer}: no attention for head {head}")))
}

/// What block `layer` of `trace` recorded, or an error naming the range.
fn layer_of(trace: &Trace, layer: usize) -> Result<&crate::trace::LayerTrace> {
    trace.layers.get(layer).ok_or_else(|| {
        Error::Input(format!(
            "layer {layer} out of range (the model has {} layers, numbered 0..{})",
            trace.layers.len(),
            trace.layers.len().saturating_sub(1)
        ))
    })
}
