//! The language-model head: final norm, unembedding (+ bias, × scale), and the one top-k every decoder uses.

use super::block::Norm;
use crate::numeric::ops;
use crate::numeric::packed::PackedMatrix;
use crate::tokenize::Tokenizer;
use crate::trace::TopToken;
use ndarray::{Array1, Array2};
use rayon::prelude::*;

/// `logits = unembed(norm(x) · scale) + bias`.
#[derive(Debug)]
pub struct LmHead {
    /// The final norm (GPT-2 `ln_f`, Llama `output_norm`), applied to the last block's output.
    pub norm: Option<Norm>,
    /// `[vocab, d_model]` (the token embedding again when tied).
    pub unembed: PackedMatrix,
    /// Added to the logits (Marian's `final_logits_bias`).
    pub bias: Option<Array1<f32>>,
    /// Multiplies the normed stream before the unembedding (T5 with tied embeddings: `d_model^−½`).
    pub scale: f32,
    /// Whether `unembed` is the token embedding.
    pub tied: bool,
}

impl LmHead {
    /// The normed stream that enters the unembedding, `[n, d]`.
    pub fn normed(&self, hidden: &Array2<f32>) -> Array2<f32> {
        let mut h = match &self.norm {
            Some(n) => n.apply(&hidden.view()),
            None => hidden.clone(),
        };
        if self.scale != 1.0 {
            h *= self.scale;
        }
        h
    }

    /// Logits `[n, vocab]` of a residual stream `[n, d]` (the last block's output, before the final norm).
    pub fn logits(&self, hidden: &Array2<f32>) -> Array2<f32> {
        let y = self.unembed.matmul_t(&self.normed(hidden).view());
        match &self.bias {
            Some(b) => y + b,
            None => y,
        }
    }

    /// The `k` most likely next tokens at every position, with their probabilities.
    pub fn top_tokens(
        &self,
        hidden: &Array2<f32>,
        k: usize,
        tok: &Tokenizer,
    ) -> Vec<Vec<TopToken>> {
        top_tokens_of_logits(&self.logits(hidden), k, tok)
    }
}

/// The top-`k` tokens of every row of `logits` (softmax over the whole row), each row on its own thread.
pub fn top_tokens_of_logits(logits: &Array2<f32>, k: usize, tok: &Tokenizer) -> Vec<Vec<TopToken>> {
    let rows: Vec<_> = logits.rows().into_iter().collect();
    rows.into_par_iter()
        .map(|row| {
            let top = match row.as_slice() {
                Some(s) => ops::softmax_top_k(s, k),
                None => ops::softmax_top_k(&row.to_vec(), k),
            };
            top.into_iter()
                .map(|(id, prob)| TopToken {
                    id: id as u32,
                    text: tok.token_label(id as u32),
                    prob,
                })
                .collect()
        })
        .collect()
}
