//! [`Transformer`]: embeddings → the block loop → LM head. The one implementation of [`Model`]: every architecture
//! file builds one of these from its config and weights.

use super::block::{Env, KvCache, Stack};
use super::embed::{Embeddings, PositionKind};
use super::head::LmHead;
use super::{Model, ModelInfo};
use crate::numeric::ops;
use crate::tokenize::{Encoded, Tokenizer};
use crate::trace::{ForwardOptions, LayerTrace, TopToken, Trace};
use crate::{Error, Result};
use ndarray::{Array2, Array3};

use std::time::Instant;

/// A decoder-only or encoder-only Transformer.
pub struct Transformer {
    pub info: ModelInfo,
    pub tokenizer: Tokenizer,
    pub embed: Embeddings,
    pub stack: Stack,
    /// Decoders: final norm + unembedding. Encoders: none.
    pub head: Option<LmHead>,
}

impl Transformer {
    /// `(cos, sin)` tables for `n` positions of a rotary model.
    fn rope_tables(&self, n: usize) -> Option<(Array2<f32>, Array2<f32>)> {
        match &self.embed.position {
            PositionKind::Rotary { freqs, .. } => {
                Some(ops::rope_cos_sin(&ops::rope_angles(n, freqs)))
            }
            _ => None,
        }
    }

    fn check_width(&self, x: &Array2<f32>) -> Result<()> {
        if x.ncols() != self.info.d_model {
            return Err(Error::Input(format!(
                "the residual stream has width {}; the model's is {}",
                x.ncols(),
                self.info.d_model
            )));
        }
        Ok(())
    }

    /// Logits `[n, vocab]` of a residual stream leaving the last block (decoders).
    pub fn logits(&self, hidden: &Array2<f32>) -> Option<Array2<f32>> {
        let head = self.head.as_ref()?;
        (hidden.ncols() == self.info.d_model).then(|| head.logits(hidden))
    }

    /// The keys and values a run of `trace`'s positions keeps, recomputed from its streams (a clean trace of all
    /// its layers).
    pub fn kv_of(&self, trace: &Trace) -> Result<KvCache> {
        let rope = self.rope_tables(trace.n_tokens());
        let env = Env {
            rope: rope.as_ref().map(|(c, s)| (c, s)),
            ..Default::default()
        };
        self.stack.kv_of(&trace.hidden, &env)
    }

    pub(super) fn finish(&self, trace: &mut Trace, opts: &ForwardOptions) {
        if let (Some(head), true) = (&self.head, opts.top_k > 0)
            && let Some(last) = trace.hidden.last()
        {
            trace.next_tokens = Some(head.top_tokens(last, opts.top_k, &self.tokenizer));
        }
        let spec = &self.stack.attn;
        if spec.n_kv_heads != spec.n_heads {
            trace.kv_group = (0..spec.n_heads).map(|h| spec.kv_head(h)).collect();
        }
        trace.interventions = opts.hooks.describe();
    }
}

/// What one incremental step computed for the new positions.
#[derive(Debug, Clone)]
pub struct Step {
    /// The stream of the new rows entering each block, then leaving the last: `L + 1` entries `[new, d]`.
    pub hidden: Vec<Array2<f32>>,
    /// Each layer's record of the new rows: attention over every position `[heads, new, all]` (when kept), the
    /// mid-block stream and the sub-layer update norms.
    pub layers: Vec<LayerTrace>,
    /// Logits of the new rows `[new, vocab]` (decoders).
    pub logits: Option<Array2<f32>>,
    /// Keys and values of every position, for the next step.
    pub cache: KvCache,
}

impl Transformer {
    /// Incremental decoding: run the positions of `ids` that `past` does not hold (all of them without a cache)
    /// through the block loop, attending over the cached keys and values, and return their rows and the grown
    /// cache. Equal to the matching rows of a full forward pass over `ids`.
    pub fn step(&self, ids: &[u32], past: Option<&KvCache>, opts: &ForwardOptions) -> Result<Step> {
        let n = ids.len();
        let p = past.map_or(0, KvCache::len);
        if n <= p || n > self.info.max_len {
            return Err(Error::Input(format!(
                "an incremental step needs new tokens within the model's {} positions: {n} tokens, {p} cached",
                self.info.max_len
            )));
        }
        let enc = Encoded {
            ids: ids.to_vec(),
            type_ids: vec![0; n],
            tokens: vec![],
        };
        let (x, _) = self.embed.embed(&enc)?;
        let x = x.slice(ndarray::s![p.., ..]).to_owned();
        let rope = self.rope_tables(n);
        let env = Env {
            rope: rope.as_ref().map(|(c, s)| (c, s)),
            q_offset: p,
            past,
            keep_kv: true,
            ..Default::default()
        };
        let run = self.stack.run(x, 0, opts, &env)?;
        let logits = run.hidden.last().and_then(|h| self.logits(h));
        Ok(Step {
            layers: run.layers,
            hidden: run.hidden,
            logits,
            cache: run.kv.unwrap_or_default(),
        })
    }

    fn forward_here(&self, enc: &Encoded, opts: &ForwardOptions) -> Result<Trace> {
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
        let (x, positional) = self.embed.embed(enc)?;
        let rope = self.rope_tables(n);
        let env = Env {
            rope: rope.as_ref().map(|(c, s)| (c, s)),
            ..Default::default()
        };
        let run = self.stack.run(x, 0, opts, &env)?;
        let mut trace = run.into_trace(enc.tokens.clone(), positional, start);
        self.finish(&mut trace, opts);
        trace.elapsed = start.elapsed();
        Ok(trace)
    }

    fn resume_here(&self, clean: &Trace, layer: usize, opts: &ForwardOptions) -> Result<Trace> {
        let start = Instant::now();
        let x = clean.hidden.get(layer).ok_or_else(|| {
            Error::Input(format!(
                "cannot resume at layer {layer}: the trace has layers 0..={}",
                clean.n_layers().saturating_sub(1)
            ))
        })?;
        self.check_width(x)?;
        let rope = self.rope_tables(x.nrows());
        let env = Env {
            rope: rope.as_ref().map(|(c, s)| (c, s)),
            ..Default::default()
        };
        let run = self.stack.run(x.clone(), layer, opts, &env)?;
        let mut hidden: Vec<Array2<f32>> = clean.hidden[..layer].to_vec();
        hidden.extend(run.hidden);
        let mut layers = clean.layers[..layer].to_vec();
        layers.extend(run.layers);
        let mut trace = Trace::new(
            clean.tokens.clone(),
            hidden,
            layers,
            clean.positional.clone(),
            start.elapsed(),
        );
        trace.text = clean.text.clone();
        trace.text_b = clean.text_b.clone();
        let mut caps = clean.captures.clone();
        caps.truncate_layers(layer);
        caps.extend(run.captures);
        trace.captures = caps;
        self.finish(&mut trace, opts);
        trace.elapsed = start.elapsed();
        Ok(trace)
    }
}

impl Model for Transformer {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    fn forward(&self, enc: &Encoded, opts: &ForwardOptions) -> Result<Trace> {
        crate::numeric::cpu::on_pool(|| self.forward_here(enc, opts))
    }

    fn resume(&self, clean: &Trace, layer: usize, opts: &ForwardOptions) -> Result<Trace> {
        crate::numeric::cpu::on_pool(|| self.resume_here(clean, layer, opts))
    }

    fn layer_attention(&self, layer: usize, resid_in: &Array2<f32>) -> Result<Array3<f32>> {
        let rope = self.rope_tables(resid_in.nrows());
        let env = Env {
            rope: rope.as_ref().map(|(c, s)| (c, s)),
            ..Default::default()
        };
        self.stack.pattern(layer, resid_in, self.info.d_model, &env)
    }

    fn head_attention(
        &self,
        layer: usize,
        heads: &[usize],
        resid_in: &Array2<f32>,
    ) -> Result<Vec<Array2<f32>>> {
        let rope = self.rope_tables(resid_in.nrows());
        let env = Env {
            rope: rope.as_ref().map(|(c, s)| (c, s)),
            ..Default::default()
        };
        self.stack
            .head_patterns(layer, resid_in, self.info.d_model, &env, heads)
    }

    fn logit_lens(&self, hidden: &Array2<f32>, k: usize) -> Option<Vec<Vec<TopToken>>> {
        let head = self.head.as_ref()?;
        (hidden.ncols() == self.info.d_model).then(|| head.top_tokens(hidden, k, &self.tokenizer))
    }

    fn engine(&self) -> &Transformer {
        self
    }
}
