//! Cross-attention of an encoder–decoder (rows = target tokens, columns = source tokens) as a [`Summary`], and the
//! statistics that make sense for it.
//!
//! A cross-attention matrix is not square and its rows and columns are different sequences, so the positional
//! statistics of [`head_stats`](super::head_stats) do not apply: the "previous token", the diagonal ("self"), the
//! distance |i − j| and the first-token sink compare a target position with a source position, which means nothing.
//! They are NaN here (shown as "—"), and no head gets a previous-token/sink/self tag; entropy (how spread a target
//! token's look over the source is) and the row maximum (how sharply it picks one source token) keep their meaning.

use super::{HeadStats, NormStat, Summary, first_non_finite, has_pattern, layer_norms_by};
use crate::trace::Trace;
use ndarray::{ArrayView2, Axis};
use std::sync::Arc;

/// Statistics of one cross-attention matrix `[n_target, n_source]`: entropy (normalised by the log of the number of
/// source tokens with weight) and the mean row maximum; the positional ones are NaN.
pub fn cross_stats(a: &ArrayView2<f32>) -> HeadStats {
    let n = a.nrows();
    let (mut ent, mut ent_norm, mut ent_rows, mut maxw) = (0.0f64, 0.0f64, 0usize, 0.0f64);
    for row in a.rows() {
        let h: f64 = row
            .iter()
            .filter(|p| **p > 0.0)
            .map(|p| -(*p as f64) * (*p as f64).ln())
            .sum();
        ent += h;
        let keys = row.iter().filter(|p| **p > 0.0).count();
        if keys > 1 {
            ent_norm += h / (keys as f64).ln();
            ent_rows += 1;
        }
        maxw += row.iter().copied().fold(0.0f32, f32::max) as f64;
    }
    let nf = (n as f64).max(1.0);
    HeadStats {
        entropy: (ent / nf) as f32,
        entropy_norm: if ent_rows > 0 {
            (ent_norm / ent_rows as f64) as f32
        } else {
            0.0
        },
        max_weight: (maxw / nf) as f32,
        sink: f32::NAN,
        prev: f32::NAN,
        self_: f32::NAN,
        distance: f32::NAN,
    }
}

/// The decoder trace of an encoder–decoder with its cross-attention in place of the self-attention: each layer's
/// `attention` is `[heads, n_target, n_source]`; norms and hidden states are the decoder's.
pub fn cross_summary(decoder: &Trace, n_source: usize) -> Result<Summary, String> {
    let mut trace = decoder.clone();
    let n = trace.n_tokens();
    let mut stats = Vec::with_capacity(trace.n_layers());
    let mut mean_stats = Vec::with_capacity(trace.n_layers());
    let mut n_heads = None;
    for (l, lt) in trace.layers.iter_mut().enumerate() {
        let a = lt
            .cross_attention
            .take()
            .ok_or_else(|| format!("layer {l}: the cross-attention was not kept"))?;
        let (h, r, c) = a.dim();
        if r != n || c != n_source || h == 0 || n_heads.is_some_and(|k| k != h) {
            return Err(format!(
                "layer {l}: cross-attention has shape [{h}, {r}, {c}] for {n} target and {n_source} source tokens"
            ));
        }
        n_heads = Some(h);
        stats.push(a.outer_iter().map(|m| cross_stats(&m)).collect());
        let mean = a
            .mean_axis(Axis(0))
            .ok_or_else(|| format!("layer {l}: no heads"))?;
        mean_stats.push(cross_stats(&mean.view()));
        lt.attention = Some(a);
    }
    Ok(Summary::assemble(
        trace,
        stats,
        mean_stats,
        n_heads.unwrap_or(0),
    ))
}

impl Summary {
    /// The summary of a checked trace with its head statistics: norms over all tokens and the pattern counts.
    pub(crate) fn assemble(
        trace: Trace,
        stats: Vec<Vec<HeadStats>>,
        mean_stats: Vec<HeadStats>,
        n_heads: usize,
    ) -> Summary {
        let norms_all = NormStat::ALL
            .iter()
            .map(|s| {
                if trace.n_tokens() > 0 {
                    layer_norms_by(&trace, *s)
                } else {
                    vec![]
                }
            })
            .collect();
        let pattern_counts = stats
            .iter()
            .map(|layer| layer.iter().filter(|s| has_pattern(s)).count())
            .collect();
        Summary {
            non_finite: first_non_finite(&trace),
            trace: Arc::new(trace),
            stats,
            mean_stats,
            norms_all,
            pattern_counts,
            n_heads,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::arr2;

    #[test]
    fn cross_stats_keep_entropy_and_max_and_drop_positional_scores() {
        // 3 target rows over 2 source columns: one sharp row, one uniform, one sharp on the other column.
        let a = arr2(&[[1.0f32, 0.0], [0.5, 0.5], [0.0, 1.0]]);
        let s = cross_stats(&a.view());
        assert!((s.max_weight - (1.0 + 0.5 + 1.0) / 3.0).abs() < 1e-6);
        assert!((s.entropy - (2.0f32.ln() / 3.0)).abs() < 1e-6);
        assert!(
            (s.entropy_norm - 1.0).abs() < 1e-6,
            "only row 1 has two keys"
        );
        assert!(s.prev.is_nan() && s.self_.is_nan() && s.sink.is_nan() && s.distance.is_nan());
        assert_eq!(super::super::head_tag(&s), None);
    }
}
