//! Hook points of the block loop: what a forward pass can capture into the trace or edit on the way.
//!
//! The names follow TransformerLens (`blocks.{l}.hook_resid_pre` is `resid_pre` at layer `l` here), so a reader who
//! knows that library recognises them. Shapes of the tensors at each point (`n` query positions, `m` key positions;
//! `m = n` for self-attention, the source length for cross-attention):
//!
//! | point | shape |
//! |---|---|
//! | `resid_pre`, `attn_out`, `resid_mid`, `mlp_out`, `resid_post`, `cross_out`, `resid_cross` | `[n, d_model]` |
//! | `attn.q`, `attn.z` (and `cross.*`) | `[heads, n, d_head]` |
//! | `attn.k`, `attn.v` | `[kv_heads, m, d_head]` (grouped-query models store each KV head once) |
//! | `attn.scores`, `attn.pattern` | `[heads, n, m]` |
//! | `mlp.pre`, `mlp.pre_linear`, `mlp.post` | `[n, d_ff]` |
//!
//! `attn.q`/`attn.k` are taken as they enter the dot product (after the projection bias, after RoPE), not multiplied
//! by the scale; `attn.scores` are scaled, biased (T5) and masked (−∞ where a query may not look); `attn.z` is each
//! head's `Σ_j α_ij v_j` before the output projection. `mlp.pre` is the first projection's output (gated MLPs: the
//! gate's), `mlp.pre_linear` the up projection of gated MLPs, `mlp.post` the activation that enters the down
//! projection.

use crate::{Error, Result};
use ndarray::{ArrayD, ArrayView2, ArrayView3, ArrayViewMutD, Axis, Ix2, Ix3};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// A place in a block where a tensor can be captured or edited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum HookPoint {
    ResidPre,
    AttnQ,
    AttnK,
    AttnV,
    AttnScores,
    AttnPattern,
    AttnZ,
    AttnOut,
    ResidMid,
    CrossQ,
    CrossK,
    CrossV,
    CrossScores,
    CrossPattern,
    CrossZ,
    CrossOut,
    ResidCross,
    MlpPre,
    MlpPreLinear,
    MlpPost,
    MlpOut,
    ResidPost,
}

impl HookPoint {
    pub const ALL: [HookPoint; 22] = [
        HookPoint::ResidPre,
        HookPoint::AttnQ,
        HookPoint::AttnK,
        HookPoint::AttnV,
        HookPoint::AttnScores,
        HookPoint::AttnPattern,
        HookPoint::AttnZ,
        HookPoint::AttnOut,
        HookPoint::ResidMid,
        HookPoint::CrossQ,
        HookPoint::CrossK,
        HookPoint::CrossV,
        HookPoint::CrossScores,
        HookPoint::CrossPattern,
        HookPoint::CrossZ,
        HookPoint::CrossOut,
        HookPoint::ResidCross,
        HookPoint::MlpPre,
        HookPoint::MlpPreLinear,
        HookPoint::MlpPost,
        HookPoint::MlpOut,
        HookPoint::ResidPost,
    ];

    /// The TransformerLens-style name (`attn.q`, `resid_pre`).
    pub fn name(self) -> &'static str {
        match self {
            HookPoint::ResidPre => "resid_pre",
            HookPoint::AttnQ => "attn.q",
            HookPoint::AttnK => "attn.k",
            HookPoint::AttnV => "attn.v",
            HookPoint::AttnScores => "attn.scores",
            HookPoint::AttnPattern => "attn.pattern",
            HookPoint::AttnZ => "attn.z",
            HookPoint::AttnOut => "attn_out",
            HookPoint::ResidMid => "resid_mid",
            HookPoint::CrossQ => "cross.q",
            HookPoint::CrossK => "cross.k",
            HookPoint::CrossV => "cross.v",
            HookPoint::CrossScores => "cross.scores",
            HookPoint::CrossPattern => "cross.pattern",
            HookPoint::CrossZ => "cross.z",
            HookPoint::CrossOut => "cross_out",
            HookPoint::ResidCross => "resid_cross",
            HookPoint::MlpPre => "mlp.pre",
            HookPoint::MlpPreLinear => "mlp.pre_linear",
            HookPoint::MlpPost => "mlp.post",
            HookPoint::MlpOut => "mlp_out",
            HookPoint::ResidPost => "resid_post",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.name() == s)
    }

    /// Points whose first axis is the head.
    pub fn per_head(self) -> bool {
        matches!(
            self,
            HookPoint::AttnQ
                | HookPoint::AttnK
                | HookPoint::AttnV
                | HookPoint::AttnScores
                | HookPoint::AttnPattern
                | HookPoint::AttnZ
                | HookPoint::CrossQ
                | HookPoint::CrossK
                | HookPoint::CrossV
                | HookPoint::CrossScores
                | HookPoint::CrossPattern
                | HookPoint::CrossZ
        )
    }
}

/// A function that edits a tensor in place.
pub type EditFn = Arc<dyn Fn(&mut ArrayViewMutD<f32>) + Send + Sync>;

/// How an intervention changes the tensor at its hook point.
#[derive(Clone)]
pub enum Edit {
    /// Set these heads (first axis) to zero: zero-ablation when applied to `attn.z`.
    ZeroHeads(Vec<usize>),
    /// Replace each of these heads' rows by their mean over positions: mean-ablation when applied to `attn.z`.
    MeanHeads(Vec<usize>),
    /// Replace the whole tensor (e.g. patch a residual stream from another run); the shape must match.
    Replace(ArrayD<f32>),
    /// Anything else.
    Apply(EditFn),
}

impl std::fmt::Debug for Edit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Edit::ZeroHeads(h) => write!(f, "ZeroHeads({h:?})"),
            Edit::MeanHeads(h) => write!(f, "MeanHeads({h:?})"),
            Edit::Replace(a) => write!(f, "Replace({:?})", a.shape()),
            Edit::Apply(_) => f.write_str("Apply(fn)"),
        }
    }
}

/// One edit at one hook point of one layer.
#[derive(Debug, Clone)]
pub struct Intervention {
    pub layer: usize,
    pub point: HookPoint,
    pub edit: Edit,
}

impl Intervention {
    /// Zero-ablation of `heads` of `layer`: their `attn.z` is 0 at every position before the output projection.
    pub fn zero_heads(layer: usize, heads: Vec<usize>) -> Self {
        Intervention {
            layer,
            point: HookPoint::AttnZ,
            edit: Edit::ZeroHeads(heads),
        }
    }

    /// Mean-ablation of `heads` of `layer`: their `attn.z` is replaced by its mean over positions.
    pub fn mean_heads(layer: usize, heads: Vec<usize>) -> Self {
        Intervention {
            layer,
            point: HookPoint::AttnZ,
            edit: Edit::MeanHeads(heads),
        }
    }

    /// A one-line description (`zero attn.z heads [3, 5] at layer 2`) for meta.json and headers.
    pub fn describe(&self) -> String {
        let what = match &self.edit {
            Edit::ZeroHeads(h) => format!("zero heads {h:?} of"),
            Edit::MeanHeads(h) => format!("mean-ablate heads {h:?} of"),
            Edit::Replace(_) => "replace".into(),
            Edit::Apply(_) => "edit".into(),
        };
        format!("{what} {} at layer {}", self.point.name(), self.layer)
    }

    /// Apply to `t` (the tensor at this hook point). Head indices and shapes are checked.
    pub fn apply(&self, t: &mut ArrayViewMutD<f32>) -> Result<()> {
        let bad = |m: String| Err(Error::Input(format!("{}: {m}", self.describe())));
        match &self.edit {
            Edit::ZeroHeads(heads) | Edit::MeanHeads(heads) => {
                if !self.point.per_head() {
                    return bad(format!("{} has no head axis", self.point.name()));
                }
                let n_heads = t.shape()[0];
                for &h in heads {
                    if h >= n_heads {
                        return bad(format!(
                            "head {h} out of range (heads 0..={})",
                            n_heads.saturating_sub(1)
                        ));
                    }
                    let mut head = t.index_axis_mut(Axis(0), h);
                    if matches!(self.edit, Edit::ZeroHeads(_)) {
                        head.fill(0.0);
                    } else if let Some(mean) = head.mean_axis(Axis(0)) {
                        for mut row in head.axis_iter_mut(Axis(0)) {
                            row.assign(&mean);
                        }
                    }
                }
            }
            Edit::Replace(a) => {
                if a.shape() != t.shape() {
                    return bad(format!(
                        "the replacement has shape {:?}, the tensor {:?}",
                        a.shape(),
                        t.shape()
                    ));
                }
                t.assign(a);
            }
            Edit::Apply(f) => f(t),
        }
        Ok(())
    }
}

/// What a forward pass captures and edits. Empty by default: capturing nothing costs nothing.
#[derive(Debug, Clone, Default)]
pub struct Hooks {
    pub capture: BTreeSet<(HookPoint, usize)>,
    pub edits: Vec<Intervention>,
}

impl Hooks {
    pub fn is_empty(&self) -> bool {
        self.capture.is_empty() && self.edits.is_empty()
    }
    /// Capture `point` at every layer `0..n_layers`.
    pub fn capture_all(&mut self, point: HookPoint, n_layers: usize) {
        self.capture.extend((0..n_layers).map(|l| (point, l)));
    }
    /// Whether `point` at `layer` is captured or edited (the tensor must be materialised).
    pub fn wants(&self, point: HookPoint, layer: usize) -> bool {
        self.capture.contains(&(point, layer)) || self.edited(point, layer)
    }
    pub fn captures(&self, point: HookPoint, layer: usize) -> bool {
        self.capture.contains(&(point, layer))
    }
    pub fn edited(&self, point: HookPoint, layer: usize) -> bool {
        self.edits
            .iter()
            .any(|e| e.point == point && e.layer == layer)
    }
    /// Whether anything at all is hooked at `layer`.
    pub fn any_at(&self, layer: usize) -> bool {
        self.capture.iter().any(|(_, l)| *l == layer) || self.edits.iter().any(|e| e.layer == layer)
    }
    /// Apply every edit of `point` at `layer` to `t`, in order.
    pub fn apply(&self, point: HookPoint, layer: usize, t: &mut ArrayViewMutD<f32>) -> Result<()> {
        for e in self
            .edits
            .iter()
            .filter(|e| e.point == point && e.layer == layer)
        {
            e.apply(t)?;
        }
        Ok(())
    }
    /// Zero-ablate (or, with `mean`, mean-ablate) each `(layer, head)`: one intervention on `attn.z` per layer.
    /// Indices are checked against the model's `n_layers` × `n_heads`.
    pub fn ablate(
        &mut self,
        heads: &[(usize, usize)],
        n_layers: usize,
        n_heads: usize,
        mean: bool,
    ) -> Result<()> {
        let mut by_layer: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for &(l, h) in heads {
            if l >= n_layers || h >= n_heads {
                return Err(Error::Input(format!(
                    "cannot ablate head {l}.{h}: the model has layers 0..={} and heads 0..={}",
                    n_layers.saturating_sub(1),
                    n_heads.saturating_sub(1)
                )));
            }
            let hs = by_layer.entry(l).or_default();
            if !hs.contains(&h) {
                hs.push(h);
            }
        }
        for (l, hs) in by_layer {
            self.edits.push(if mean {
                Intervention::mean_heads(l, hs)
            } else {
                Intervention::zero_heads(l, hs)
            });
        }
        Ok(())
    }

    /// One line per edit.
    pub fn describe(&self) -> Vec<String> {
        self.edits.iter().map(Intervention::describe).collect()
    }
}

/// Parse a head list `LAYER.HEAD[,LAYER.HEAD…]` (e.g. `3.5,10.0`), counting from 0.
pub fn parse_heads(s: &str) -> Result<Vec<(usize, usize)>> {
    s.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| {
            let parsed = p
                .split_once('.')
                .and_then(|(l, h)| Some((l.trim().parse().ok()?, h.trim().parse().ok()?)));
            parsed.ok_or_else(|| {
                Error::Input(format!(
                    "`{}` is not a head: write LAYER.HEAD, e.g. 3.5 (both from 0)",
                    crate::tokenize::escape_label(p)
                ))
            })
        })
        .collect::<Result<Vec<_>>>()
        .and_then(|v| {
            if v.is_empty() {
                Err(Error::Input(
                    "the head list is empty: write LAYER.HEAD[,LAYER.HEAD…]".into(),
                ))
            } else {
                Ok(v)
            }
        })
}

/// The tensors a forward pass captured, by hook point and layer.
#[derive(Debug, Clone, Default)]
pub struct Captures {
    map: BTreeMap<(HookPoint, usize), ArrayD<f32>>,
}

impl Captures {
    pub fn insert(&mut self, point: HookPoint, layer: usize, t: ArrayD<f32>) {
        self.map.insert((point, layer), t);
    }
    pub fn get(&self, point: HookPoint, layer: usize) -> Option<&ArrayD<f32>> {
        self.map.get(&(point, layer))
    }
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
    pub fn len(&self) -> usize {
        self.map.len()
    }
    pub fn iter(&self) -> impl Iterator<Item = (&(HookPoint, usize), &ArrayD<f32>)> {
        self.map.iter()
    }
    /// Move every capture of `other` in (for runs resumed from a clean trace).
    pub fn extend(&mut self, other: Captures) {
        self.map.extend(other.map);
    }
    /// Drop the captures of layers `>= layer`.
    pub fn truncate_layers(&mut self, layer: usize) {
        self.map.retain(|(_, l), _| *l < layer);
    }
    /// A per-head capture as `[heads, n, x]`.
    pub fn view3(&self, point: HookPoint, layer: usize) -> Option<ArrayView3<'_, f32>> {
        self.get(point, layer)?
            .view()
            .into_dimensionality::<Ix3>()
            .ok()
    }
    /// A stream or MLP capture as `[n, x]`.
    pub fn view2(&self, point: HookPoint, layer: usize) -> Option<ArrayView2<'_, f32>> {
        self.get(point, layer)?
            .view()
            .into_dimensionality::<Ix2>()
            .ok()
    }
}

/// Typed accessors: `captures.q(layer)` is the capture at `attn.q` of that layer as `[heads, n, d_head]`, and so on.
macro_rules! typed_accessors {
    ($($name:ident: $view:ident, $ret:ident, $point:ident;)*) => {
        impl Captures {
            $(
                pub fn $name(&self, layer: usize) -> Option<$ret<'_, f32>> {
                    self.$view(HookPoint::$point, layer)
                }
            )*
        }
    };
}

typed_accessors! {
    q: view3, ArrayView3, AttnQ;
    k: view3, ArrayView3, AttnK;
    v: view3, ArrayView3, AttnV;
    z: view3, ArrayView3, AttnZ;
    scores: view3, ArrayView3, AttnScores;
    pattern: view3, ArrayView3, AttnPattern;
    mlp_post: view2, ArrayView2, MlpPost;
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Array3, IxDyn};

    #[test]
    fn head_lists_parse_and_check() {
        assert_eq!(parse_heads("3.5, 0.1").unwrap(), vec![(3, 5), (0, 1)]);
        for bad in ["", "3", "a.b", "3.5,x"] {
            assert!(parse_heads(bad).is_err(), "{bad}");
        }
        let mut h = Hooks::default();
        h.ablate(&[(1, 2), (1, 3), (0, 0), (1, 2)], 2, 4, false)
            .unwrap();
        assert_eq!(h.edits.len(), 2);
        assert_eq!(h.describe()[1], "zero heads [2, 3] of attn.z at layer 1");
        let err = h.ablate(&[(2, 0)], 2, 4, false).unwrap_err().to_string();
        assert!(err.contains("cannot ablate head 2.0"), "{err}");
    }

    #[test]
    fn names_round_trip() {
        for p in HookPoint::ALL {
            assert_eq!(HookPoint::parse(p.name()), Some(p));
        }
        assert_eq!(HookPoint::parse("attn.q"), Some(HookPoint::AttnQ));
        assert_eq!(HookPoint::parse("nope"), None);
    }

    #[test]
    fn zero_and_mean_heads() {
        let base =
            Array3::from_shape_fn((3, 2, 2), |(h, i, j)| (h * 4 + i * 2 + j) as f32).into_dyn();
        let mut t = base.clone();
        Intervention::zero_heads(0, vec![1])
            .apply(&mut t.view_mut())
            .unwrap();
        assert_eq!(t.index_axis(Axis(0), 1).sum(), 0.0);
        assert_eq!(t.index_axis(Axis(0), 0), base.index_axis(Axis(0), 0));
        let mut t = base.clone();
        Intervention::mean_heads(0, vec![2])
            .apply(&mut t.view_mut())
            .unwrap();
        // head 2 rows [8, 9] and [10, 11] → mean [9, 10] in both rows
        assert_eq!(t[IxDyn(&[2, 0, 0])], 9.0);
        assert_eq!(t[IxDyn(&[2, 1, 1])], 10.0);
        let err = Intervention::zero_heads(4, vec![3])
            .apply(&mut t.view_mut())
            .unwrap_err()
            .to_string();
        assert!(err.contains("head 3 out of range"), "{err}");
    }
}
