//! Text generation for decoders with a KV cache: the prompt runs once, then each new token runs alone through the
//! blocks, attending over the cached keys and values ([`Transformer::step`]). Greedy by default (the first
//! largest logit, as `torch.argmax`); with a temperature, sampled from the top-k with a seeded generator.
//!
//! Generation does not stop at an end-of-text token: it produces exactly `max_new` tokens (as transformers'
//! `generate` with `eos_token_id=None`).

use super::Model;
use super::block::KvCache;
use super::engine::Transformer;
use crate::trace::{ForwardOptions, LayerTrace, Trace};
use crate::{Error, Result};
use ndarray::{Array2, Array3, ArrayView1, Axis, s};
use rand::{Rng, SeedableRng};
use std::time::Instant;

/// How the next token is chosen.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sampling {
    /// 0 = greedy; otherwise logits are divided by it before the softmax.
    pub temperature: f32,
    /// Sample among the `top_k` most likely tokens only (0 = all).
    pub top_k: usize,
    pub seed: u64,
}

impl Default for Sampling {
    fn default() -> Self {
        Sampling {
            temperature: 0.0,
            top_k: 0,
            seed: 0,
        }
    }
}

/// What a generation produced.
#[derive(Debug, Clone)]
pub struct Generated {
    pub prompt: Vec<u32>,
    pub new_ids: Vec<u32>,
    /// The decoded continuation.
    pub text: String,
    /// With `record_attention`: for each new token, each layer's attention row `[heads, 1, positions up to it]`:
    /// exactly its row of the full `[heads, n, n]` matrix.
    pub attention: Vec<Vec<Array3<f32>>>,
    /// Wall time of each incremental step (the prompt's pass excluded), in milliseconds.
    pub step_ms: Vec<f64>,
    pub prompt_ms: f64,
}

/// The index of the first largest value.
pub fn argmax(row: &ArrayView1<f32>) -> usize {
    let mut best = 0;
    for (i, v) in row.iter().enumerate() {
        if *v > row[best] {
            best = i;
        }
    }
    best
}

/// Choose the next token from one row of logits.
pub fn choose(row: &ArrayView1<f32>, s: &Sampling, rng: &mut impl Rng) -> usize {
    if s.temperature <= 0.0 {
        return argmax(row);
    }
    let mut idx: Vec<usize> = (0..row.len()).collect();
    idx.sort_by(|a, b| row[*b].total_cmp(&row[*a]));
    if s.top_k > 0 {
        idx.truncate(s.top_k);
    }
    let m = row[idx[0]];
    let w: Vec<f64> = idx
        .iter()
        .map(|&i| (((row[i] - m) / s.temperature) as f64).exp())
        .collect();
    let total: f64 = w.iter().sum();
    let mut u = rng.random::<f64>() * total;
    for (i, wi) in idx.iter().zip(&w) {
        if u < *wi {
            return *i;
        }
        u -= wi;
    }
    idx[idx.len() - 1]
}

/// Generate `max_new` tokens after `prompt` with a KV cache (the loop runs on the pool: [`crate::numeric::cpu::on_pool`]).
pub fn generate(
    model: &dyn Model,
    prompt: &[u32],
    max_new: usize,
    sampling: &Sampling,
    record_attention: bool,
) -> Result<Generated> {
    crate::numeric::cpu::on_pool(|| {
        let t: &Transformer = model.engine();
        if !t.info.causal || t.head.is_none() {
            return Err(Error::Input(format!(
                "{} is not a decoder: generation needs a causal model with an LM head",
                t.info.name
            )));
        }
        if prompt.is_empty() {
            return Err(Error::Input("the prompt has no tokens".into()));
        }
        if prompt.len() + max_new > t.info.max_len {
            return Err(Error::Input(format!(
                "{} prompt tokens + {max_new} new exceed {}'s {} positions",
                prompt.len(),
                t.info.name,
                t.info.max_len
            )));
        }
        let opts = ForwardOptions {
            keep_attention: record_attention,
            top_k: 0,
            ..Default::default()
        };
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(sampling.seed);
        let mut ids = prompt.to_vec();
        let start = Instant::now();
        let first = t.step(&ids, None, &opts)?;
        let prompt_ms = start.elapsed().as_secs_f64() * 1e3;
        let mut logits = first.logits;
        let mut cache: KvCache = first.cache;
        let (mut new_ids, mut attention, mut step_ms) = (vec![], vec![], vec![]);
        for i in 0..max_new {
            let l = logits
                .as_ref()
                .ok_or_else(|| Error::Input("the model produced no logits".into()))?;
            let row = l.row(l.nrows() - 1);
            let next = choose(&row, sampling, &mut rng) as u32;
            ids.push(next);
            new_ids.push(next);
            if i + 1 < max_new || record_attention {
                let s0 = Instant::now();
                let st = t.step(&ids, Some(&cache), &opts)?;
                step_ms.push(s0.elapsed().as_secs_f64() * 1e3);
                if record_attention {
                    attention.push(st.layers.into_iter().filter_map(|l| l.attention).collect());
                }
                logits = st.logits;
                cache = st.cache;
            }
        }
        Ok(Generated {
            prompt: prompt.to_vec(),
            text: t.tokenizer.decode(&new_ids),
            new_ids,
            attention,
            step_ms,
            prompt_ms,
        })
    })
}

/// `trace` (a clean run of a decoder, every layer, attention kept) with the token `next` appended by one KV-cache
/// step: every attention matrix grows by a row (its last column is zero above it, as the causal mask makes it), the
/// streams and the mid-block records by a row, the next tokens by the new position's `top_k`. Equal to a run of the
/// longer sequence up to the rounding of the one-row products. `cache` holds the keys and values of `trace`'s
/// positions (recomputed from its streams when `None`); the grown cache is returned with the trace.
pub fn append(
    model: &dyn Model,
    trace: &Trace,
    next: u32,
    cache: Option<&KvCache>,
    top_k: usize,
) -> Result<(Trace, KvCache)> {
    let t: &Transformer = model.engine();
    let n = trace.n_tokens();
    let complete = trace.layers.len() == t.stack.blocks.len()
        && trace.hidden.len() == trace.layers.len() + 1
        && trace.layers.iter().all(|l| l.attention.is_some())
        && trace.interventions.is_empty();
    if !complete || n == 0 {
        return Err(Error::Input(
            "appending a token needs a clean run of every layer with its attention kept".into(),
        ));
    }
    let recomputed;
    let cache = match cache {
        Some(c) if c.len() == n && c.k.len() == t.stack.blocks.len() => c,
        _ => {
            recomputed = t.kv_of(trace)?;
            &recomputed
        }
    };
    let mut ids: Vec<u32> = trace.tokens.iter().map(|t| t.id).collect();
    ids.push(next);
    let opts = ForwardOptions {
        keep_attention: true,
        top_k: 0,
        ..Default::default()
    };
    let start = Instant::now();
    let st = crate::numeric::cpu::on_pool(|| t.step(&ids, Some(cache), &opts))?;
    let enc = t.tokenizer.encode_ids(&ids)?;
    let (_, positional) = t.embed.embed(&enc)?;
    let grow = |old: &Array2<f32>, new: &Array2<f32>| -> Result<Array2<f32>> {
        ndarray::concatenate(Axis(0), &[old.view(), new.view()])
            .map_err(|e| Error::Input(format!("a new row does not fit the trace: {e}")))
    };
    let hidden = trace
        .hidden
        .iter()
        .zip(&st.hidden)
        .map(|(o, r)| grow(o, r))
        .collect::<Result<Vec<_>>>()?;
    let mut layers = Vec::with_capacity(trace.layers.len());
    for (old, new) in trace.layers.iter().zip(st.layers) {
        let (Some(a), Some(row)) = (&old.attention, &new.attention) else {
            return Err(Error::Input("the step kept no attention".into()));
        };
        let mut att = Array3::<f32>::zeros((a.shape()[0], n + 1, n + 1));
        att.slice_mut(s![.., ..n, ..n]).assign(a);
        att.slice_mut(s![.., n.., ..]).assign(row);
        let norms = |o: &[f32], r: &[f32]| [o, r].concat();
        layers.push(LayerTrace {
            attention: Some(att),
            cross_attention: None,
            mid: grow(&old.mid, &new.mid)?,
            attn_update_norm: norms(&old.attn_update_norm, &new.attn_update_norm),
            ffn_update_norm: norms(&old.ffn_update_norm, &new.ffn_update_norm),
        });
    }
    let mut out = Trace::new(enc.tokens, hidden, layers, positional, start.elapsed());
    out.text = t.tokenizer.decode(&ids);
    // The GQA groups and the (empty) interventions; the next tokens of the old positions are the trace's own.
    let no_top = ForwardOptions {
        top_k: 0,
        ..Default::default()
    };
    t.finish(&mut out, &no_top);
    if let (Some(old), Some(head), true) = (&trace.next_tokens, &t.head, top_k > 0) {
        let last = st
            .hidden
            .last()
            .ok_or_else(|| Error::Input("the step ran no block".into()))?;
        let mut all = old.clone();
        all.extend(head.top_tokens(last, top_k, &t.tokenizer));
        out.next_tokens = Some(all);
    }
    out.elapsed = start.elapsed();
    Ok((out, st.cache))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::arr1;

    #[test]
    fn greedy_takes_the_first_maximum_and_sampling_is_seeded() {
        let row = arr1(&[0.5f32, 2.0, 2.0, -1.0]);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        assert_eq!(choose(&row.view(), &Sampling::default(), &mut rng), 1);
        let s = Sampling {
            temperature: 1.0,
            top_k: 2,
            seed: 0,
        };
        let picks: Vec<usize> = (0..50).map(|_| choose(&row.view(), &s, &mut rng)).collect();
        assert!(picks.iter().all(|p| *p == 1 || *p == 2), "top-2 only");
        assert!(picks.contains(&1) && picks.contains(&2));
        let mut a = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let mut b = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let s = Sampling {
            temperature: 0.7,
            top_k: 0,
            seed: 7,
        };
        for _ in 0..20 {
            assert_eq!(
                choose(&row.view(), &s, &mut a),
                choose(&row.view(), &s, &mut b)
            );
        }
    }
}
