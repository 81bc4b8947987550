//! The original Transformer block of "Attention Is All You Need", built from scratch on ndarray with seeded random
//! weights (ndarray-rand, ChaCha8): token embedding × √d_model + sinusoidal positions, then N post-LN blocks of
//! multi-head self-attention → add → LayerNorm → ReLU feed-forward → add → LayerNorm. Encoder (bidirectional) by
//! default, decoder-style masked attention with `causal`.
//!
//! Weight layout: every projection is stored `[out, in]` like nn.Linear. Weights are Xavier-uniform, biases zero,
//! LayerNorm γ = 1, β = 0. Embedding rows are N(0, 1/d_model) and drawn lazily per token id from their own ChaCha8
//! stream, so the 30522 × d table is never materialised and the same seed always gives the same row.

use crate::model::attention::{AttnSpec, AttnWeights};
use crate::model::block::{Block, Linear, Mlp, Norm, Placement, Stack};
use crate::model::embed::{Embeddings, PositionKind, TokenTable};
use crate::model::{Arch, ModelInfo, TextbookConfig, Transformer};
use crate::numeric::ops::Activation;
use crate::numeric::packed::PackedMatrix;
use crate::tokenize::Tokenizer;
use crate::{Error, Result};
use ndarray::{Array1, Array2};
use ndarray_rand::RandomExt;
use ndarray_rand::rand_distr::Uniform;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// Limits that keep a typo from allocating the machine away (checked before anything is allocated).
pub const MAX_LAYERS: usize = 96;
pub const MAX_HEADS: usize = 256;
pub const MAX_D_MODEL: usize = 8192;
pub const MAX_D_FF: usize = 65536;
pub const MAX_LEN: usize = 16384;
/// At most this many block parameters (4 GiB of f32).
pub const MAX_BLOCK_PARAMS: u64 = 1 << 30;

const LN_EPS: f32 = 1e-5;

/// Check the settings; returns the parameter count (embedding included).
pub fn validate(cfg: &TextbookConfig, vocab: usize) -> Result<u64> {
    let in_range = |flag: &str, v: usize, max: usize| {
        if v == 0 || v > max {
            Err(Error::Config(format!(
                "{flag} {v} must be between 1 and {max}"
            )))
        } else {
            Ok(())
        }
    };
    in_range("--layers", cfg.layers, MAX_LAYERS)?;
    in_range("--heads", cfg.heads, MAX_HEADS)?;
    in_range("--d-model", cfg.d_model, MAX_D_MODEL)?;
    if !cfg.d_model.is_multiple_of(cfg.heads) {
        return Err(Error::Config(format!(
            "--d-model {} is not divisible by --heads {}: each head needs d_model / heads dimensions",
            cfg.d_model, cfg.heads
        )));
    }
    in_range("--d-ff", cfg.d_ff, MAX_D_FF)?;
    in_range("--max-len", cfg.max_len, MAX_LEN)?;
    let (d, f, l) = (cfg.d_model as u64, cfg.d_ff as u64, cfg.layers as u64);
    // 4 d×d projections, two FFN matrices, FFN biases, two LayerNorms.
    let per_block = 4 * d * d + 2 * d * f + f + d + 4 * d;
    let blocks = per_block
        .checked_mul(l)
        .filter(|p| *p <= MAX_BLOCK_PARAMS)
        .ok_or_else(|| {
            Error::Config(format!(
                "{} layers of d_model {} and d_ff {} would need {} parameters; the limit is {MAX_BLOCK_PARAMS}",
                cfg.layers,
                cfg.d_model,
                cfg.d_ff,
                per_block.saturating_mul(l)
            ))
        })?;
    Ok(blocks + vocab as u64 * d)
}

/// A Xavier-uniform `[out, in]` weight without bias, packed for the forward pass.
pub(crate) fn xavier(rng: &mut ChaCha8Rng, out: usize, inp: usize) -> Linear {
    let a = (6.0 / (out + inp) as f32).sqrt();
    let dist = Uniform::new_inclusive(-a, a).expect("a > 0");
    Linear::new(
        PackedMatrix::new(&Array2::random_using((out, inp), dist, rng)),
        None,
    )
}

/// The textbook model with seeded random weights.
pub fn new(cfg: TextbookConfig) -> Result<Transformer> {
    let tokenizer = if cfg.causal {
        Tokenizer::bundled_bert_uncased_decoder()
    } else {
        Tokenizer::bundled_bert_uncased()
    };
    let vocab = tokenizer.vocab_size();
    let n_params = validate(&cfg, vocab)?;
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let (d, f) = (cfg.d_model, cfg.d_ff);
    let blocks = (0..cfg.layers)
        .map(|_| {
            let attn = AttnWeights {
                q: xavier(&mut rng, d, d),
                k: xavier(&mut rng, d, d),
                v: xavier(&mut rng, d, d),
                o: xavier(&mut rng, d, d),
            };
            let mut up = xavier(&mut rng, f, d);
            up.b = Some(Array1::zeros(f));
            let mut down = xavier(&mut rng, d, f);
            down.b = Some(Array1::zeros(d));
            Block {
                ln_attn: Norm::identity_layer_norm(d, LN_EPS),
                attn,
                cross: None,
                ln_mlp: Norm::identity_layer_norm(d, LN_EPS),
                mlp: Mlp::Plain {
                    up,
                    act: Activation::Relu,
                    down,
                },
            }
        })
        .collect();
    let kind = if cfg.causal { "decoder" } else { "encoder" };
    let info = ModelInfo {
        spec: "textbook".into(),
        name: format!("textbook {kind} (random weights, seed {})", cfg.seed),
        arch: Arch::Textbook,
        n_layers: cfg.layers,
        n_heads: cfg.heads,
        n_kv_heads: cfg.heads,
        d_model: d,
        d_ff: f,
        vocab_size: vocab,
        max_len: cfg.max_len,
        n_params,
        causal: cfg.causal,
        positional: crate::trace::PositionalKind::Sinusoidal,
        tokenizer: tokenizer.description().to_string(),
        source: "built-in".into(),
        notes: vec![
            "post-LN blocks: MHA → add → LayerNorm → ReLU FFN → add → LayerNorm".into(),
            "Xavier-uniform weights, zero biases (ChaCha8, ndarray-rand)".into(),
            "embedding × √d_model + sinusoidal positional encoding".into(),
        ],
    };
    Ok(Transformer {
        info,
        tokenizer,
        embed: Embeddings::plain(
            TokenTable::Seeded {
                seed: cfg.seed,
                vocab,
                d,
            },
            d,
            (d as f32).sqrt(),
            PositionKind::Sinusoidal,
            usize::MAX,
        ),
        stack: Stack {
            placement: Placement::Post,
            attn: AttnSpec::standard(cfg.heads, d / cfg.heads, cfg.causal),
            cross: None,
            blocks,
        },
        head: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Model, run};
    use crate::numeric::ops;
    use crate::trace::ForwardOptions;

    fn small(causal: bool, seed: u64) -> Transformer {
        new(TextbookConfig {
            layers: 2,
            heads: 4,
            d_model: 32,
            d_ff: 64,
            seed,
            causal,
            max_len: 64,
        })
        .unwrap()
    }

    #[test]
    fn same_seed_same_bits_other_seed_differs() {
        let a = run(&small(false, 7), "the cat sat", None, &Default::default()).unwrap();
        let b = run(&small(false, 7), "the cat sat", None, &Default::default()).unwrap();
        let c = run(&small(false, 8), "the cat sat", None, &Default::default()).unwrap();
        for l in 0..2 {
            assert_eq!(a.layers[l].attention, b.layers[l].attention);
            assert_ne!(a.layers[l].attention, c.layers[l].attention);
        }
        assert_eq!(a.hidden, b.hidden);
    }

    #[test]
    fn attention_rows_sum_to_one_and_causal_masks_the_future() {
        for causal in [false, true] {
            let m = small(causal, 1);
            let t = run(&m, "attention is all you need", None, &Default::default()).unwrap();
            let n = t.n_tokens();
            // The encoder adds [CLS] … [SEP]; the decoder only a BOS-like [CLS].
            assert_eq!(n, if causal { 6 } else { 7 });
            let mut above = 0.0f32;
            for lt in &t.layers {
                let a = lt.attention.as_ref().unwrap();
                assert_eq!(a.dim(), (4, n, n));
                for h in 0..4 {
                    for i in 0..n {
                        let s: f32 = (0..n).map(|j| a[[h, i, j]]).sum();
                        assert!((s - 1.0).abs() < 1e-5, "row sum {s}");
                        above += (i + 1..n).map(|j| a[[h, i, j]]).sum::<f32>();
                    }
                }
            }
            if causal {
                assert_eq!(above, 0.0);
            } else {
                assert!(above > 0.1, "an encoder attends to later tokens");
            }
        }
    }

    #[test]
    fn recomputed_attention_equals_recorded() {
        let m = small(true, 3);
        let t = run(&m, "one two three four", None, &Default::default()).unwrap();
        for l in 0..2 {
            let again = m.layer_attention(l, &t.hidden[l]).unwrap();
            assert_eq!(Some(&again), t.layers[l].attention.as_ref());
        }
        let lazy = run(
            &m,
            "one two three four",
            None,
            &ForwardOptions {
                keep_attention: false,
                top_k: 0,
                ..Default::default()
            },
        )
        .unwrap();
        assert!(lazy.layers[0].attention.is_none());
        let got = crate::model::layer_attention(&m, &lazy, 1).unwrap();
        assert_eq!(Some(&*got), t.layers[1].attention.as_ref());
    }

    #[test]
    fn embedding_is_scaled_plus_positional_and_blocks_are_post_ln() {
        let m = small(false, 5);
        let t = run(&m, "hello world", None, &Default::default()).unwrap();
        let pe = ops::sinusoidal_positions(t.n_tokens(), 32);
        for (i, tok) in t.tokens.iter().enumerate() {
            let want = m.embed.token.row(tok.id) * (32f32).sqrt() + pe.row(i);
            assert_eq!(t.hidden[0].row(i), want);
        }
        assert_eq!(t.positional.matrix(), &pe);
        // Post-LN: every block output row has mean 0 and variance 1.
        for row in t.hidden[2].rows() {
            let mean = row.sum() / 32.0;
            let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / 32.0;
            assert!(
                mean.abs() < 1e-5 && (var - 1.0).abs() < 1e-3,
                "{mean} {var}"
            );
        }
    }

    #[test]
    fn bad_sizes_are_clear_errors() {
        let base = TextbookConfig::default();
        let cases = [
            (
                TextbookConfig { heads: 7, ..base },
                "not divisible by --heads 7",
            ),
            (TextbookConfig { heads: 0, ..base }, "--heads 0"),
            (TextbookConfig { layers: 0, ..base }, "--layers 0"),
            (TextbookConfig { d_model: 0, ..base }, "--d-model 0"),
            (TextbookConfig { d_ff: 0, ..base }, "--d-ff 0"),
            (TextbookConfig { max_len: 0, ..base }, "--max-len 0"),
            (
                TextbookConfig {
                    d_model: 1 << 40,
                    ..base
                },
                "--d-model",
            ),
            (
                TextbookConfig {
                    layers: 96,
                    d_model: 8192,
                    heads: 8,
                    d_ff: 65536,
                    ..base
                },
                "parameters",
            ),
        ];
        for (cfg, want) in cases {
            let err = new(cfg).err().expect("must fail").to_string();
            assert!(err.contains(want), "{err} lacks {want}");
        }
    }

    #[test]
    fn too_long_text_names_count_and_limit() {
        let m = new(TextbookConfig {
            layers: 1,
            heads: 1,
            d_model: 8,
            d_ff: 8,
            max_len: 5,
            ..Default::default()
        })
        .unwrap();
        let err = run(&m, "one two three four five", None, &Default::default())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("7 tokens") && err.contains("at most 5"),
            "{err}"
        );
    }

    #[test]
    fn parameter_count_of_the_default_model() {
        let m = new(TextbookConfig::default()).unwrap();
        // 30522·512 embedding + 6 · (4·512² + 2·512·2048 + 2048 + 512 + 4·512)
        assert_eq!(
            m.info().n_params,
            30522 * 512 + 6 * (4 * 512 * 512 + 2 * 512 * 2048 + 2048 + 512 + 2048)
        );
    }
}
