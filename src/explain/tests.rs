use super::*;
use ndarray::{Array3, array};

fn close(a: f32, b: f32) -> bool {
    (a - b).abs() < 1e-5
}

#[test]
fn a_weight_step_by_step_on_hand_checkable_numbers() {
    // q = (1, 2); keys (1, 0), (0, 1), (1, 1): q·k = 1, 2, 3; scale ½: 0.5, 1.0, 1.5. Query 1 of a decoder: key 2
    // is masked. exp(x − 1.0) = e^−½, 1, 0; sum 1.60653; weights 0.37754, 0.62246, 0.
    super::examples::with_head_inputs(None, false, |inp| {
        let c = WeightComputation::compute(&inp).unwrap();
        assert_eq!(c.key, 1, "the heaviest key");
        assert_eq!(c.qk, vec![0.0, 2.0]);
        assert_eq!(c.top_dims, vec![1, 0]);
        assert_eq!((c.score, c.scale, c.scaled), (2.0, 0.5, 1.0));
        assert!(!c.masked);
        assert_eq!(c.row_scaled, vec![Some(0.5), Some(1.0), None]);
        assert_eq!(c.row_max, 1.0);
        assert!(close(c.row_exp[0], (-0.5f32).exp()) && c.row_exp[1] == 1.0 && c.row_exp[2] == 0.0);
        assert!(close(c.exp_sum, 1.606_531));
        assert!(close(c.weight, 0.622_459));
        assert!(close(c.row_weights[0], 0.377_541) && c.row_weights[2] == 0.0);
        assert_eq!(c.v, vec![0.0, 4.0]);
        assert!(close(c.weighted_v[1], 4.0 * 0.622_459));
        // z = .37754·(2, 0) + .62246·(0, 4); the masked key's (10, 10) contributes nothing.
        assert!(close(c.z[0], 0.755_082) && close(c.z[1], 2.489_836));
        let ho = c.head_out.as_ref().unwrap();
        assert!(close(ho[2], 0.755_082 + 2.489_836));
        assert!(close(c.head_out_norm.unwrap(), norm(ho)));
        assert_eq!(c.kv_head, Some(1));

        // The masked cell: weight exactly 0, marked masked, its raw score still shown.
        let c2 = WeightComputation::compute(&HeadInputs {
            key: Some(2),
            ..inp
        })
        .unwrap();
        assert!(c2.masked);
        assert_eq!((c2.score, c2.weight, c2.exp), (3.0, 0.0, 0.0));
        assert_eq!(
            c2.z, c.z,
            "the row's output does not depend on the key explained"
        );

        // Out of range and mismatched shapes are errors, not panics.
        assert!(
            WeightComputation::compute(&HeadInputs {
                key: Some(3),
                ..inp
            })
            .is_err()
        );
        assert!(
            WeightComputation::compute(&HeadInputs {
                mask: &[false],
                ..inp
            })
            .is_err()
        );
    });
}

#[test]
fn a_score_bias_is_added_after_the_scale() {
    let q = array![1.0f32];
    let k = array![[1.0f32], [1.0]];
    let v = array![[1.0f32], [3.0]];
    let bias = array![0.0f32, 2.0f32.ln()];
    let c =
        crate::explain::examples::plain_head(q.view(), k.view(), v.view(), 1.0, Some(bias.view()));
    assert_eq!(c.bias, Some(2.0f32.ln()));
    // Equal scores, the bias doubles key 1's exp: weights ⅓, ⅔.
    assert!(close(c.weight, 2.0 / 3.0));
    assert!(close(c.z[0], 1.0 / 3.0 + 2.0));
    assert!(c.head_out.is_none());
}

#[test]
fn value_weighted_norms_by_hand() {
    // Two heads sharing one KV head (GQA), d_head 1, d_model 2. W_O^0 = (3, 4)ᵀ (‖·‖ = 5 per unit v),
    // W_O^1 = (1, 0)ᵀ. v = (1, −2) for keys 0, 1.
    let pattern =
        Array3::from_shape_vec((2, 2, 2), vec![1.0, 0.0, 0.5, 0.5, 1.0, 0.0, 0.25, 0.75]).unwrap();
    let v = Array3::from_shape_vec((1, 2, 1), vec![1.0f32, -2.0]).unwrap();
    let w_o = array![[3.0f32, 1.0], [4.0, 0.0]];
    let vw = value_weighted(&pattern.view(), &v.view(), &w_o.view()).unwrap();
    assert_eq!(vw[[0, 0, 0]], 5.0);
    assert_eq!(vw[[0, 1, 0]], 2.5);
    assert_eq!(vw[[0, 1, 1]], 5.0, "0.5 · ‖(3, 4)·(−2)‖ = 0.5 · 10");
    assert_eq!(vw[[1, 1, 0]], 0.25);
    assert_eq!(vw[[1, 1, 1]], 1.5);
    let rn = row_normalized(&vw.index_axis(ndarray::Axis(0), 0));
    assert!(close(rn[[1, 0]], 1.0 / 3.0) && close(rn[[1, 1]], 2.0 / 3.0));
    // A projection of the wrong width is an error.
    let bad = array![[1.0f32], [1.0]];
    assert!(value_weighted(&pattern.view(), &v.view(), &bad.view()).is_err());
    let z = array![[1.0f32], [2.0]];
    assert_eq!(
        head_out_norms(&z.view(), &w_o.view()).unwrap(),
        vec![5.0, 2.0]
    );
}

#[test]
fn top_dims_by_magnitude() {
    assert_eq!(top_abs(&[0.1, -3.0, 2.0, 0.0], 2), vec![1, 2]);
    assert_eq!(top_abs(&[1.0, 1.0], 5), vec![0, 1]);
}
