//! The explorer's explanation views (computation of one weight `E`, what the head writes `o`, embedding `b`, block
//! walk-through `B`) and the value-weighted grid mode (`v`): the request the app sends, what the worker computes
//! (one layer's hook points captured, then the pure computations of [`crate::explain`]), and the app-side state.
//! The captured trace comes back with the result and is sent with the next request, so moving the cursor within a
//! layer never re-runs the model.

use crate::explain::block_walk::BlockWalk;
use crate::explain::embedding::EmbeddingParts;
use crate::explain::run as ex;
use crate::explain::subject::Subject;
use crate::explain::{WeightComputation, row_normalized};
use crate::trace::Trace;
use ndarray::{Array2, Array3, Axis};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Which cell, token and layer an explanation is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExplainRequest {
    pub generation: u64,
    pub layer: usize,
    pub head: usize,
    pub query: usize,
    pub key: usize,
}

/// Which attention of an encoder–decoder an explanation is for, with the encoder memory the decoder reads.
#[derive(Debug, Clone)]
pub struct EncDecSide {
    pub part: crate::explain::subject::Part,
    pub memory: Option<Arc<Array2<f32>>>,
}

/// What the worker computed for a request.
#[derive(Debug)]
pub struct Explained {
    pub req: ExplainRequest,
    /// The trace with the layer's hook points captured and the layer's dense W_O (both sent back with the next
    /// request of the same layer).
    pub captured: Arc<Trace>,
    pub w_o: Option<Arc<Array2<f32>>>,
    pub weight: Result<WeightComputation, String>,
    pub head_norms: Vec<f32>,
    /// `[heads, n, n]` ‖α_ij v_j W_O^h‖ of the layer.
    pub value_weighted: Option<Array3<f32>>,
    pub embedding: Result<EmbeddingParts, String>,
    pub walk: Result<BlockWalk, String>,
    /// Capture (if needed) + computations, wall time.
    pub elapsed: Duration,
}

/// The worker's side: capture the layer (unless `trace` already holds it) and compute every explanation.
pub fn compute<'a>(
    model: impl Into<Subject<'a>>,
    trace: Arc<Trace>,
    w_o: Option<Arc<Array2<f32>>>,
    req: ExplainRequest,
) -> Explained {
    let model = model.into();
    let start = Instant::now();
    let captured = if trace.captures.get(model.points().q, req.layer).is_some() {
        trace
    } else {
        match ex::with_layer(model, &trace, req.layer) {
            Ok(t) => Arc::new(t),
            Err(e) => {
                let err = e.to_string();
                return Explained {
                    req,
                    captured: trace,
                    w_o: None,
                    weight: Err(err.clone()),
                    head_norms: vec![],
                    value_weighted: None,
                    embedding: Err(err.clone()),
                    walk: Err(err),
                    elapsed: start.elapsed(),
                };
            }
        }
    };
    let t = captured.as_ref();
    let s = |e: crate::Error| e.to_string();
    let w_o = match w_o {
        Some(w) => w,
        // An impossible layer fails in `with_layer` above; an empty matrix makes every step below an error.
        None => Arc::new(ex::w_o(model, req.layer).unwrap_or_else(|_| Array2::zeros((0, 0)))),
    };
    let w = w_o.as_ref();
    Explained {
        req,
        weight: ex::weight(model, t, w, req.layer, req.head, req.query, Some(req.key)).map_err(s),
        head_norms: ex::head_norms(model, t, (w, req.layer, req.query)).unwrap_or_default(),
        value_weighted: ex::value_weighted(model, t, w, req.layer).ok(),
        embedding: ex::embedding(model, t, req.query).map_err(s),
        walk: ex::block_walk(model, t, w, req.layer, req.query).map_err(s),
        elapsed: start.elapsed(),
        captured,
        w_o: Some(w_o),
    }
}

/// A request with what it can reuse: the trace (captured for the layer when it was before) and the layer's W_O.
pub type Reuse = (ExplainRequest, Arc<Trace>, Option<Arc<Array2<f32>>>);

/// The app's side.
#[derive(Debug, Default)]
pub struct ExplainState {
    /// The latest request sent.
    pub pending: Option<ExplainRequest>,
    pub result: Option<Explained>,
    /// (rows, dimensions) scrolled.
    pub scroll: (usize, usize),
    /// "What the head writes": show it through W_O (`t`).
    pub through_wo: bool,
    /// The grid shows value-weighted attention (`v`).
    pub value_weighted: bool,
}

impl ExplainState {
    /// The request to send for `want`, if it is not already sent; with the trace to send (the captured one when it
    /// is of the same generation and layer).
    pub fn next(&mut self, want: ExplainRequest, trace: &Arc<Trace>) -> Option<Reuse> {
        if self.pending == Some(want) {
            return None;
        }
        self.pending = Some(want);
        Some(match &self.result {
            Some(r) if r.req.generation == want.generation && r.req.layer == want.layer => {
                (want, r.captured.clone(), r.w_o.clone())
            }
            _ => (want, trace.clone(), None),
        })
    }

    /// Store a result if it answers the latest request.
    pub fn receive(&mut self, e: Explained) -> bool {
        if self.pending == Some(e.req) {
            self.result = Some(e);
            true
        } else {
            false
        }
    }

    /// A new trace: forget everything computed for the old one.
    pub fn reset(&mut self) {
        self.pending = None;
        self.result = None;
    }

    /// The row-normalised value-weighted matrix of `head` when the mode is on and the result is for this
    /// generation and layer.
    pub fn grid(&self, generation: u64, layer: usize, head: usize) -> Option<ndarray::Array2<f32>> {
        let r = self.result.as_ref().filter(|r| {
            self.value_weighted && r.req.generation == generation && r.req.layer == layer
        })?;
        let vw = r.value_weighted.as_ref()?;
        (head < vw.dim().0).then(|| row_normalized(&vw.index_axis(Axis(0), head)))
    }

    /// The result when it is for `want` (the views show nothing stale).
    pub fn current(&self, want: Option<ExplainRequest>) -> Option<&Explained> {
        self.result.as_ref().filter(|r| Some(r.req) == want)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{self, TextbookConfig};
    use crate::trace::ForwardOptions;

    #[test]
    fn the_captured_layer_is_reused_and_stale_results_dropped() {
        let m = model::load(
            "textbook",
            &TextbookConfig {
                layers: 2,
                heads: 2,
                d_model: 8,
                d_ff: 16,
                ..Default::default()
            },
        )
        .unwrap();
        let t = Arc::new(
            model::run(m.as_ref(), "I love AI", None, &ForwardOptions::default()).unwrap(),
        );
        let mut st = ExplainState::default();
        let r1 = ExplainRequest {
            generation: 1,
            layer: 1,
            head: 0,
            query: 2,
            key: 1,
        };
        let (req, tr, w) = st.next(r1, &t).unwrap();
        assert!(w.is_none());
        assert!(st.next(r1, &t).is_none(), "not sent twice");
        let e = compute(m.as_ref(), tr, w, req);
        let w = e.weight.as_ref().unwrap();
        let att = t.layers[1].attention.as_ref().unwrap();
        assert!((w.weight - att[[0, 2, 1]]).abs() < 1e-6);
        assert!(st.receive(e));
        // The next request in the same layer carries the captured trace: no re-run.
        let r2 = ExplainRequest { head: 1, ..r1 };
        let (_, tr2, w2) = st.next(r2, &t).unwrap();
        assert!(tr2.captures.q(1).is_some() && w2.is_some());
        // A result for an older request is dropped.
        let old = compute(m.as_ref(), t.clone(), None, r1);
        assert!(!st.receive(old));
        st.value_weighted = true;
        let g = st.grid(1, 1, 0).unwrap();
        assert!((g.row(2).sum() - 1.0).abs() < 1e-5, "row-normalised");
        assert!(st.grid(2, 1, 0).is_none(), "another generation");
    }
}
