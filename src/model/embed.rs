//! The embedding step as data: `norm(token[id] · scale + position[i] + segment[type])`, each part optional, and the
//! positional signal the trace shows. Rotary models add nothing here: their positions act inside attention.

use super::block::Norm;
use crate::numeric::Matrix;
use crate::numeric::ops;
use crate::numeric::packed::PackedMatrix;
use crate::numeric::quant::QuantMatrix;
use crate::tokenize::Encoded;
use crate::trace::Positional;
use crate::weights::source::{Table, Vb};
use crate::{Error, Result};
use ndarray::{Array1, Array2, s};
use ndarray_rand::RandomExt;
use ndarray_rand::rand_distr::Normal;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// Stream id base for the textbook model's seeded embedding rows.
const EMBED_STREAM: u64 = 1 << 32;

/// Where token vectors come from.
#[derive(Debug)]
pub enum TokenTable {
    /// A `[vocab, d]` table from a weight file.
    Table(Table),
    /// A `[vocab, d]` table kept in its GGUF block format; a row is decoded when asked for.
    Quant(QuantMatrix),
    /// The random textbook model: row `id` is N(0, 1/d) drawn from its own ChaCha8 stream of `seed`, so the table
    /// is never materialised and the same seed always gives the same row.
    Seeded { seed: u64, vocab: usize, d: usize },
}

impl TokenTable {
    /// The `[vocab, d]` table `name` of a weight file: F16/BF16 kept in its dtype (a row decoded when asked for),
    /// F32 as stored.
    pub fn load(vb: &Vb, name: &str, vocab: usize, d: usize) -> Result<Self> {
        Ok(match vb.half(name, (vocab, d), false)? {
            Some(q) => TokenTable::Quant(q),
            None => TokenTable::Table(vb.table(name, vocab, d)?),
        })
    }

    /// The table as the matrix of a tied LM head (`x · Eᵀ`): half-precision and GGUF tables share their bytes, f32
    /// tables are packed once. The textbook model's seeded table is never materialised and has no head.
    pub fn unembedding(&self) -> Result<Matrix> {
        match self {
            TokenTable::Table(t) => Ok(PackedMatrix::from_view(&t.view()).into()),
            TokenTable::Quant(q) => Ok(Matrix::Quant(q.clone())),
            TokenTable::Seeded { .. } => Err(Error::Input(
                "a seeded token table is not materialised and cannot be tied to an LM head".into(),
            )),
        }
    }

    pub fn vocab(&self) -> usize {
        match self {
            TokenTable::Table(t) => t.nrows(),
            TokenTable::Quant(q) => q.dim().0,
            TokenTable::Seeded { vocab, .. } => *vocab,
        }
    }
    /// The row of token `id` (the caller checks `id < vocab`).
    pub fn row(&self, id: u32) -> Array1<f32> {
        match self {
            TokenTable::Table(t) => t.view().row(id as usize).to_owned(),
            TokenTable::Quant(q) => {
                let mut row = Array1::zeros(q.dim().1);
                if let Some(r) = row.as_slice_mut() {
                    q.decode_row(id as usize, r);
                }
                row
            }
            TokenTable::Seeded { seed, d, .. } => {
                let mut rng = ChaCha8Rng::seed_from_u64(*seed);
                rng.set_stream(EMBED_STREAM + id as u64);
                let std = (1.0 / *d as f32).sqrt();
                Array1::random_using(*d, Normal::new(0.0, std).expect("std > 0"), &mut rng)
            }
        }
    }
}

/// How positions enter the model.
#[derive(Debug)]
pub enum PositionKind {
    /// Nothing is added (T5: a relative bias inside attention).
    None,
    /// Learned rows `table[offset + i]` (BART's offset is 2).
    Learned { table: Table, offset: usize },
    /// The paper's fixed sin/cos vectors, interleaved ([`ops::sinusoidal_positions`]).
    Sinusoidal,
    /// The same frequencies with every sine in the first half of the vector and every cosine in the second
    /// (Marian's `MarianSinusoidalPositionalEmbedding`, [`sinusoidal_halves`]).
    SinusoidalHalves,
    /// Rotary: queries and keys are rotated inside attention; nothing is added here.
    Rotary { freqs: Vec<f32>, head_dim: usize },
}

/// The embedding step of a model.
#[derive(Debug)]
pub struct Embeddings {
    pub token: TokenTable,
    /// Multiplies the token vector (√d_model in the paper; 1 for most checkpoints).
    pub scale: f32,
    pub position: PositionKind,
    /// Segment (token type) vectors, BERT.
    pub segments: Option<Table>,
    /// A norm after the sum (BERT's embedding LayerNorm).
    pub norm: Option<Norm>,
    pub d_model: usize,
    /// The longest input the position table allows (`usize::MAX` when positions are computed).
    pub max_positions: usize,
}

/// Every part of the embedding of an input, each `[n, d]`, for the embedding view.
#[derive(Debug, Clone)]
pub struct EmbedParts {
    /// `token[id]`, before the scale.
    pub token: Array2<f32>,
    pub scale: f32,
    /// The vectors added for the positions (none for rotary or relative models).
    pub position: Option<Array2<f32>>,
    pub segment: Option<Array2<f32>>,
    /// `token · scale + position + segment`.
    pub sum: Array2<f32>,
    /// After the embedding norm (equal to `sum` without one): the stream entering block 0.
    pub out: Array2<f32>,
}

/// Sinusoidal positions `[n, d]` with the sines first: column `k < ⌈d/2⌉` is `sin(pos / 10000^(2k/d))`, column
/// `⌈d/2⌉ + k` is `cos(pos / 10000^(2k/d))` (transformers' `MarianSinusoidalPositionalEmbedding`, computed in f64).
pub fn sinusoidal_halves(n: usize, d: usize) -> Array2<f32> {
    let half = d.div_ceil(2);
    Array2::from_shape_fn((n, d), |(pos, j)| {
        let (k, sine) = if j < half {
            (j, true)
        } else {
            (j - half, false)
        };
        let angle = pos as f64 / 10000f64.powf(2.0 * k as f64 / d as f64);
        (if sine { angle.sin() } else { angle.cos() }) as f32
    })
}

impl Embeddings {
    /// `token[id] · scale + position[i]`: no segments, no norm.
    pub fn plain(
        token: TokenTable,
        d: usize,
        scale: f32,
        position: PositionKind,
        max_positions: usize,
    ) -> Self {
        Embeddings {
            token,
            scale,
            position,
            segments: None,
            norm: None,
            d_model: d,
            max_positions,
        }
    }

    /// The parts of the embedding of `enc` (ids checked against the vocabulary and the position table).
    pub fn parts(&self, enc: &Encoded) -> Result<EmbedParts> {
        let n = enc.ids.len();
        let d = self.d_model;
        if n > self.max_positions {
            return Err(Error::Input(format!(
                "the text is {n} tokens long; the model has {} positions",
                self.max_positions
            )));
        }
        let vocab = self.token.vocab();
        let mut token = Array2::<f32>::zeros((n, d));
        for (i, &id) in enc.ids.iter().enumerate() {
            if id as usize >= vocab {
                return Err(Error::Input(format!(
                    "token id {id} at position {i} is outside the model's vocabulary of {vocab} (the tokenizer does \
                     not match the weights)"
                )));
            }
            token.row_mut(i).assign(&self.token.row(id));
        }
        let position = match &self.position {
            PositionKind::Learned { table, offset } => {
                Some(table.view().slice(s![*offset..*offset + n, ..]).to_owned())
            }
            PositionKind::Sinusoidal => Some(ops::sinusoidal_positions(n, d)),
            PositionKind::SinusoidalHalves => Some(sinusoidal_halves(n, d)),
            PositionKind::None | PositionKind::Rotary { .. } => None,
        };
        let segment = match &self.segments {
            Some(tt) => {
                let mut seg = Array2::<f32>::zeros((n, d));
                for i in 0..n {
                    let t = enc.type_ids.get(i).copied().unwrap_or(0) as usize;
                    if t >= tt.nrows() {
                        return Err(Error::Input(format!(
                            "segment (token type) {t} at position {i}: the model has only {} token types",
                            tt.nrows()
                        )));
                    }
                    seg.row_mut(i).assign(&tt.view().row(t));
                }
                Some(seg)
            }
            None => None,
        };
        let mut sum = if self.scale == 1.0 {
            token.clone()
        } else {
            &token * self.scale
        };
        if let Some(p) = &position {
            sum += p;
        }
        if let Some(sg) = &segment {
            sum += sg;
        }
        let out = match &self.norm {
            Some(nm) => nm.apply(&sum.view()),
            None => sum.clone(),
        };
        Ok(EmbedParts {
            token,
            scale: self.scale,
            position,
            segment,
            sum,
            out,
        })
    }

    /// The stream entering block 0 and the positional signal for the trace.
    pub fn embed(&self, enc: &Encoded) -> Result<(Array2<f32>, Positional)> {
        let parts = self.parts(enc)?;
        let n = enc.ids.len();
        let positional = match &self.position {
            PositionKind::Rotary { freqs, head_dim } => Positional::Rotary {
                freqs: freqs.clone(),
                angles: ops::rope_angles(n, freqs),
                head_dim: *head_dim,
            },
            PositionKind::Sinusoidal | PositionKind::SinusoidalHalves => {
                Positional::Sinusoidal(parts.position.clone().unwrap_or_default())
            }
            PositionKind::Learned { .. } => {
                Positional::Learned(parts.position.clone().unwrap_or_default())
            }
            PositionKind::None => Positional::Learned(Array2::zeros((n, 0))),
        };
        Ok((parts.out, positional))
    }
}
