//! The original Transformer block of "Attention Is All You Need", built from scratch on ndarray with seeded random
//! weights (ndarray-rand, ChaCha8): token embedding × √d_model + sinusoidal positions, then N post-LN blocks of
//! multi-head self-attention → add → LayerNorm → ReLU feed-forward → add → LayerNorm. Encoder (bidirectional) by
//! default, decoder-style masked attention with `causal`.
//!
//! Weight layout: every projection is stored `[out, in]` like nn.Linear. Weights are Xavier-uniform, biases zero,
//! LayerNorm γ = 1, β = 0. Embedding rows are N(0, 1/d_model) and drawn lazily per token id from their own ChaCha8
//! stream, so the 30522 × d table is never materialised and the same seed always gives the same row.

use crate::model::{Arch, Model, ModelInfo, TextbookConfig};
use crate::numeric::ops;
use crate::numeric::packed::PackedMatrix;
use crate::tokenize::{Encoded, Tokenizer};
use crate::trace::{ForwardOptions, LayerTrace, Positional, Trace};
use crate::{Error, Result};
use ndarray::{Array1, Array2, Array3};
use ndarray_rand::RandomExt;
use ndarray_rand::rand_distr::{Normal, Uniform};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::time::Instant;

/// Limits that keep a typo from allocating the machine away (checked before anything is allocated).
pub const MAX_LAYERS: usize = 96;
pub const MAX_HEADS: usize = 256;
pub const MAX_D_MODEL: usize = 8192;
pub const MAX_D_FF: usize = 65536;
pub const MAX_LEN: usize = 16384;
/// At most this many block parameters (4 GiB of f32).
pub const MAX_BLOCK_PARAMS: u64 = 1 << 30;

const LN_EPS: f32 = 1e-5;
/// Stream id base for the embedding rows (layer weights use stream 0).
const EMBED_STREAM: u64 = 1 << 32;

/// One block; the projections are packed once for `x · Wᵀ` (see [`PackedMatrix`]).
struct Block {
    wq: PackedMatrix,
    wk: PackedMatrix,
    wv: PackedMatrix,
    wo: PackedMatrix,
    ln1_g: Array1<f32>,
    ln1_b: Array1<f32>,
    w1: PackedMatrix,
    b1: Array1<f32>,
    w2: PackedMatrix,
    b2: Array1<f32>,
    ln2_g: Array1<f32>,
    ln2_b: Array1<f32>,
}

pub struct Textbook {
    cfg: TextbookConfig,
    info: ModelInfo,
    tokenizer: Tokenizer,
    blocks: Vec<Block>,
}

/// Check the settings; returns the parameter count (embedding included).
pub fn validate(cfg: &TextbookConfig, vocab: usize) -> Result<u64> {
    let bad = |m: String| Err(Error::Config(m));
    if cfg.layers == 0 || cfg.layers > MAX_LAYERS {
        return bad(format!(
            "--layers {} must be between 1 and {MAX_LAYERS}",
            cfg.layers
        ));
    }
    if cfg.heads == 0 || cfg.heads > MAX_HEADS {
        return bad(format!(
            "--heads {} must be between 1 and {MAX_HEADS}",
            cfg.heads
        ));
    }
    if cfg.d_model == 0 || cfg.d_model > MAX_D_MODEL {
        return bad(format!(
            "--d-model {} must be between 1 and {MAX_D_MODEL}",
            cfg.d_model
        ));
    }
    if !cfg.d_model.is_multiple_of(cfg.heads) {
        return bad(format!(
            "--d-model {} is not divisible by --heads {}: each head needs d_model / heads dimensions",
            cfg.d_model, cfg.heads
        ));
    }
    if cfg.d_ff == 0 || cfg.d_ff > MAX_D_FF {
        return bad(format!(
            "--d-ff {} must be between 1 and {MAX_D_FF}",
            cfg.d_ff
        ));
    }
    if cfg.max_len == 0 || cfg.max_len > MAX_LEN {
        return bad(format!(
            "--max-len {} must be between 1 and {MAX_LEN}",
            cfg.max_len
        ));
    }
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

/// A Xavier-uniform `[out, in]` weight, packed for the forward pass.
fn xavier(rng: &mut ChaCha8Rng, out: usize, inp: usize) -> PackedMatrix {
    let a = (6.0 / (out + inp) as f32).sqrt();
    let dist = Uniform::new_inclusive(-a, a).expect("a > 0");
    PackedMatrix::new(&Array2::random_using((out, inp), dist, rng))
}

impl Textbook {
    pub fn new(cfg: TextbookConfig) -> Result<Self> {
        let tokenizer = if cfg.causal {
            Tokenizer::bundled_bert_uncased_decoder()
        } else {
            Tokenizer::bundled_bert_uncased()
        };
        let vocab = tokenizer.vocab_size();
        let n_params = validate(&cfg, vocab)?;
        let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
        let d = cfg.d_model;
        let blocks = (0..cfg.layers)
            .map(|_| Block {
                wq: xavier(&mut rng, d, d),
                wk: xavier(&mut rng, d, d),
                wv: xavier(&mut rng, d, d),
                wo: xavier(&mut rng, d, d),
                ln1_g: Array1::ones(d),
                ln1_b: Array1::zeros(d),
                w1: xavier(&mut rng, cfg.d_ff, d),
                b1: Array1::zeros(cfg.d_ff),
                w2: xavier(&mut rng, d, cfg.d_ff),
                b2: Array1::zeros(d),
                ln2_g: Array1::ones(d),
                ln2_b: Array1::zeros(d),
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
            d_ff: cfg.d_ff,
            vocab_size: vocab,
            max_len: cfg.max_len,
            n_params,
            causal: cfg.causal,
            positional: "sinusoidal".into(),
            tokenizer: tokenizer.description().to_string(),
            source: "built-in".into(),
            notes: vec![
                "post-LN blocks: MHA → add → LayerNorm → ReLU FFN → add → LayerNorm".into(),
                "Xavier-uniform weights, zero biases (ChaCha8, ndarray-rand)".into(),
                "embedding × √d_model + sinusoidal positional encoding".into(),
            ],
        };
        Ok(Textbook {
            cfg,
            info,
            tokenizer,
            blocks,
        })
    }

    /// The embedding row of token `id` (before the √d_model scale): N(0, 1/d_model), from its own stream.
    pub fn embedding_row(&self, id: u32) -> Array1<f32> {
        let mut rng = ChaCha8Rng::seed_from_u64(self.cfg.seed);
        rng.set_stream(EMBED_STREAM + id as u64);
        let std = (1.0 / self.cfg.d_model as f32).sqrt();
        Array1::random_using(
            self.cfg.d_model,
            Normal::new(0.0, std).expect("std > 0"),
            &mut rng,
        )
    }

    fn probs_and_context(&self, b: &Block, x: &Array2<f32>) -> ops::Attention {
        let xv = x.view();
        let q = b.wq.matmul_t(&xv);
        let k = b.wk.matmul_t(&xv);
        let v = b.wv.matmul_t(&xv);
        let h = self.cfg.heads;
        ops::attention(&q, &k, &v, h, h, self.cfg.d_model / h, self.cfg.causal)
    }
}

impl Model for Textbook {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    fn forward(&self, enc: &Encoded, opts: &ForwardOptions) -> Result<Trace> {
        let start = Instant::now();
        let n = enc.ids.len();
        let d = self.cfg.d_model;
        let pe = ops::sinusoidal_positions(n, d);
        let scale = (d as f32).sqrt();
        let mut x = Array2::<f32>::zeros((n, d));
        for (i, id) in enc.ids.iter().enumerate() {
            let row = self.embedding_row(*id) * scale;
            x.row_mut(i).assign(&(&row + &pe.row(i)));
        }
        let mut hidden = vec![x.clone()];
        let mut layers = Vec::with_capacity(self.blocks.len());
        for (l, b) in self.blocks.iter().enumerate() {
            let att = self.probs_and_context(b, &x);
            let attn_out = b.wo.matmul_t(&att.context.view());
            let mid = ops::layer_norm(&(&x + &attn_out).view(), &b.ln1_g, &b.ln1_b, LN_EPS);
            let mut inner = b.w1.matmul_t(&mid.view()) + &b.b1;
            inner.mapv_inplace(ops::relu);
            let ffn_out = b.w2.matmul_t(&inner.view()) + &b.b2;
            x = ops::layer_norm(&(&mid + &ffn_out).view(), &b.ln2_g, &b.ln2_b, LN_EPS);
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
            Positional::Sinusoidal(pe),
            start.elapsed(),
        ))
    }

    fn layer_attention(&self, layer: usize, resid_in: &Array2<f32>) -> Result<Array3<f32>> {
        let b = crate::model::checked_block(&self.blocks, layer, resid_in, self.cfg.d_model)?;
        Ok(self.probs_and_context(b, resid_in).probs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::run;

    fn small(causal: bool, seed: u64) -> Textbook {
        Textbook::new(TextbookConfig {
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
            let want = m.embedding_row(tok.id) * (32f32).sqrt() + pe.row(i);
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
            let err = Textbook::new(cfg).err().expect("must fail").to_string();
            assert!(err.contains(want), "{err} lacks {want}");
        }
    }

    #[test]
    fn too_long_text_names_count_and_limit() {
        let m = Textbook::new(TextbookConfig {
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
        let m = Textbook::new(TextbookConfig::default()).unwrap();
        // 30522·512 embedding + 6 · (4·512² + 2·512·2048 + 2048 + 512 + 4·512)
        assert_eq!(
            m.info().n_params,
            30522 * 512 + 6 * (4 * 512 * 512 + 2 * 512 * 2048 + 2048 + 512 + 2048)
        );
    }
}
