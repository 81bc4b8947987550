//! A long input's [`Summary`]: the trace kept its residual streams but no attention (every layer's `[H, n, n]` would
//! not fit the memory budget), so each head's matrix is computed on demand from the stream entering its layer
//! ([`crate::model::head_attention`]). Its head statistics start unknown (NaN, shown as "—") and are filled in as a
//! streaming pass computes them head by head.

use super::{HeadStats, Summary, has_pattern};
use crate::trace::Trace;

/// Statistics not computed yet.
pub const UNKNOWN: HeadStats = HeadStats {
    entropy: f32::NAN,
    entropy_norm: f32::NAN,
    max_weight: f32::NAN,
    sink: f32::NAN,
    prev: f32::NAN,
    self_: f32::NAN,
    distance: f32::NAN,
};

impl Summary {
    /// The summary of a trace that kept no attention, for a model of `n_heads` heads: norms as for any trace, head
    /// statistics unknown until [`Summary::set_head_stats`].
    pub fn lazy(trace: Trace, n_heads: usize) -> Result<Summary, String> {
        let (n, nl) = (trace.n_tokens(), trace.n_layers());
        if trace.hidden.len() != nl + 1 || trace.hidden.iter().any(|h| h.nrows() != n) {
            return Err(format!(
                "the trace has {} hidden states for {nl} layers of {n} tokens",
                trace.hidden.len()
            ));
        }
        if n_heads == 0 {
            return Err("a model without attention heads".into());
        }
        let stats = vec![vec![UNKNOWN; n_heads]; nl];
        let mut s = Summary::assemble(trace, stats, vec![UNKNOWN; nl], n_heads);
        s.lazy = true;
        Ok(s)
    }

    /// Head `head` of `layer` of a lazy summary now has statistics `stats` (its layer's pattern count follows).
    pub fn set_head_stats(&mut self, layer: usize, head: usize, stats: HeadStats) {
        let Some(row) = self.stats.get_mut(layer) else {
            return;
        };
        if let Some(s) = row.get_mut(head) {
            *s = stats;
        }
        let count = row.iter().filter(|s| has_pattern(s)).count();
        if let Some(c) = self.pattern_counts.get_mut(layer) {
            *c = count;
        }
    }
}
