//! The encoder–decoder of "Attention Is All You Need" (and of BART, T5, Marian) on the block engine: an encoder
//! [`Stack`] reads the source with bidirectional self-attention; a decoder [`Stack`] reads the target prefix with
//! masked self-attention and the encoder output through cross-attention; an [`LmHead`] turns the decoder's last
//! stream into next-token logits.
//!
//! ```text
//! source ids → embed → [self-attn → add&norm → FFN → add&norm] × N ──────────────┐ memory
//! target ids → embed → [masked self-attn → add&norm → cross-attn(memory) → add&norm → FFN → add&norm] × N → logits
//! ```
//!
//! The decoder input for a known target is `shift_tokens_right(target ids)`: the decoder start id in front, the last
//! id dropped (what transformers feeds the decoder when the target is given as labels). [`EncoderDecoder::greedy`]
//! decodes without a target.

use super::ModelInfo;
use super::attention::AttnSpec;
use super::block::{Block, Env, Norm, Placement, Stack};
use super::embed::Embeddings;
use super::head::LmHead;
use crate::tokenize::{Encoded, TokenInfo, Tokenizer};
use crate::trace::{ForwardOptions, Trace};
use crate::{Error, Result};
use ndarray::{Array2, Array3};
use std::time::Instant;

/// An additive score bias computed from the query/key positions (T5's relative position buckets), shared by every
/// layer of a stack.
pub trait ScoreBias: Send + Sync {
    /// `[heads, n_query, n_key]`.
    fn bias(&self, n_query: usize, n_key: usize) -> Array3<f32>;
}

/// An encoder stack (bidirectional self-attention) and a decoder stack (masked self-attention, then cross-attention
/// with the decoder's shape) with the norms at `placement`; `heads` are the encoder's and the decoder's `(heads, head
/// size)`. Every attention multiplies `q·k` by `scale`, by `1/√head size` when `None` (the paper).
pub fn stacks(
    placement: Placement,
    heads: [(usize, usize); 2],
    scale: Option<f32>,
    [encoder, decoder]: [Vec<Block>; 2],
) -> (Stack, Stack) {
    let [enc, dec] = heads;
    let spec = |(h, hd): (usize, usize), causal| {
        let standard = AttnSpec::standard(h, hd, causal);
        AttnSpec {
            scale: scale.unwrap_or(standard.scale),
            ..standard
        }
    };
    (
        Stack {
            placement,
            attn: spec(enc, false),
            cross: None,
            blocks: encoder,
        },
        Stack {
            placement,
            attn: spec(dec, true),
            cross: Some(spec(dec, false)),
            blocks: decoder,
        },
    )
}

/// An encoder–decoder Transformer.
pub struct EncoderDecoder {
    pub info: ModelInfo,
    pub source_tokenizer: Tokenizer,
    pub target_tokenizer: Tokenizer,
    pub enc_embed: Embeddings,
    pub encoder: Stack,
    /// The encoder's final norm (T5's `encoder.final_layer_norm`): applied to the last block's output before
    /// cross-attention reads it. The trace keeps the raw stream.
    pub enc_norm: Option<Norm>,
    pub dec_embed: Embeddings,
    pub decoder: Stack,
    pub head: LmHead,
    /// Relative position biases of the encoder and decoder self-attention (T5), if any.
    pub enc_bias: Option<Box<dyn ScoreBias>>,
    pub dec_bias: Option<Box<dyn ScoreBias>>,
    pub decoder_start: u32,
    pub eos: u32,
}

/// What one encoder–decoder forward pass recorded.
pub struct EncDecTrace {
    /// The encoder: source tokens, encoder self-attention and hidden states.
    pub source: Trace,
    /// The decoder: decoder-input tokens, masked self-attention, `layers[l].cross_attention`
    /// `[heads, n_target, n_source]` (when attention is kept) and hidden states.
    pub target: Trace,
    /// `[n_target, vocab]`: row `i` predicts the token after decoder input `i`.
    pub logits: Array2<f32>,
}

impl EncoderDecoder {
    /// Tokenize a source text (with the source tokenizer's post-processor, e.g. a trailing `</s>`).
    pub fn encode_source(&self, text: &str) -> Result<Encoded> {
        let enc = self.source_tokenizer.encode(text, None)?;
        self.check_len(enc.ids.len(), "source")?;
        Ok(enc)
    }

    /// The decoder input for a known target text: `shift_tokens_right` of the target's token ids.
    pub fn decoder_input(&self, target: &str) -> Result<Encoded> {
        let ids = self.target_tokenizer.encode(target, None)?.ids;
        let mut shifted = Vec::with_capacity(ids.len());
        shifted.push(self.decoder_start);
        shifted.extend_from_slice(&ids[..ids.len().saturating_sub(1)]);
        self.check_len(shifted.len(), "target")?;
        Ok(self.target_ids(&shifted))
    }

    /// An [`Encoded`] for target-side ids (labels from the target vocabulary; no offsets).
    pub fn target_ids(&self, ids: &[u32]) -> Encoded {
        let tokens = ids
            .iter()
            .map(|&id| TokenInfo {
                id,
                text: self
                    .target_tokenizer
                    .id_to_token(id)
                    .unwrap_or_else(|| format!("<{id}>")),
                label: self.target_tokenizer.token_label(id),
                start: 0,
                end: 0,
                special: id == self.decoder_start || id == self.eos,
                type_id: 0,
            })
            .collect();
        Encoded {
            ids: ids.to_vec(),
            type_ids: vec![0; ids.len()],
            tokens,
        }
    }

    fn check_len(&self, n: usize, what: &str) -> Result<()> {
        if n == 0 {
            return Err(Error::Input(format!("the {what} has no tokens")));
        }
        if n > self.info.max_len {
            return Err(Error::Input(format!(
                "the {what} is {n} tokens long; {} takes at most {}",
                self.info.name, self.info.max_len
            )));
        }
        Ok(())
    }

    /// Run the encoder on `src`.
    pub fn encode(&self, src: &Encoded, opts: &ForwardOptions) -> Result<Trace> {
        self.run_side(src, None, opts)
    }

    /// What cross-attention reads: the encoder's last stream, through the encoder's final norm when it has one.
    pub fn memory(&self, source: &Trace) -> Result<Array2<f32>> {
        let last = last_hidden(source)?;
        Ok(match &self.enc_norm {
            Some(n) => n.apply(&last.view()),
            None => last.clone(),
        })
    }

    /// Run the decoder on `tgt` (decoder input ids) over the encoder output `memory` `[n_source, d]`.
    pub fn decode(
        &self,
        tgt: &Encoded,
        memory: &Array2<f32>,
        opts: &ForwardOptions,
    ) -> Result<(Trace, Array2<f32>)> {
        let trace = self.run_side(tgt, Some(memory), opts)?;
        let logits = self.head.logits(last_hidden(&trace)?);
        Ok((trace, logits))
    }

    /// The encoder (`memory` `None`) or the decoder blocks over `memory`, without the LM head.
    fn run_side(
        &self,
        ids: &Encoded,
        memory: Option<&Array2<f32>>,
        opts: &ForwardOptions,
    ) -> Result<Trace> {
        let start = Instant::now();
        let (embed, stack, bias, what) = match memory {
            None => (&self.enc_embed, &self.encoder, &self.enc_bias, "source"),
            Some(_) => (&self.dec_embed, &self.decoder, &self.dec_bias, "target"),
        };
        self.check_len(ids.ids.len(), what)?;
        let (x, positional) = embed.embed(ids)?;
        let n = ids.ids.len();
        let bias = bias.as_ref().map(|b| b.bias(n, n));
        // T5 adds no position vectors: its positions are the relative bias.
        let positional = bias
            .as_ref()
            .map_or(positional, crate::trace::Positional::relative);
        let env = Env {
            memory,
            self_bias: bias.as_ref(),
            ..Default::default()
        };
        let run = stack.run(x, 0, opts, &env)?;
        Ok(run.into_trace(ids.tokens.clone(), positional, start))
    }

    /// The whole model: encoder on `src`, decoder on `tgt` (decoder input ids).
    pub fn forward(
        &self,
        src: &Encoded,
        tgt: &Encoded,
        opts: &ForwardOptions,
    ) -> Result<EncDecTrace> {
        crate::numeric::cpu::on_pool(|| {
            let source = self.encode(src, opts)?;
            let memory = self.memory(&source)?;
            let (target, logits) = self.decode(tgt, &memory, opts)?;
            Ok(EncDecTrace {
                source,
                target,
                logits,
            })
        })
    }

    /// Greedy decoding: start from the decoder start id, append the most likely next token until the EOS id or
    /// `max_new` tokens. Returns the generated ids without the start id (with the EOS when it was produced), as
    /// transformers' `generate(do_sample=False)` does.
    pub fn greedy(&self, src: &Encoded, max_new: usize) -> Result<Vec<u32>> {
        let quiet = ForwardOptions::default();
        let memory = self.memory(&self.encode(src, &quiet)?)?;
        let limit = max_new.min(self.info.max_len.saturating_sub(1));
        let mut ids = vec![self.decoder_start];
        for _ in 0..limit {
            let trace = self.run_side(&self.target_ids(&ids), Some(&memory), &quiet)?;
            // Only the last position's logits choose the next token.
            let h = last_hidden(&trace)?;
            let last = h.slice(ndarray::s![h.nrows() - 1.., ..]).to_owned();
            let next = argmax(self.head.logits(&last).iter().copied()) as u32;
            ids.push(next);
            if next == self.eos {
                break;
            }
        }
        Ok(ids.split_off(1))
    }

    /// Greedy decoding of a source text, decoded to text with the target tokenizer (special tokens skipped).
    pub fn translate(&self, source: &str, max_new: usize) -> Result<(Vec<u32>, String)> {
        let ids = self.greedy(&self.encode_source(source)?, max_new)?;
        let text = self
            .target_tokenizer
            .inner()
            .decode(&ids, true)
            .map_err(|e| Error::Tokenizer(e.to_string()))?;
        Ok((ids, text))
    }
}

fn last_hidden(trace: &Trace) -> Result<&Array2<f32>> {
    trace
        .hidden
        .last()
        .ok_or_else(|| Error::Input("the stack has no layers".into()))
}

/// Index of the largest value (the first on ties, as `torch.argmax`); NaN never wins.
fn argmax(values: impl Iterator<Item = f32>) -> usize {
    let mut best = (0, f32::NEG_INFINITY);
    for (i, v) in values.enumerate() {
        if v > best.1 {
            best = (i, v);
        }
    }
    best.0
}

#[cfg(test)]
mod tests {
    use super::argmax;

    #[test]
    fn argmax_takes_the_first_maximum_and_skips_nan() {
        assert_eq!(argmax([1.0, 3.0, 3.0, 2.0].into_iter()), 1);
        assert_eq!(argmax([f32::NAN, 0.5, -1.0].into_iter()), 1);
    }
}
