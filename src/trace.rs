//! What one forward pass records. The UI, the exporters and the analysis read only this.
//!
//! Scaling: the residual stream is kept for every layer boundary (`(L+1) × n × d` floats) and the mid-block stream
//! (`L × n × d`). Attention probabilities (`L × H × n × n`) are kept only when [`ForwardOptions::keep_attention`]
//! asks for them; otherwise any layer's attention can be recomputed exactly from `hidden[layer]` with
//! [`crate::model::Model::layer_attention`] (see [`crate::model::layer_attention`]), so long inputs never hold every matrix at once.

pub use crate::hooks::{Captures, Edit, HookPoint, Hooks, Intervention};
pub use crate::tokenize::TokenInfo;
use ndarray::{Array2, Array3};
use serde::Serialize;
use std::time::Duration;

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
    /// A relative position bias added to the attention scores (T5): `[heads, 2n − 1]`, column `c` is the bias on a
    /// key `c − (n − 1)` positions after the query (negative: before), as the model used it on this input.
    Relative(Array2<f32>),
}

impl Positional {
    /// The matrix written to `positional.npy`: the added vectors `[n, d_model]`, or for RoPE the angles
    /// `[n, head_dim/2]` in radians.
    pub fn matrix(&self) -> &Array2<f32> {
        match self {
            Positional::Sinusoidal(m) | Positional::Learned(m) | Positional::Relative(m) => m,
            Positional::Rotary { angles, .. } => angles,
        }
    }
    pub fn kind(&self) -> PositionalKind {
        match self {
            Positional::Sinusoidal(_) => PositionalKind::Sinusoidal,
            Positional::Learned(_) => PositionalKind::Learned,
            Positional::Rotary { .. } => PositionalKind::Rotary,
            Positional::Relative(_) => PositionalKind::Relative,
        }
    }

    /// The relative bias by distance `[heads, 2n − 1]` of a score bias `[heads, n, n]` that depends only on the
    /// distance key − query (T5's buckets).
    pub fn relative(bias: &Array3<f32>) -> Positional {
        let (heads, n, _) = bias.dim();
        let width = (2 * n).saturating_sub(1);
        Positional::Relative(Array2::from_shape_fn((heads, width), |(h, c)| {
            let (i, j) = if c + 1 >= n {
                (0, c + 1 - n)
            } else {
                (n - 1 - c, 0)
            };
            bias[[h, i, j]]
        }))
    }
}

/// How a model knows where a token is: the one name of it in `attn info`, meta.json and file names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PositionalKind {
    /// The paper's fixed sin/cos vectors, added to the embeddings.
    Sinusoidal,
    /// Learned absolute position vectors, added to the embeddings.
    Learned,
    /// Rotary: queries and keys rotated inside attention; nothing added.
    Rotary,
    /// A learned bias on the attention scores by relative distance (T5); nothing added.
    Relative,
}

impl PositionalKind {
    pub fn name(self) -> &'static str {
        match self {
            PositionalKind::Sinusoidal => "sinusoidal",
            PositionalKind::Learned => "learned",
            PositionalKind::Rotary => "rotary",
            PositionalKind::Relative => "relative",
        }
    }
}

impl std::fmt::Display for PositionalKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
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
    /// Decoders of an encoder–decoder: the cross-attention `[heads, n_target, n_source]` when attention is kept.
    pub cross_attention: Option<Array3<f32>>,
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
            cross_attention: None,
            attn_update_norm: crate::numeric::ops::row_norms(&attn_update.view()),
            ffn_update_norm: crate::numeric::ops::row_norms(&ffn_update.view()),
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
    /// What the hooks of [`ForwardOptions::hooks`] captured.
    pub captures: Captures,
    /// The interventions this run was made with, one line each (empty for a clean run).
    pub interventions: Vec<String>,
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
            captures: Captures::default(),
            interventions: vec![],
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

/// Called by a forward pass after each block with `(blocks done, blocks in all)`, on the thread running it (for
/// progress bars; it must be cheap).
#[derive(Clone)]
pub struct Progress(pub std::sync::Arc<dyn Fn(usize, usize) + Send + Sync>);

impl std::fmt::Debug for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Progress")
    }
}

/// Options of a forward pass.
#[derive(Debug, Clone)]
pub struct ForwardOptions {
    /// Keep every layer's attention matrix in the trace.
    pub keep_attention: bool,
    /// How many next tokens to record per position (decoders); 0 = none.
    pub top_k: usize,
    /// Told after every block.
    pub progress: Option<Progress>,
    /// What to capture and edit on the way (nothing by default).
    pub hooks: Hooks,
    /// Stop after this block (the trace then ends there: `hidden` has `layer + 2` entries). For capturing one layer
    /// without running the rest (the explanation views). `None`: run every block.
    pub stop_after: Option<usize>,
}

impl Default for ForwardOptions {
    fn default() -> Self {
        ForwardOptions {
            keep_attention: true,
            top_k: 5,
            progress: None,
            hooks: Hooks::default(),
            stop_after: None,
        }
    }
}

impl ForwardOptions {
    /// Tell the progress callback, if any, that `done` of `total` blocks are finished.
    pub fn report(&self, done: usize, total: usize) {
        if let Some(p) = &self.progress {
            (p.0)(done, total);
        }
    }
}
