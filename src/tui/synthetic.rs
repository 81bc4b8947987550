//! Hand-made traces for tests and benchmarks: every variant the models produce (encoder with sinusoidal positions,
//! GPT-2-like decoder with learned positions and next tokens, Llama-like decoder with RoPE and grouped-query
//! attention), with heads whose pattern is known (previous-token, sink, self, uniform).

use crate::model::{Arch, ModelInfo};
use crate::trace::{LayerTrace, Positional, TokenInfo, TopToken, Trace};
use ndarray::{Array2, Array3};
use std::time::Duration;

/// Which kind of model the trace imitates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// BERT-like: [CLS] … [SEP], bidirectional, sinusoidal positions.
    Encoder,
    /// GPT-2-like: causal, learned positions, next tokens.
    Gpt2,
    /// Llama-like: BOS, causal, RoPE, grouped-query attention (2 query heads per KV head), next tokens.
    Llama,
}

pub const LAYERS: usize = 2;
pub const HEADS: usize = 4;
pub const D: usize = 16;

/// Model information matching [`trace`].
pub fn info(kind: Kind) -> ModelInfo {
    use crate::trace::PositionalKind as P;
    let (name, arch, kv, causal, pos) = match kind {
        Kind::Encoder => ("synthetic encoder", Arch::Bert, HEADS, false, P::Sinusoidal),
        Kind::Gpt2 => ("synthetic gpt2", Arch::Gpt2, HEADS, true, P::Learned),
        Kind::Llama => ("synthetic llama", Arch::Llama, HEADS / 2, true, P::Rotary),
    };
    ModelInfo {
        spec: name.replace(' ', "-"),
        name: name.into(),
        arch,
        n_layers: LAYERS,
        n_heads: HEADS,
        n_kv_heads: kv,
        d_model: D,
        d_ff: 4 * D,
        vocab_size: 100,
        max_len: 64,
        n_params: 1234,
        causal,
        positional: pos,
        tokenizer: "synthetic".into(),
        source: "test".into(),
        notes: vec![],
    }
}

/// Head `h`'s matrix: 0 previous-token, 1 sink (first token), 2 self, 3 uniform over what it may see.
pub fn head_matrix(h: usize, n: usize, causal: bool) -> Array2<f32> {
    let mut m = Array2::<f32>::zeros((n, n));
    for i in 0..n {
        match h % 4 {
            0 => m[[i, i.saturating_sub(1)]] = 1.0,
            1 => m[[i, 0]] = 1.0,
            2 => m[[i, i]] = 1.0,
            _ => {
                let seen = if causal { i + 1 } else { n };
                for j in 0..seen {
                    m[[i, j]] = 1.0 / seen as f32;
                }
            }
        }
    }
    m
}

/// A trace over the given token labels (the first and, for the encoder, the last are special).
pub fn trace(kind: Kind, words: &[&str]) -> Trace {
    let mut labels: Vec<String> = vec![];
    match kind {
        Kind::Encoder => labels.push("[CLS]".into()),
        Kind::Llama => labels.push("<s>".into()),
        Kind::Gpt2 => {}
    }
    labels.extend(words.iter().map(|w| crate::tokenize::escape_label(w)));
    if kind == Kind::Encoder {
        labels.push("[SEP]".into());
    }
    let n = labels.len();
    let last = n.saturating_sub(1);
    let tokens: Vec<TokenInfo> = labels
        .iter()
        .enumerate()
        .map(|(i, l)| TokenInfo {
            id: i as u32,
            text: l.clone(),
            label: l.clone(),
            start: 0,
            end: 0,
            special: match kind {
                Kind::Encoder => i == 0 || i == last,
                Kind::Llama => i == 0,
                Kind::Gpt2 => false,
            },
            type_id: 0,
        })
        .collect();
    let causal = kind != Kind::Encoder;
    let hidden: Vec<Array2<f32>> = (0..=LAYERS)
        .map(|l| {
            Array2::from_shape_fn((n, D), |(i, k)| {
                (1.0 + l as f32) * (((i + 1) * (k + 1)) as f32 * 0.37 + l as f32).sin()
            })
        })
        .collect();
    let layers = (0..LAYERS)
        .map(|l| {
            let mut a = Array3::<f32>::zeros((HEADS, n, n));
            for h in 0..HEADS {
                a.index_axis_mut(ndarray::Axis(0), h)
                    .assign(&head_matrix(h + l, n, causal));
            }
            LayerTrace {
                cross_attention: None,
                attention: Some(a),
                mid: hidden[l].clone(),
                attn_update_norm: (0..n).map(|i| 0.5 + 0.1 * (i + l) as f32).collect(),
                ffn_update_norm: (0..n).map(|i| 1.0 + 0.2 * (i * (l + 1)) as f32).collect(),
            }
        })
        .collect();
    let positional = match kind {
        Kind::Encoder => Positional::Sinusoidal(crate::numeric::ops::sinusoidal_positions(n, D)),
        Kind::Gpt2 => Positional::Learned(Array2::from_shape_fn((n, D), |(i, k)| {
            0.1 * ((i as f32 + 1.0) * (k as f32 + 1.0) * 0.7).cos()
        })),
        Kind::Llama => {
            let half = D / HEADS; // head_dim / 2 with head_dim = D / (HEADS / 2)
            let freqs: Vec<f32> = (0..half)
                .map(|i| 10000f32.powf(-(2.0 * i as f32) / (2 * half) as f32))
                .collect();
            let angles = Array2::from_shape_fn((n, half), |(p, i)| p as f32 * freqs[i]);
            Positional::Rotary {
                freqs,
                angles,
                head_dim: 2 * half,
            }
        }
    };
    let next_tokens = causal.then(|| {
        (0..n)
            .map(|i| {
                (0..3)
                    .map(|k| TopToken {
                        id: (i * 3 + k) as u32,
                        text: format!(" next{i}_{k}"),
                        prob: 0.5 / (k + 1) as f32,
                    })
                    .collect()
            })
            .collect()
    });
    Trace {
        captures: Default::default(),
        interventions: vec![],
        text: words.join(" "),
        text_b: None,
        tokens,
        hidden,
        layers,
        positional,
        next_tokens,
        kv_group: if kind == Kind::Llama {
            (0..HEADS).map(|h| h / 2).collect()
        } else {
            vec![]
        },
        elapsed: Duration::from_micros(1500),
    }
}
