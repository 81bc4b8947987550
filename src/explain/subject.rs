//! What an explanation is about: the one stack of an encoder or decoder model, or one of the three attentions of an
//! encoder–decoder (encoder self-attention over the source, masked decoder self-attention over the decoder input,
//! cross-attention from the decoder stream to the encoder memory). A [`Subject`] names the stack, the embeddings,
//! the attention's shape and weights, its hook points and its score bias, and captures one layer.

use crate::model::Model;
use crate::model::attention::{AttnSpec, AttnWeights};
use crate::model::block::{Block, Env, Stack};
use crate::model::embed::Embeddings;
use crate::model::encdec::EncoderDecoder;
use crate::trace::{ForwardOptions, HookPoint, Trace};
use crate::{Error, Result};
use ndarray::{Array1, Array2, Axis};

/// Which attention of an encoder–decoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// The encoder's self-attention (bidirectional, over the source).
    Encoder,
    /// The decoder's masked self-attention (over the decoder input).
    Decoder,
    /// The decoder's cross-attention: queries from the decoder stream, keys and values from the encoder memory.
    Cross,
}

/// The hook points of one attention sub-layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttnPoints {
    pub q: HookPoint,
    pub k: HookPoint,
    pub v: HookPoint,
    pub pattern: HookPoint,
    pub z: HookPoint,
    pub out: HookPoint,
}

/// Self-attention's points.
pub const SELF: AttnPoints = AttnPoints {
    q: HookPoint::AttnQ,
    k: HookPoint::AttnK,
    v: HookPoint::AttnV,
    pattern: HookPoint::AttnPattern,
    z: HookPoint::AttnZ,
    out: HookPoint::AttnOut,
};

/// Cross-attention's points.
pub const CROSS: AttnPoints = AttnPoints {
    q: HookPoint::CrossQ,
    k: HookPoint::CrossK,
    v: HookPoint::CrossV,
    pattern: HookPoint::CrossPattern,
    z: HookPoint::CrossZ,
    out: HookPoint::CrossOut,
};

/// The decoder's cross-attention sub-layer's stream points (captured with the decoder's layer).
const CROSS_STREAM: [HookPoint; 2] = [HookPoint::CrossOut, HookPoint::ResidCross];

/// What an explanation reads.
#[derive(Clone, Copy)]
pub enum Subject<'a> {
    /// An encoder or decoder model (its one stack).
    Model(&'a dyn Model),
    /// One attention of an encoder–decoder; `memory` is what cross-attention reads ([`EncoderDecoder::memory`]),
    /// needed to re-run a decoder layer (not for [`Part::Encoder`]).
    EncDec {
        model: &'a EncoderDecoder,
        part: Part,
        memory: Option<&'a Array2<f32>>,
    },
}

impl<'a> Subject<'a> {
    /// The stack whose layer is explained.
    pub fn stack(&self) -> &'a Stack {
        match *self {
            Subject::Model(m) => &m.engine().stack,
            Subject::EncDec { model, part, .. } => match part {
                Part::Encoder => &model.encoder,
                Part::Decoder | Part::Cross => &model.decoder,
            },
        }
    }

    /// The embeddings of the stack's input.
    pub fn embed(&self) -> &'a Embeddings {
        match *self {
            Subject::Model(m) => &m.engine().embed,
            Subject::EncDec {
                model,
                part: Part::Encoder,
                ..
            } => &model.enc_embed,
            Subject::EncDec { model, .. } => &model.dec_embed,
        }
    }

    /// Whether the attention is cross-attention.
    pub fn is_cross(&self) -> bool {
        matches!(
            self,
            Subject::EncDec {
                part: Part::Cross,
                ..
            }
        )
    }

    /// Whether the stack's blocks have a cross-attention sub-layer (a decoder of an encoder–decoder).
    pub fn has_cross(&self) -> bool {
        self.stack().cross.is_some()
    }

    /// The attention's shape (heads, scale, causal).
    pub fn spec(&self) -> Result<&'a AttnSpec> {
        let s = self.stack();
        if self.is_cross() {
            s.cross
                .as_ref()
                .ok_or_else(|| Error::Input("explain: the decoder has no cross-attention".into()))
        } else {
            Ok(&s.attn)
        }
    }

    /// Block `layer`.
    pub fn block(&self, layer: usize) -> Result<&'a Block> {
        self.stack().blocks.get(layer).ok_or_else(|| {
            Error::Input(format!(
                "layer {layer} out of range (0..={})",
                self.stack().blocks.len().saturating_sub(1)
            ))
        })
    }

    /// The attention's projections in block `layer` (the block's `cross` ones for cross-attention).
    pub fn attn(&self, layer: usize) -> Result<&'a AttnWeights> {
        let b = self.block(layer)?;
        if self.is_cross() {
            b.cross.as_ref().map(|c| &c.attn).ok_or_else(|| {
                Error::Input(format!("explain: block {layer} has no cross-attention"))
            })
        } else {
            Ok(&b.attn)
        }
    }

    /// The attention's hook points.
    pub fn points(&self) -> AttnPoints {
        if self.is_cross() { CROSS } else { SELF }
    }

    /// The additive score bias of `head`'s row `query` over `n` keys (T5's relative position bias of
    /// self-attention), if the attention has one.
    pub fn bias_row(&self, head: usize, query: usize, n: usize) -> Option<Array1<f32>> {
        let Subject::EncDec { model, part, .. } = *self else {
            return None;
        };
        let bias = match part {
            Part::Encoder => model.enc_bias.as_ref()?,
            Part::Decoder => model.dec_bias.as_ref()?,
            Part::Cross => return None,
        };
        let b = bias.bias(n, n);
        (head < b.dim().0 && query < n).then(|| b.index_axis(Axis(0), head).row(query).to_owned())
    }

    /// `trace` with block `layer`'s hook points (self-attention, cross-attention where the block has it, stream and
    /// MLP) captured: block `layer` is re-run alone from `hidden[layer]`.
    pub fn capture(&self, trace: &Trace, layer: usize) -> Result<Trace> {
        let mut opts = capture_layer(layer);
        let (model, part, memory) = match *self {
            Subject::Model(m) => return m.resume(trace, layer, &opts),
            Subject::EncDec {
                model,
                part,
                memory,
            } => (model, part, memory),
        };
        let x = trace.hidden.get(layer).ok_or_else(|| {
            Error::Input(format!(
                "explain: the trace has no stream entering layer {layer}"
            ))
        })?;
        let stack = self.stack();
        if stack.cross.is_some() {
            for p in [
                CROSS.q,
                CROSS.k,
                CROSS.v,
                CROSS.pattern,
                CROSS.z,
                CROSS_STREAM[0],
                CROSS_STREAM[1],
            ] {
                opts.hooks.capture.insert((p, layer));
            }
        }
        let n = x.nrows();
        let bias = match part {
            Part::Encoder => model.enc_bias.as_ref(),
            Part::Decoder | Part::Cross => model.dec_bias.as_ref(),
        }
        .map(|b| b.bias(n, n));
        let memory = match part {
            Part::Encoder => None,
            Part::Decoder | Part::Cross => Some(memory.ok_or_else(|| {
                Error::Input("explain: a decoder layer needs the encoder memory".into())
            })?),
        };
        let env = Env {
            memory,
            self_bias: bias.as_ref(),
            ..Default::default()
        };
        let run = stack.run(x.clone(), layer, &opts, &env)?;
        let mut out = trace.clone();
        for ((p, l), t) in run.captures.iter() {
            out.captures.insert(*p, *l, t.clone());
        }
        Ok(out)
    }
}

impl<'a, 'b: 'a> From<&'a (dyn Model + 'b)> for Subject<'a> {
    fn from(m: &'a (dyn Model + 'b)) -> Self {
        Subject::Model(m)
    }
}

/// The hook points one layer's explanations read.
pub const POINTS: [HookPoint; 12] = [
    HookPoint::AttnQ,
    HookPoint::AttnK,
    HookPoint::AttnV,
    HookPoint::AttnPattern,
    HookPoint::AttnZ,
    HookPoint::AttnOut,
    HookPoint::ResidMid,
    HookPoint::MlpPre,
    HookPoint::MlpPreLinear,
    HookPoint::MlpPost,
    HookPoint::MlpOut,
    HookPoint::ResidPost,
];

/// Forward options that capture [`POINTS`] at `layer` and nothing else.
pub fn capture_layer(layer: usize) -> ForwardOptions {
    let mut o = ForwardOptions {
        keep_attention: false,
        top_k: 0,
        stop_after: Some(layer),
        ..Default::default()
    };
    for p in POINTS {
        o.hooks.capture.insert((p, layer));
    }
    o
}
