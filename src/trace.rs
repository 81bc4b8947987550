//! What one forward pass records. The UI, the exporters and the analysis read only this.
//!
//! Scaling: the residual stream is kept for every layer boundary (`(L+1) × n × d` floats) and the mid-block stream
//! (`L × n × d`). Attention probabilities (`L × H × n × n`) are kept only when [`ForwardOptions::keep_attention`]
//! asks for them; otherwise any layer's attention can be recomputed exactly from `hidden[layer]` with
//! [`crate::model::Model::layer_attention`] (see [`layer_attention`]), so long inputs never hold every matrix at once.

use ndarray::{Array2, Array3};
use serde::Serialize;
use std::borrow::Cow;
use std::time::Duration;

/// One token of the input.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TokenInfo {
    /// Vocabulary id.
    pub id: u32,
    /// The vocabulary string of the token (`[CLS]`, `##ing`, `Ġlove`).
    pub text: String,
    /// A label for display: readable, single line, control characters escaped.
    #[serde(skip)]
    pub label: String,
    /// Byte offsets into the input text (`start == end` for added special tokens).
    pub start: usize,
    pub end: usize,
    /// Special token ([CLS], [SEP], BOS, ...).
    #[serde(skip)]
    pub special: bool,
    /// Segment (token type) id: 0 for sentence A, 1 for sentence B.
    #[serde(skip)]
    pub type_id: u32,
}

/// The positional signal of the model, for the positional views and `positional.npy`.
#[derive(Debug, Clone)]
pub enum Positional {
    /// Fixed sinusoidal vectors added to the embeddings, `[n, d_model]`.
    Sinusoidal(Array2<f32>),
    /// Learned absolute position embeddings added to the embeddings, `[n, d_model]`.
    Learned(Array2<f32>),
    /// Rotary embeddings: nothing is added; queries and keys are rotated by `angles[pos, i] = pos * freqs[i]`
    /// for each of the `head_dim / 2` frequency pairs.
    Rotary {
        freqs: Vec<f32>,
        angles: Array2<f32>,
        head_dim: usize,
    },
}

impl Positional {
    /// The matrix written to `positional.npy`: the added vectors `[n, d_model]`, or for RoPE the angles
    /// `[n, head_dim/2]` in radians.
    pub fn matrix(&self) -> &Array2<f32> {
        match self {
            Positional::Sinusoidal(m) | Positional::Learned(m) => m,
            Positional::Rotary { angles, .. } => angles,
        }
    }
    pub fn kind(&self) -> &'static str {
        match self {
            Positional::Sinusoidal(_) => "sinusoidal",
            Positional::Learned(_) => "learned",
            Positional::Rotary { .. } => "rotary",
        }
    }
}

/// One of the k most likely next tokens at a position.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TopToken {
    pub id: u32,
    pub text: String,
    pub prob: f32,
}

/// What one block recorded.
#[derive(Debug, Clone)]
pub struct LayerTrace {
    /// Attention probabilities `[heads, n, n]`, row = query, column = key; `None` when not kept (recompute with
    /// [`layer_attention`]).
    pub attention: Option<Array3<f32>>,
    /// The residual stream between the attention and feed-forward sub-layers `[n, d]` (post-LN models: after the
    /// first LayerNorm).
    pub mid: Array2<f32>,
    /// Per token: L2 norm of what the attention sub-layer wrote (the output projection's output).
    pub attn_update_norm: Vec<f32>,
    /// Per token: L2 norm of what the feed-forward sub-layer wrote.
    pub ffn_update_norm: Vec<f32>,
}

impl LayerTrace {
    /// What a block recorded: its attention probabilities (kept when `keep`), the mid-block stream, and the outputs
    /// of its attention and feed-forward sub-layers (whose per-token norms are stored).
    pub fn record(
        probs: Array3<f32>,
        keep: bool,
        mid: Array2<f32>,
        attn_update: &Array2<f32>,
        ffn_update: &Array2<f32>,
    ) -> Self {
        LayerTrace {
            attention: keep.then_some(probs),
            attn_update_norm: crate::model::ops::row_norms(&attn_update.view()),
            ffn_update_norm: crate::model::ops::row_norms(&ffn_update.view()),
            mid,
        }
    }
}

/// Everything one forward pass recorded.
#[derive(Debug, Clone)]
pub struct Trace {
    pub text: String,
    pub text_b: Option<String>,
    pub tokens: Vec<TokenInfo>,
    /// `hidden[l]` is the residual stream entering block `l`; `hidden[L]` leaves the last block (before any final
    /// norm). `L + 1` entries, each `[n, d_model]`.
    pub hidden: Vec<Array2<f32>>,
    pub layers: Vec<LayerTrace>,
    pub positional: Positional,
    /// Decoders: for every position, the top-k next tokens after the final norm + LM head.
    pub next_tokens: Option<Vec<Vec<TopToken>>>,
    /// GQA: `kv_group[h]` is the KV head that query head `h` reads. Empty for plain multi-head attention.
    pub kv_group: Vec<usize>,
    /// Wall time of the forward pass (tokenization excluded).
    pub elapsed: Duration,
}

impl Trace {
    /// A trace of `tokens` with no text attached yet (`model::run` sets it), no next tokens and no GQA groups.
    pub fn new(
        tokens: Vec<TokenInfo>,
        hidden: Vec<Array2<f32>>,
        layers: Vec<LayerTrace>,
        positional: Positional,
        elapsed: Duration,
    ) -> Self {
        Trace {
            text: String::new(),
            text_b: None,
            tokens,
            hidden,
            layers,
            positional,
            next_tokens: None,
            kv_group: vec![],
            elapsed,
        }
    }

    pub fn n_tokens(&self) -> usize {
        self.tokens.len()
    }
    pub fn n_layers(&self) -> usize {
        self.layers.len()
    }
    pub fn d_model(&self) -> usize {
        self.hidden.first().map(|h| h.ncols()).unwrap_or(0)
    }
    /// The residual stream leaving block `l`.
    pub fn layer_output(&self, l: usize) -> &Array2<f32> {
        &self.hidden[l + 1]
    }
}

/// Options of a forward pass.
#[derive(Debug, Clone, Copy)]
pub struct ForwardOptions {
    /// Keep every layer's attention matrix in the trace.
    pub keep_attention: bool,
    /// How many next tokens to record per position (decoders); 0 = none.
    pub top_k: usize,
}

impl Default for ForwardOptions {
    fn default() -> Self {
        ForwardOptions {
            keep_attention: true,
            top_k: 5,
        }
    }
}

impl ForwardOptions {
    /// Keep attention unless `L × H × n × n` floats would exceed `budget_bytes`.
    pub fn for_size(layers: usize, heads: usize, n: usize, budget_bytes: usize) -> Self {
        let bytes = layers
            .saturating_mul(heads)
            .saturating_mul(n)
            .saturating_mul(n)
            .saturating_mul(4);
        ForwardOptions {
            keep_attention: bytes <= budget_bytes,
            ..Default::default()
        }
    }
}

/// The attention of `layer`, borrowed from the trace when kept, else recomputed from `hidden[layer]`.
pub fn layer_attention<'a>(
    model: &dyn crate::model::Model,
    trace: &'a Trace,
    layer: usize,
) -> crate::Result<Cow<'a, Array3<f32>>> {
    let lt = trace.layers.get(layer).ok_or_else(|| {
        crate::Error::Input(format!(
            "layer {layer} out of range (the model has {} layers, numbered 0..{})",
            trace.layers.len(),
            trace.layers.len().saturating_sub(1)
        ))
    })?;
    match &lt.attention {
        Some(a) => Ok(Cow::Borrowed(a)),
        None => Ok(Cow::Owned(
            model.layer_attention(layer, &trace.hidden[layer])?,
        )),
    }
}
