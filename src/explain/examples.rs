//! Hand-checkable examples of each explanation, shared by the computations' tests and the views' tests (one
//! definition of each example, so the numbers a view shows are the numbers checked by hand).

use super::block_walk::{BlockInputs, BlockWalk};
use super::embedding::{EmbeddingInputs, EmbeddingParts, PositionalInput};
use super::{HeadInputs, RotaryInputs, WeightComputation, causal_mask};
use ndarray::{Array1, array};

/// Query 0's weight on key 1 in head 0 with no mask, no output projection and no rotation.
pub fn plain_head(
    q: ndarray::ArrayView1<f32>,
    k: ndarray::ArrayView2<f32>,
    v: ndarray::ArrayView2<f32>,
    scale: f32,
    bias: Option<ndarray::ArrayView1<f32>>,
) -> WeightComputation {
    let mask = vec![false; k.nrows()];
    WeightComputation::compute(&HeadInputs {
        query: 0,
        key: Some(1),
        head: 0,
        kv_head: None,
        q,
        k,
        v,
        scale,
        bias,
        mask: &mask,
        w_o: None,
        rotary: None,
    })
    .expect("the example is well formed")
}

/// Query 1 of a decoder head (key 2 masked): q = (1, 2); keys (1, 0), (0, 1), (1, 1); values (2, 0), (0, 4),
/// (10, 10); scale ½; W_O^h a 3 × 2 map. With `rotary`, the pre-rotation q, k and their angles are added. `f`
/// gets the inputs (they borrow arrays that live only during the call).
pub fn with_head_inputs<R>(
    key: Option<usize>,
    rotary: bool,
    f: impl FnOnce(HeadInputs<'_>) -> R,
) -> R {
    let q = array![1.0f32, 2.0];
    let k = array![[1.0f32, 0.0], [0.0, 1.0], [1.0, 1.0]];
    let v = array![[2.0f32, 0.0], [0.0, 4.0], [10.0, 10.0]];
    let w_o = array![[1.0f32, 0.0], [0.0, 1.0], [1.0, 1.0]];
    let (qp, kp, aq, ak) = (
        array![2.0f32, 1.0],
        array![1.0f32, 1.0],
        array![1.0f32],
        array![0.5f32],
    );
    let mask = causal_mask(1, 3, true);
    f(HeadInputs {
        query: 1,
        key,
        head: 3,
        kv_head: Some(1),
        q: q.view(),
        k: k.view(),
        v: v.view(),
        scale: 0.5,
        bias: None,
        mask: &mask,
        w_o: Some(w_o.view()),
        rotary: rotary.then(|| RotaryInputs {
            q_pre: qp.view(),
            k_pre: kp.view(),
            angles_q: aq.view(),
            angles_k: ak.view(),
        }),
    })
}

/// The weight computation of [`with_head_inputs`]' head.
pub fn weight(key: Option<usize>, rotary: bool) -> WeightComputation {
    with_head_inputs(key, rotary, |inp| {
        WeightComputation::compute(&inp).expect("the example is well formed")
    })
}

/// A post-LN block on d_model 2 with two heads of 1 dim: W_O = I, z = (3, 4), so the heads write (3, 0) and (0, 4);
/// attn_out adds a bias (1, 1): (4, 5). A ReLU MLP of 4 neurons, two of them 0.
pub fn post_ln_walk() -> BlockWalk {
    let x = array![1.0f32, 0.0];
    let z = array![[3.0f32], [4.0]];
    let w_o = array![[1.0f32, 0.0], [0.0, 1.0]];
    let attn = array![4.0f32, 5.0];
    let mid = array![0.6f32, 0.8];
    let pre = array![-1.0f32, 2.0, -3.0, 0.5];
    let post = array![0.0f32, 2.0, 0.0, 0.5];
    let mlp_out = array![0.4f32, 0.2];
    let out = array![1.0f32, 0.0];
    BlockWalk::compute(&BlockInputs {
        layer: 2,
        token: 1,
        post_ln: true,
        resid_pre: x.view(),
        ln_attn: None,
        z: z.view(),
        w_o: w_o.view(),
        attn_out: attn.view(),
        resid_mid: mid.view(),
        ln_mlp: None,
        mlp_pre: pre.view(),
        mlp_pre_linear: None,
        mlp_post: post.view(),
        activation: "relu",
        mlp_out: mlp_out.view(),
        resid_post: out.view(),
        norm_name: "LayerNorm",
        cross: None,
        heads_cross: false,
    })
    .expect("the example is well formed")
}

/// The textbook embedding of `token`: (1, 0, 0, 1) · √4 plus the sinusoidal vector (0, 1, 0, 1) = (2, 1, 0, 3).
pub fn textbook_embedding(token: usize) -> EmbeddingParts {
    let tok = array![1.0f32, 0.0, 0.0, 1.0];
    let pos = array![0.0f32, 1.0, 0.0, 1.0];
    EmbeddingParts::compute(&EmbeddingInputs {
        token,
        token_embedding: tok.view(),
        scale: Some(2.0),
        positional: PositionalInput::Added {
            kind: "sinusoidal",
            vector: pos.view(),
        },
        segment: None,
        norm: None,
    })
}

/// A rotary model's embedding of token 0: the token vector alone (nothing is added before attention).
pub fn rotary_embedding(token_embedding: Vec<f32>) -> EmbeddingParts {
    let tok = Array1::from(token_embedding);
    EmbeddingParts::compute(&EmbeddingInputs {
        token: 0,
        token_embedding: tok.view(),
        scale: None,
        positional: PositionalInput::Rotary,
        segment: None,
        norm: None,
    })
}
