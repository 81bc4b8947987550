//! Cross-attention of an encoder–decoder (rows = target tokens, columns = source tokens) as a [`Summary`], and the
//! statistics that make sense for it.
//!
//! A cross-attention matrix is not square and its rows and columns are different sequences, so the positional
//! statistics of [`head_stats`](super::head_stats) do not apply: the "previous token", the diagonal ("self"), the
//! distance |i − j| and the first-token sink compare a target position with a source position, which means nothing.
//! They are NaN here (shown as "—"), and no head gets a previous-token/sink/self tag; entropy (how spread a target
//! token's look over the source is) and the row maximum (how sharply it picks one source token) keep their meaning.

use super::{
    HeadStats, NormStat, Summary, first_non_finite, has_pattern, head_stats, layer_norms_by,
};
use crate::trace::Trace;
use ndarray::ArrayView2;
use std::sync::Arc;

/// Statistics of one cross-attention matrix `[n_target, n_source]`: entropy and the mean row maximum as for any head;
/// the positional ones are NaN.
pub fn cross_stats(a: &ArrayView2<f32>) -> HeadStats {
    HeadStats {
        sink: f32::NAN,
        prev: f32::NAN,
        self_: f32::NAN,
        distance: f32::NAN,
        ..head_stats(a)
    }
}

/// The decoder trace of an encoder–decoder with its cross-attention in place of the self-attention: each layer's
/// `attention` is `[heads, n_target, n_source]`; norms and hidden states are the decoder's.
pub fn cross_summary(decoder: &Trace, n_source: usize) -> Result<Summary, String> {
    let mut trace = decoder.clone();
    for (l, lt) in trace.layers.iter_mut().enumerate() {
        let a = lt
            .cross_attention
            .take()
            .ok_or_else(|| format!("layer {l}: the cross-attention was not kept"))?;
        lt.attention = Some(a);
    }
    Summary::with_stats(trace, n_source, cross_stats)
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
            lazy: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::arr2;

    #[test]
    fn cross_stats_keep_entropy_and_max_and_drop_positional_scores() {
        // 3 target rows over 2 source columns (more rows than columns: no diagonal for row 2).
        let a = arr2(&[[0.9f32, 0.1], [0.5, 0.5], [0.2, 0.8]]);
        let s = cross_stats(&a.view());
        assert!((s.max_weight - (0.9 + 0.5 + 0.8) / 3.0).abs() < 1e-6);
        let h = |p: f32, q: f32| -(p * p.ln() + q * q.ln());
        assert!((s.entropy - (h(0.9, 0.1) + h(0.5, 0.5) + h(0.2, 0.8)) / 3.0).abs() < 1e-5);
        assert!(s.prev.is_nan() && s.self_.is_nan() && s.sink.is_nan() && s.distance.is_nan());
        assert_eq!(super::super::head_tag(&s), None);
        assert!(!has_pattern(&s));
    }
}
