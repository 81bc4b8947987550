//! Head scans: positional scores (previous token, first-token sink, self) and the induction score on a probe of
//! random tokens repeated twice, as TransformerLens's induction-head detection does it.
//!
//! For one head's attention `a` `[n, n]` (row = query, column = key):
//! - previous = mean over queries i = 2..n of a[i, i−1] (query 1 is left out: its previous token is the first key,
//!   where sinks put their weight anyway);
//! - sink = mean over queries i = 1..n of a[i, 0];
//! - self = mean over queries i = 1..n of a[i, i] (query 0 of a causal model can only see itself);
//! - induction on the probe (`T` tokens, then the same `T` again, positions 0..2T): mean over the second half
//!   i = T..2T of a[i, i − T + 1], the token after the previous occurrence of the current token.

use crate::Result;
use crate::model::{Model, layer_attention};
use crate::trace::Trace;
use ndarray::{ArrayView2, Axis};
use rand::{Rng, SeedableRng};
use serde::Serialize;

/// Length of the random half of the probe.
pub const PROBE_T: usize = 50;
/// Seed of the probe's token draw.
pub const PROBE_SEED: u64 = 13;
/// An induction score at or above this is "clear" (the overview's `induction` tag).
pub const INDUCTION_CLEAR: f32 = 0.3;

/// `T` ids drawn uniformly (with replacement, seeded) from `ordinary`, then the same `T` ids again.
pub fn probe_ids(ordinary: &[u32], t: usize, seed: u64) -> Vec<u32> {
    if ordinary.is_empty() {
        return vec![];
    }
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let half: Vec<u32> = (0..t)
        .map(|_| ordinary[rng.random_range(0..ordinary.len())])
        .collect();
    half.iter().chain(half.iter()).copied().collect()
}

/// A head's scores; `induction` is `None` where it does not apply (no repeated token in the input).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct HeadScores {
    pub layer: usize,
    pub head: usize,
    pub previous: f32,
    pub sink: f32,
    #[serde(rename = "self")]
    pub self_: f32,
    pub induction: Option<f32>,
}

impl HeadScores {
    /// The first clear role, strongest signal first.
    pub fn tag(&self) -> Option<&'static str> {
        if self.induction.is_some_and(|v| v >= INDUCTION_CLEAR) {
            Some("induction")
        } else {
            super::role_tag(self.previous, self.sink, self.self_)
        }
    }
}

fn mean(it: impl Iterator<Item = f32>) -> f32 {
    let (s, k) = it.fold((0.0f64, 0usize), |(s, k), v| (s + v as f64, k + 1));
    if k == 0 { 0.0 } else { (s / k as f64) as f32 }
}

/// (previous, sink, self) of one head, as defined in the module documentation.
pub fn positional_scores(a: &ArrayView2<f32>) -> (f32, f32, f32) {
    let n = a.nrows().min(a.ncols());
    let prev = mean((2..n).map(|i| a[[i, i - 1]]));
    let sink = mean((1..n).map(|i| a[[i, 0]]));
    let selfw = mean((1..n).map(|i| a[[i, i]]));
    (prev, sink, selfw)
}

/// Induction score on a probe of period `t` (`2t` tokens): mean over i = t..2t of a[i, i − t + 1].
pub fn induction_score(a: &ArrayView2<f32>, t: usize) -> f32 {
    let n = a.nrows().min(a.ncols());
    mean((t.max(1)..n.min(2 * t)).map(|i| a[[i, i + 1 - t]]))
}

/// Induction on any text: for each query i whose token occurred before (latest earlier occurrence j), the weight on
/// j + 1; the mean over those queries, or `None` when no token repeats.
pub fn text_induction_score(a: &ArrayView2<f32>, ids: &[u32]) -> Option<f32> {
    let n = a.nrows().min(a.ncols()).min(ids.len());
    let mut targets = vec![];
    for i in 1..n {
        if let Some(j) = (0..i).rev().find(|&j| ids[j] == ids[i])
            && j + 1 < i
        {
            targets.push(a[[i, j + 1]]);
        }
    }
    (!targets.is_empty()).then(|| mean(targets.into_iter()))
}

/// Every head's scores on a trace, layer-major. `probe_t = Some(T)`: the trace is a probe of period T and
/// `induction` is [`induction_score`]; `None`: any text, and `induction` is [`text_induction_score`].
pub fn scan_heads(
    model: &dyn Model,
    trace: &Trace,
    probe_t: Option<usize>,
) -> Result<Vec<HeadScores>> {
    let ids: Vec<u32> = trace.tokens.iter().map(|t| t.id).collect();
    let mut out = vec![];
    for layer in 0..trace.n_layers() {
        let att = layer_attention(model, trace, layer)?;
        for (head, a) in att.axis_iter(Axis(0)).enumerate() {
            let (previous, sink, self_) = positional_scores(&a);
            let induction = match probe_t {
                Some(t) => Some(induction_score(&a, t)),
                None => text_induction_score(&a, &ids),
            };
            out.push(HeadScores {
                layer,
                head,
                previous,
                sink,
                self_,
                induction,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    #[test]
    fn probe_is_seeded_and_repeats() {
        let vocab: Vec<u32> = (100..200).collect();
        let p = probe_ids(&vocab, 5, 1);
        assert_eq!(p.len(), 10);
        assert_eq!(p[..5], p[5..]);
        assert!(p.iter().all(|id| vocab.contains(id)));
        assert_eq!(p, probe_ids(&vocab, 5, 1));
        assert_ne!(p, probe_ids(&vocab, 5, 2));
        assert!(probe_ids(&[], 5, 1).is_empty());
    }

    #[test]
    fn an_ideal_induction_head_scores_one() {
        let t = 4;
        let mut a = Array2::<f32>::zeros((2 * t, 2 * t));
        for i in 0..2 * t {
            if i >= t {
                a[[i, i + 1 - t]] = 1.0;
            } else {
                a[[i, 0]] = 1.0;
            }
        }
        assert_eq!(induction_score(&a.view(), t), 1.0);
        let ids = [5, 6, 7, 8, 5, 6, 7, 8];
        assert_eq!(text_induction_score(&a.view(), &ids), Some(1.0));
        assert_eq!(
            text_induction_score(&a.view(), &[1, 2, 3, 4, 5, 6, 7, 8]),
            None
        );
        let (prev, sink, selfw) = positional_scores(&a.view());
        assert_eq!((prev, selfw), (0.0, 0.0));
        // Queries 1..4 put everything on token 0; 4..8 do not (query 4 → key 1).
        assert!((sink - 3.0 / 7.0).abs() < 1e-6);
    }

    #[test]
    fn previous_token_head_leaves_out_the_first_key() {
        let mut a = Array2::<f32>::zeros((4, 4));
        a[[0, 0]] = 1.0;
        a[[1, 1]] = 1.0; // query 1 looks at itself, not at key 0: still previous = 1 over queries 2..4
        a[[2, 1]] = 1.0;
        a[[3, 2]] = 1.0;
        let s = HeadScores {
            layer: 0,
            head: 0,
            previous: positional_scores(&a.view()).0,
            sink: 0.0,
            self_: 0.0,
            induction: Some(0.1),
        };
        assert_eq!(s.previous, 1.0);
        assert_eq!(s.tag(), Some("previous-token"));
    }
}
