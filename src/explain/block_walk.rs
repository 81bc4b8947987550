//! One token through one block: resid_pre → (pre-LN: norm) → attention (the heads' contributions, projected) →
//! + residual → resid_mid → norm → MLP → + residual → resid_post (post-LN models: the norms after the sums).

use super::{head_slice, norm, project, top_abs};
use crate::{Error, Result};
use ndarray::{Array1, ArrayView1, ArrayView2};
use serde::Serialize;

/// How many neurons the walk lists.
pub const TOP_NEURONS: usize = 8;

/// One arrow of the walk: a vector and its norm.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Step {
    pub label: String,
    pub values: Vec<f32>,
    pub norm: f32,
}

impl Step {
    fn new(label: impl Into<String>, values: Vec<f32>) -> Self {
        Step {
            label: label.into(),
            norm: norm(&values),
            values,
        }
    }
}

/// One neuron of the MLP for the token.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Neuron {
    pub index: usize,
    /// The first projection (gated MLPs: the gate's pre-activation).
    pub pre: f32,
    /// Gated MLPs: the up projection.
    pub up: Option<f32>,
    /// The activation (gated: act(gate) · up), what the down projection reads.
    pub post: f32,
}

/// The MLP of one token.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MlpWalk {
    pub d_ff: usize,
    /// `relu`, `gelu`, `silu`...
    pub activation: String,
    pub gated: bool,
    pub pre_norm: f32,
    pub post_norm: f32,
    /// ReLU: the share of neurons that are exactly 0 after the activation.
    pub zero_share: Option<f32>,
    /// The neurons with the largest |activation|, largest first.
    pub top: Vec<Neuron>,
}

/// A decoder block's cross-attention sub-layer (between `resid_mid` and the MLP) for one token.
pub struct CrossInputs<'a> {
    /// Pre-LN: the normalised stream the cross-attention's queries read.
    pub ln: Option<ArrayView1<'a, f32>>,
    /// The cross-attention sub-layer's output (with the projection's bias).
    pub out: ArrayView1<'a, f32>,
    /// The stream after it, what the MLP reads.
    pub resid_cross: ArrayView1<'a, f32>,
}

/// What one block received for one token (rows of the block's captures).
pub struct BlockInputs<'a> {
    pub layer: usize,
    pub token: usize,
    /// Post-LN (paper, BERT): the norms come after the residual sums; pre-LN (GPT-2, Llama): before the sub-layers.
    pub post_ln: bool,
    pub resid_pre: ArrayView1<'a, f32>,
    /// Pre-LN: the normalised stream the attention reads.
    pub ln_attn: Option<ArrayView1<'a, f32>>,
    /// The heads' outputs for the token `[heads, d_head]` (before the output projection).
    pub z: ArrayView2<'a, f32>,
    /// The output projection `[d_model, heads · d_head]`.
    pub w_o: ArrayView2<'a, f32>,
    /// The attention sub-layer's output (with the projection's bias).
    pub attn_out: ArrayView1<'a, f32>,
    pub resid_mid: ArrayView1<'a, f32>,
    /// Pre-LN: the normalised stream the MLP reads.
    pub ln_mlp: Option<ArrayView1<'a, f32>>,
    pub mlp_pre: ArrayView1<'a, f32>,
    pub mlp_pre_linear: Option<ArrayView1<'a, f32>>,
    pub mlp_post: ArrayView1<'a, f32>,
    pub activation: &'a str,
    pub mlp_out: ArrayView1<'a, f32>,
    pub resid_post: ArrayView1<'a, f32>,
    /// The norm names (`LayerNorm`, `RMSNorm`).
    pub norm_name: &'a str,
    /// Decoders of encoder–decoders: the cross-attention sub-layer.
    pub cross: Option<CrossInputs<'a>>,
    /// `z` and `w_o` are the cross-attention's heads: their sum is compared with `cross.out`, not `attn_out`.
    pub heads_cross: bool,
}

/// One token through one block.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BlockWalk {
    pub layer: usize,
    pub token: usize,
    pub post_ln: bool,
    /// The arrows in order: resid_pre, [norm], attention output, [x + attn], resid_mid, [norm], MLP output,
    /// [x + mlp], resid_post.
    pub steps: Vec<Step>,
    /// Per head: ‖W_O^h z_h‖, what each head writes.
    pub head_norms: Vec<f32>,
    /// ‖Σ_h W_O^h z_h + b_O − attn_out‖: the heads' contributions add up to the attention output.
    pub heads_residual: f32,
    pub mlp: MlpWalk,
}

fn add(a: &ArrayView1<f32>, b: &ArrayView1<f32>) -> Vec<f32> {
    a.iter().zip(b.iter()).map(|(x, y)| x + y).collect()
}

impl BlockWalk {
    pub fn compute(inp: &BlockInputs) -> Result<Self> {
        let (heads, d_head) = inp.z.dim();
        let d_model = inp.resid_pre.len();
        let heads_out = match (&inp.cross, inp.heads_cross) {
            (Some(c), true) => c.out,
            (None, true) => {
                return Err(Error::Input(
                    "block walk: cross-attention heads without a cross-attention sub-layer".into(),
                ));
            }
            _ => inp.attn_out,
        };
        if inp.w_o.dim() != (d_model, heads * d_head) || heads_out.len() != d_model {
            return Err(Error::Input(format!(
                "block walk: output projection {:?} for {heads} heads × {d_head} into {d_model}",
                inp.w_o.shape()
            )));
        }
        let mut steps = vec![Step::new("resid_pre", inp.resid_pre.to_vec())];
        let mut heads_sum = Array1::<f32>::zeros(d_model);
        let mut head_norms = Vec::with_capacity(heads);
        for h in 0..heads {
            let o = project(&head_slice(&inp.w_o, h, d_head), &inp.z.row(h));
            head_norms.push(norm(&o.to_vec()));
            heads_sum += &o;
        }
        // The projection's bias is what remains of attn_out once every head's contribution is taken away; report
        // how far the sum is from the output only when the bias cannot explain it (it is the same for every token,
        // so here it is simply the difference).
        let diff: Vec<f32> = heads_out
            .iter()
            .zip(heads_sum.iter())
            .map(|(a, b)| a - b)
            .collect();
        let heads_residual = norm(&diff);
        sublayer_steps(
            &mut steps,
            inp,
            inp.ln_attn,
            ("resid_pre", &inp.resid_pre),
            ("attention", &inp.attn_out),
            ("resid_mid", &inp.resid_mid),
        );
        let mut mlp_from = ("resid_mid", &inp.resid_mid);
        if let Some(c) = &inp.cross {
            sublayer_steps(
                &mut steps,
                inp,
                c.ln,
                mlp_from,
                ("cross-attention", &c.out),
                ("resid_cross", &c.resid_cross),
            );
            mlp_from = ("resid_cross", &c.resid_cross);
        }
        sublayer_steps(
            &mut steps,
            inp,
            inp.ln_mlp,
            mlp_from,
            ("MLP", &inp.mlp_out),
            ("resid_post", &inp.resid_post),
        );
        let post = inp.mlp_post.to_vec();
        let d_ff = post.len();
        let gated = inp.mlp_pre_linear.is_some();
        let zero_share = (inp.activation == "relu" && d_ff > 0)
            .then(|| post.iter().filter(|x| **x == 0.0).count() as f32 / d_ff as f32);
        let top = top_abs(&post, TOP_NEURONS)
            .into_iter()
            .map(|i| Neuron {
                index: i,
                pre: inp.mlp_pre[i],
                up: inp.mlp_pre_linear.map(|u| u[i]),
                post: post[i],
            })
            .collect();
        Ok(BlockWalk {
            layer: inp.layer,
            token: inp.token,
            post_ln: inp.post_ln,
            steps,
            head_norms,
            heads_residual,
            mlp: MlpWalk {
                d_ff,
                activation: inp.activation.to_string(),
                gated,
                pre_norm: norm(&inp.mlp_pre.to_vec()),
                post_norm: norm(&post),
                zero_share,
                top,
            },
        })
    }
}

/// The steps of one sub-layer: its input norm (pre-LN), its output, then the residual addition: post-LN shows the
/// sum, then the norm that makes the next stream; pre-LN's sum is the next stream itself.
fn sublayer_steps(
    steps: &mut Vec<Step>,
    inp: &BlockInputs,
    ln: Option<ArrayView1<f32>>,
    (from, x): (&str, &ArrayView1<f32>),
    (what, update): (&str, &ArrayView1<f32>),
    (to, out): (&str, &ArrayView1<f32>),
) {
    if let Some(ln) = ln {
        steps.push(Step::new(inp.norm_name, ln.to_vec()));
    }
    steps.push(Step::new(format!("{what} output"), update.to_vec()));
    if inp.post_ln {
        steps.push(Step::new(format!("{from} + {what}"), add(x, update)));
        steps.push(Step::new(format!("{} → {to}", inp.norm_name), out.to_vec()));
    } else {
        steps.push(Step::new(format!("{to} = {from} + {what}"), out.to_vec()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn a_post_ln_walk_by_hand() {
        let w = crate::explain::examples::post_ln_walk();
        let labels: Vec<&str> = w.steps.iter().map(|s| s.label.as_str()).collect();
        assert_eq!(
            labels,
            [
                "resid_pre",
                "attention output",
                "resid_pre + attention",
                "LayerNorm → resid_mid",
                "MLP output",
                "resid_mid + MLP",
                "LayerNorm → resid_post"
            ]
        );
        assert_eq!(w.steps[2].values, vec![5.0, 5.0]);
        assert_eq!(w.steps[3].norm, 1.0);
        assert_eq!(w.head_norms, vec![3.0, 4.0]);
        assert!(
            (w.heads_residual - 2f32.sqrt()).abs() < 1e-6,
            "the bias (1, 1)"
        );
        assert_eq!(w.mlp.zero_share, Some(0.5));
        assert_eq!(w.mlp.top[0].index, 1);
        assert_eq!(w.mlp.top[0].pre, 2.0);
        assert_eq!(w.mlp.top.len(), 4);
        assert!(!w.mlp.gated);
    }

    #[test]
    fn a_pre_ln_gated_walk() {
        let x = array![1.0f32, 1.0];
        let ln = array![0.5f32, 0.5];
        let z = array![[1.0f32, 1.0]];
        let w_o = array![[1.0f32, 0.0], [0.0, 1.0]];
        let attn = array![1.0f32, 1.0];
        let mid = array![2.0f32, 2.0];
        let gate = array![1.0f32, -2.0];
        let up = array![3.0f32, 1.0];
        let post = array![2.19f32, -0.24];
        let out = array![3.0f32, 2.0];
        let mlp_out = array![1.0f32, 0.0];
        let w = BlockWalk::compute(&BlockInputs {
            layer: 0,
            token: 0,
            post_ln: false,
            resid_pre: x.view(),
            ln_attn: Some(ln.view()),
            z: z.view(),
            w_o: w_o.view(),
            attn_out: attn.view(),
            resid_mid: mid.view(),
            ln_mlp: Some(ln.view()),
            mlp_pre: gate.view(),
            mlp_pre_linear: Some(up.view()),
            mlp_post: post.view(),
            activation: "silu",
            mlp_out: mlp_out.view(),
            resid_post: out.view(),
            norm_name: "RMSNorm",
            cross: None,
            heads_cross: false,
        })
        .unwrap();
        assert_eq!(w.steps.len(), 7);
        assert_eq!(w.steps[1].label, "RMSNorm");
        assert_eq!(w.steps[6].label, "resid_post = resid_mid + MLP");
        assert_eq!(w.heads_residual, 0.0);
        assert!(w.mlp.gated && w.mlp.zero_share.is_none());
        assert_eq!(w.mlp.top[0].up, Some(3.0));
        // A projection that does not fit is an error.
        let bad = array![[1.0f32]];
        assert!(
            BlockWalk::compute(&BlockInputs {
                layer: 0,
                token: 0,
                post_ln: false,
                resid_pre: x.view(),
                ln_attn: None,
                z: z.view(),
                w_o: bad.view(),
                attn_out: attn.view(),
                resid_mid: mid.view(),
                ln_mlp: None,
                mlp_pre: gate.view(),
                mlp_pre_linear: None,
                mlp_post: post.view(),
                activation: "gelu",
                mlp_out: mlp_out.view(),
                resid_post: out.view(),
                norm_name: "LayerNorm",
                cross: None,
                heads_cross: false,
            })
            .is_err()
        );
    }
}
