//! Pure functions over a [`Trace`]: residual-stream norms, head statistics, aggregations; attention rollout
//! ([`rollout`]) and head scans ([`scans`]).

pub mod ablation;
pub mod attribution;
pub mod cross;
pub mod long;
pub mod rollout;
pub mod scans;

use crate::numeric::ops;
use crate::trace::Trace;
use ndarray::{Array2, Array3, ArrayView2, Axis};
use std::sync::Arc;

/// Norms for one (layer, token).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ResidualRow {
    pub layer: usize,
    pub token: usize,
    /// ‖residual stream entering the block‖
    pub resid_in: f32,
    /// ‖residual stream leaving the block‖
    pub resid_out: f32,
    /// ‖what the attention sub-layer wrote‖
    pub attn_update: f32,
    /// ‖what the feed-forward sub-layer wrote‖
    pub ffn_update: f32,
}

/// One row per (layer, token), layer-major.
pub fn residual_rows(trace: &Trace) -> Vec<ResidualRow> {
    let mut rows = Vec::with_capacity(trace.n_layers() * trace.n_tokens());
    for (l, lt) in trace.layers.iter().enumerate() {
        let ins = ops::row_norms(&trace.hidden[l].view());
        let outs = ops::row_norms(&trace.hidden[l + 1].view());
        for t in 0..trace.n_tokens() {
            rows.push(ResidualRow {
                layer: l,
                token: t,
                resid_in: ins[t],
                resid_out: outs[t],
                attn_update: lt.attn_update_norm[t],
                ffn_update: lt.ffn_update_norm[t],
            });
        }
    }
    rows
}

/// Per-layer norms: for one token (`Some(t)`) or the mean over tokens (`None`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LayerNorms {
    pub layer: usize,
    pub resid_in: f32,
    pub resid_out: f32,
    pub attn_update: f32,
    pub ffn_update: f32,
}

impl LayerNorms {
    /// ‖attention update‖ / ‖stream entering‖.
    pub fn attn_ratio(&self) -> f32 {
        ratio(self.attn_update, self.resid_in)
    }
    /// ‖FFN update‖ / ‖stream entering‖.
    pub fn ffn_ratio(&self) -> f32 {
        ratio(self.ffn_update, self.resid_in)
    }
}

fn ratio(a: f32, b: f32) -> f32 {
    if b > 0.0 { a / b } else { 0.0 }
}

/// How the norms of all tokens are summed up into one number per layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NormStat {
    #[default]
    Mean,
    /// The median: robust to one token with a massive activation (SmolLM2's BOS).
    Median,
    /// The mean over tokens 1..n: the first token (often a sink with a huge norm) left out.
    MeanSkipFirst,
}

impl NormStat {
    pub const ALL: [NormStat; 3] = [NormStat::Mean, NormStat::Median, NormStat::MeanSkipFirst];
    pub fn next(self) -> Self {
        match self {
            NormStat::Mean => NormStat::Median,
            NormStat::Median => NormStat::MeanSkipFirst,
            NormStat::MeanSkipFirst => NormStat::Mean,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            NormStat::Mean => "mean over tokens",
            NormStat::Median => "median over tokens",
            NormStat::MeanSkipFirst => "mean without the first token",
        }
    }
}

/// Per-layer norms over every token, summed up by `stat`.
pub fn layer_norms_by(trace: &Trace, stat: NormStat) -> Vec<LayerNorms> {
    let pick = |vals: Vec<f32>| -> f32 {
        let vals: Vec<f32> = match stat {
            NormStat::MeanSkipFirst if vals.len() > 1 => vals[1..].to_vec(),
            _ => vals,
        };
        if vals.is_empty() {
            return 0.0;
        }
        match stat {
            NormStat::Median => {
                let mut v = vals;
                v.sort_by(|a, b| a.total_cmp(b));
                let m = v.len() / 2;
                if v.len() % 2 == 1 {
                    v[m]
                } else {
                    (v[m - 1] + v[m]) / 2.0
                }
            }
            _ => vals.iter().sum::<f32>() / vals.len() as f32,
        }
    };
    per_layer(trace, |sel, f| pick(sel.iter().map(f).collect()))
}

/// Per-layer norms: every token's mean, or one token's own.
pub fn layer_norms(trace: &Trace, token: Option<usize>) -> Vec<LayerNorms> {
    match token {
        None => layer_norms_by(trace, NormStat::Mean),
        Some(t) => per_layer(trace, |sel, f| sel.get(t).map_or(0.0, f)),
    }
}

/// One [`LayerNorms`] per layer, each figure made by `value` from the layer's rows (one per token, in order).
fn per_layer(
    trace: &Trace,
    value: impl Fn(&[ResidualRow], fn(&ResidualRow) -> f32) -> f32,
) -> Vec<LayerNorms> {
    let rows = residual_rows(trace);
    let n = trace.n_tokens();
    (0..trace.n_layers())
        .map(|l| {
            let sel = &rows[l * n..(l + 1) * n];
            LayerNorms {
                layer: l,
                resid_in: value(sel, |r| r.resid_in),
                resid_out: value(sel, |r| r.resid_out),
                attn_update: value(sel, |r| r.attn_update),
                ffn_update: value(sel, |r| r.ffn_update),
            }
        })
        .collect()
}

/// Statistics of one head's attention matrix (rows = queries), averaged over query rows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HeadStats {
    /// Mean row entropy in nats.
    pub entropy: f32,
    /// Mean row entropy divided by the log of the number of keys each row can see (0 = one key, 1 = uniform).
    pub entropy_norm: f32,
    /// Mean of each row's largest weight.
    pub max_weight: f32,
    /// Mean weight on the first token (BOS / [CLS] sink), over query rows 1..n.
    pub sink: f32,
    /// Mean weight on the previous token, over query rows 2..n: the first key is left out (query 1's previous token
    /// is the first token, the sink), so a pure sink head scores 0 here.
    pub prev: f32,
    /// Mean weight on the token itself (the diagonal), over query rows 1..n.
    pub self_: f32,
    /// Mean attention distance Σ_j a_ij·|i − j|.
    pub distance: f32,
}

/// What a head clearly does, if one kind dominates.
pub fn head_tag(s: &HeadStats) -> Option<&'static str> {
    role_tag(s.prev, s.sink, s.self_).or((s.entropy_norm >= 0.9).then_some("broad"))
}

/// The positional role a head's mean weights show: half or more of each query's weight on the previous token, on
/// the first token, or on itself.
pub fn role_tag(previous: f32, sink: f32, self_: f32) -> Option<&'static str> {
    [
        (previous, "previous-token"),
        (sink, "sink"),
        (self_, "self"),
    ]
    .into_iter()
    .find(|(v, _)| *v >= 0.5)
    .map(|(_, tag)| tag)
}

pub fn head_stats(a: &ArrayView2<f32>) -> HeadStats {
    let n = a.nrows();
    if n == 0 {
        return HeadStats {
            entropy: 0.0,
            entropy_norm: 0.0,
            max_weight: 0.0,
            sink: 0.0,
            prev: 0.0,
            self_: 0.0,
            distance: 0.0,
        };
    }
    let (mut ent, mut ent_norm, mut ent_rows, mut maxw, mut sink, mut prev, mut selfw, mut dist) = (
        0.0f64, 0.0f64, 0usize, 0.0f64, 0.0f64, 0.0f64, 0.0f64, 0.0f64,
    );
    for (i, row) in a.rows().into_iter().enumerate() {
        let h: f64 = row
            .iter()
            .filter(|p| **p > 0.0)
            .map(|p| -(*p as f64) * (*p as f64).ln())
            .sum();
        ent += h;
        let visible = row
            .iter()
            .filter(|p| **p > 0.0)
            .count()
            .max(row.len().min(i + 1));
        if visible > 1 {
            ent_norm += h / (visible as f64).ln();
            ent_rows += 1;
        }
        maxw += row.iter().copied().fold(0.0f32, f32::max) as f64;
        // Row 0 is left out of the positional scores: a causal model's first row is trivially all on token 0.
        // `get`: a matrix with fewer columns than rows (cross-attention) has no diagonal there.
        if i > 0 || n == 1 {
            sink += row[0] as f64;
            selfw += row.get(i).copied().unwrap_or(0.0) as f64;
        }
        if i > 1 {
            prev += row.get(i - 1).copied().unwrap_or(0.0) as f64;
        }
        dist += row
            .iter()
            .enumerate()
            .map(|(j, p)| *p as f64 * (i as f64 - j as f64).abs())
            .sum::<f64>();
    }
    let nf = n as f64;
    HeadStats {
        entropy: (ent / nf) as f32,
        entropy_norm: if ent_rows > 0 {
            (ent_norm / ent_rows as f64) as f32
        } else {
            0.0
        },
        max_weight: (maxw / nf) as f32,
        sink: (sink / (nf - 1.0).max(1.0)) as f32,
        prev: if n > 2 {
            (prev / (nf - 2.0)) as f32
        } else {
            0.0
        },
        self_: (selfw / (nf - 1.0).max(1.0)) as f32,
        distance: (dist / nf) as f32,
    }
}

/// Which query heads share head `h`'s key/value head under grouped-query attention (`kv_group[h]` is the KV head
/// of query head `h`): `(kv head, query heads)`. `None` for plain multi-head attention.
pub fn kv_sharing(kv_group: &[usize], h: usize) -> Option<(usize, Vec<usize>)> {
    let g = *kv_group.get(h)?;
    Some((
        g,
        (0..kv_group.len()).filter(|&i| kv_group[i] == g).collect(),
    ))
}

/// Whether a head has a clear pattern (previous-token, sink or self; "broad" does not count).
pub fn has_pattern(s: &HeadStats) -> bool {
    head_tag(s).is_some_and(|t| t != "broad")
}

/// A trace with what every view needs computed once per forward pass: head statistics, norms summaries, the
/// per-layer count of heads with a clear pattern. Made on the worker thread; views only read it.
#[derive(Debug)]
pub struct Summary {
    pub trace: Arc<Trace>,
    /// `stats[layer][head]`.
    pub stats: Vec<Vec<HeadStats>>,
    /// Per layer: statistics of the mean over heads.
    pub mean_stats: Vec<HeadStats>,
    /// Per [`NormStat`] (in [`NormStat::ALL`] order), per layer: the norms over all tokens.
    pub norms_all: Vec<Vec<LayerNorms>>,
    /// Per layer: how many heads have a clear pattern.
    pub pattern_counts: Vec<usize>,
    pub n_heads: usize,
    /// Where NaN/Inf first appear in the trace, if anywhere (shown as a warning in the status line).
    pub non_finite: Option<NonFinite>,
    /// The trace kept no attention (a long input): heads are computed on demand ([`long`]).
    pub lazy: bool,
}

impl Summary {
    /// Check that the trace is complete (every layer's attention kept, shapes agree) and analyse it.
    pub fn new(trace: Trace) -> std::result::Result<Summary, String> {
        let n = trace.n_tokens();
        Self::with_stats(trace, n, head_stats)
    }

    /// [`Summary::new`] for attention of `n_keys` columns, with `stat` as the head statistics (see
    /// [`cross::cross_summary`]).
    pub(crate) fn with_stats(
        trace: Trace,
        n_keys: usize,
        stat: fn(&ArrayView2<f32>) -> HeadStats,
    ) -> std::result::Result<Summary, String> {
        let n = trace.n_tokens();
        let nl = trace.n_layers();
        if trace.hidden.len() != nl + 1 {
            return Err(format!(
                "the trace has {} hidden states for {nl} layers",
                trace.hidden.len()
            ));
        }
        let mut n_heads = None;
        let mut stats = Vec::with_capacity(nl);
        let mut mean_stats = Vec::with_capacity(nl);
        for (l, lt) in trace.layers.iter().enumerate() {
            let a = lt
                .attention
                .as_ref()
                .ok_or_else(|| format!("layer {l}: the attention was not kept"))?;
            let (h, r, c) = a.dim();
            if r != n || c != n_keys || h == 0 || n_heads.is_some_and(|k| k != h) {
                return Err(format!(
                    "layer {l}: attention has shape [{h}, {r}, {c}] for {n} × {n_keys} tokens"
                ));
            }
            n_heads = Some(h);
            if lt.attn_update_norm.len() != n || lt.ffn_update_norm.len() != n {
                return Err(format!(
                    "layer {l}: update norms do not cover the {n} tokens"
                ));
            }
            stats.push(a.outer_iter().map(|m| stat(&m)).collect::<Vec<_>>());
            mean_stats.push(stat(&mean_over_heads(a).view()));
        }
        for (l, h) in trace.hidden.iter().enumerate() {
            if h.nrows() != n {
                return Err(format!(
                    "hidden state {l} has {} rows for {n} tokens",
                    h.nrows()
                ));
            }
        }
        let n_heads = n_heads.unwrap_or(0);
        if !trace.kv_group.is_empty() && trace.kv_group.len() != n_heads {
            return Err(format!(
                "kv_group has {} entries for {n_heads} heads",
                trace.kv_group.len()
            ));
        }
        Ok(Summary::assemble(trace, stats, mean_stats, n_heads))
    }

    pub fn att(&self, layer: usize) -> Option<&Array3<f32>> {
        self.trace
            .layers
            .get(layer)
            .and_then(|l| l.attention.as_ref())
    }

    pub fn n_layers(&self) -> usize {
        self.trace.n_layers()
    }

    /// The norms over all tokens, summed up by `stat`.
    pub fn norms(&self, stat: NormStat) -> &[LayerNorms] {
        let i = NormStat::ALL.iter().position(|s| *s == stat).unwrap_or(0);
        self.norms_all.get(i).map(Vec::as_slice).unwrap_or(&[])
    }
}

/// The mean over heads of a layer's attention `[heads, n, n]` → `[n, n]`.
pub fn mean_over_heads(a: &Array3<f32>) -> Array2<f32> {
    a.mean_axis(Axis(0))
        .unwrap_or_else(|| Array2::zeros((0, 0)))
}

/// Zero the columns in `hide` and renormalise every row to sum to 1 (rows left with no weight stay zero).
pub fn hide_and_renormalize(a: &ArrayView2<f32>, hide: &[bool]) -> Array2<f32> {
    let mut out = a.to_owned();
    for mut row in out.rows_mut() {
        for (j, v) in row.iter_mut().enumerate() {
            if hide.get(j).copied().unwrap_or(false) {
                *v = 0.0;
            }
        }
        let s: f32 = row.sum();
        if s > 0.0 {
            row.mapv_inplace(|v| v / s);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::arr2;

    #[test]
    fn previous_token_head_is_tagged() {
        let a = arr2(&[[1.0f32, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]);
        let s = head_stats(&a.view());
        assert_eq!(s.prev, 1.0);
        assert!((s.sink - 0.5).abs() < 1e-6);
        assert_eq!(s.entropy, 0.0);
        assert_eq!(head_tag(&s), Some("previous-token"));
        assert!((s.distance - 2.0 / 3.0).abs() < 1e-6);
    }

    #[test]
    fn uniform_head_is_broad() {
        let a = Array2::from_elem((4, 4), 0.25f32);
        let s = head_stats(&a.view());
        assert!((s.entropy - 4f32.ln()).abs() < 1e-5);
        assert!((s.entropy_norm - 1.0).abs() < 1e-5);
        assert_eq!(head_tag(&s), Some("broad"));
        let d = arr2(&[[1.0f32, 0.0], [0.0, 1.0]]);
        assert_eq!(head_tag(&head_stats(&d.view())), Some("self"));
    }

    #[test]
    fn a_sink_head_is_not_a_previous_token_head() {
        let a = arr2(&[[1.0f32, 0.0, 0.0], [1.0, 0.0, 0.0], [1.0, 0.0, 0.0]]);
        let s = head_stats(&a.view());
        assert_eq!(s.prev, 0.0);
        assert_eq!(s.sink, 1.0);
        assert_eq!(kv_sharing(&[0, 0, 1, 1], 3), Some((1, vec![2, 3])));
        assert_eq!(kv_sharing(&[], 0), None);
    }

    #[test]
    fn hiding_renormalizes_rows() {
        let a = arr2(&[[0.5f32, 0.25, 0.25], [1.0, 0.0, 0.0]]);
        let h = hide_and_renormalize(&a.view(), &[true, false, false]);
        assert_eq!(h, arr2(&[[0.0f32, 0.5, 0.5], [0.0, 0.0, 0.0]]));
    }
}

/// Where non-finite values (NaN or ±Inf) first appear in a forward pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NonFinite {
    /// The block, or `None` for the embeddings (before block 0) and the head (after the last block).
    pub layer: Option<usize>,
    /// `embeddings`, `attention`, `feed-forward`, `block output`, `next-token probabilities`.
    pub site: &'static str,
    /// The first token position with a non-finite value there.
    pub token: usize,
}

impl std::fmt::Display for NonFinite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.layer {
            Some(l) => write!(
                f,
                "non-finite values (NaN/Inf) first appear in layer {l}, {} sub-layer, at token {}",
                self.site, self.token
            ),
            None => write!(
                f,
                "non-finite values (NaN/Inf) first appear in the {}, at token {}",
                self.site, self.token
            ),
        }
    }
}

/// The first row of `m` holding a non-finite value.
fn first_bad_row(m: &Array2<f32>) -> Option<usize> {
    m.rows()
        .into_iter()
        .position(|r| r.iter().any(|v| !v.is_finite()))
}

/// Scan a trace after the fact, in the order the forward pass computed it, for the first non-finite value: the
/// embeddings (`hidden[0]`), then per block the attention sub-layer (its kept attention and its update norms), the
/// mid-block stream, the feed-forward update norms and the block's output, then the next-token probabilities.
/// Cost: one pass over the recorded streams, `O(L·n·d)`.
pub fn first_non_finite(trace: &Trace) -> Option<NonFinite> {
    let at = |layer, site, token| Some(NonFinite { layer, site, token });
    let bad = |v: &[f32]| v.iter().position(|x| !x.is_finite());
    if let Some(t) = trace.hidden.first().and_then(first_bad_row) {
        return at(None, "embeddings", t);
    }
    for (l, lt) in trace.layers.iter().enumerate() {
        let attn_bad = lt
            .attention
            .as_ref()
            .and_then(|a| {
                a.outer_iter()
                    .filter_map(|h| {
                        h.rows()
                            .into_iter()
                            .position(|r| r.iter().any(|v| !v.is_finite()))
                    })
                    .min()
            })
            .into_iter()
            .chain(bad(&lt.attn_update_norm))
            .min();
        if let Some(t) = attn_bad {
            return at(Some(l), "attention", t);
        }
        if let Some(t) = first_bad_row(&lt.mid) {
            return at(Some(l), "attention", t);
        }
        if let Some(t) = bad(&lt.ffn_update_norm) {
            return at(Some(l), "feed-forward", t);
        }
        if let Some(t) = trace.hidden.get(l + 1).and_then(first_bad_row) {
            return at(Some(l), "feed-forward", t);
        }
    }
    if let Some(next) = &trace.next_tokens {
        for (t, top) in next.iter().enumerate() {
            if top.iter().any(|x| !x.prob.is_finite()) {
                return at(None, "final norm / LM head (next-token probabilities)", t);
            }
        }
    }
    None
}

#[cfg(test)]
mod non_finite_tests {
    use super::*;
    use crate::model::{TextbookConfig, textbook};
    use crate::trace::ForwardOptions;

    fn trace() -> Trace {
        let m = textbook::new(TextbookConfig {
            layers: 3,
            heads: 2,
            d_model: 16,
            d_ff: 32,
            ..Default::default()
        })
        .unwrap();
        crate::model::run(&m, "one two three", None, &ForwardOptions::default()).unwrap()
    }

    #[test]
    fn names_the_first_layer_and_sub_layer() {
        let clean = trace();
        assert_eq!(first_non_finite(&clean), None);

        let mut t = clean.clone();
        t.hidden[0][[1, 3]] = f32::NAN;
        let nf = first_non_finite(&t).unwrap();
        assert_eq!((nf.layer, nf.site, nf.token), (None, "embeddings", 1));

        let mut t = clean.clone();
        t.layers[1].ffn_update_norm[2] = f32::INFINITY;
        t.hidden[2][[2, 0]] = f32::NAN;
        t.hidden[3][[0, 0]] = f32::NAN;
        let nf = first_non_finite(&t).unwrap();
        assert_eq!((nf.layer, nf.site, nf.token), (Some(1), "feed-forward", 2));
        assert!(
            nf.to_string().contains("layer 1, feed-forward sub-layer"),
            "{nf}"
        );

        let mut t = clean.clone();
        t.layers[2].mid[[0, 5]] = f32::NAN;
        let nf = first_non_finite(&t).unwrap();
        assert_eq!((nf.layer, nf.site), (Some(2), "attention"));

        let mut t = clean;
        if let Some(a) = t.layers[0].attention.as_mut() {
            a[[1, 2, 0]] = f32::NAN;
        }
        assert_eq!(first_non_finite(&t).unwrap().layer, Some(0));
    }
}
