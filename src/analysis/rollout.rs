//! Attention rollout (Abnar & Zuidema, 2020): how much each token at layer l draws on each input token, following
//! attention through the residual connections.
//!
//! Per layer l: Ã_l = 0.5·mean_h(A_l) + 0.5·I, each row renormalised to sum to 1; R_0 = Ã_0, R_l = Ã_l · R_{l−1}.
//! R_l[i, j] is how much token i after layer l draws on input token j. Every row of every R_l sums to 1.

use ndarray::{Array2, ArrayView3, Axis};

/// Ã = 0.5·mean over heads of `att` `[heads, n, n]` + 0.5·I, rows renormalised (computed in f64).
pub fn residual_attention(att: &ArrayView3<f32>) -> Array2<f64> {
    let n = att.len_of(Axis(1));
    let heads = att.len_of(Axis(0)).max(1) as f64;
    let mut a = Array2::<f64>::zeros((n, n));
    for head in att.outer_iter() {
        a.zip_mut_with(&head, |x, &v| *x += v as f64);
    }
    a.mapv_inplace(|v| 0.5 * v / heads);
    for i in 0..n {
        a[[i, i]] += 0.5;
    }
    for mut row in a.rows_mut() {
        let s: f64 = row.sum();
        if s > 0.0 {
            row.mapv_inplace(|v| v / s);
        }
    }
    a
}

/// Incremental rollout: feed the layers' attention in order, read R_l after each.
#[derive(Debug, Clone, Default)]
pub struct Rollout {
    r: Option<Array2<f64>>,
}

impl Rollout {
    pub fn new() -> Self {
        Rollout { r: None }
    }
    /// Take layer l's attention `[heads, n, n]` and return R_l (float32, `[n, n]`).
    pub fn push(&mut self, att: &ArrayView3<f32>) -> Array2<f32> {
        let a = residual_attention(att);
        let r = match self.r.take() {
            None => a,
            Some(prev) if prev.dim() == a.dim() => a.dot(&prev),
            // A different token count restarts the product (a caller mixing inputs); never panics.
            Some(_) => a,
        };
        let out = r.mapv(|v| v as f32);
        self.r = Some(r);
        out
    }
}

/// R_0..R_{L−1} for the layers' attention matrices, in order.
pub fn rollout<'a>(layers: impl IntoIterator<Item = ArrayView3<'a, f32>>) -> Vec<Array2<f32>> {
    let mut r = Rollout::new();
    layers.into_iter().map(|a| r.push(&a)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Array3, arr2};

    #[test]
    fn identity_attention_rolls_out_to_identity() {
        let mut a = Array3::<f32>::zeros((2, 3, 3));
        for h in 0..2 {
            for i in 0..3 {
                a[[h, i, i]] = 1.0;
            }
        }
        let r = rollout([a.view(), a.view()]);
        assert_eq!(r.len(), 2);
        assert_eq!(r[1], Array2::<f32>::eye(3));
    }

    #[test]
    fn two_layers_multiply_in_order() {
        // One head attending fully to token 0: Ã = [[1,0],[0.5,0.5]]; R_1 = Ã·Ã = [[1,0],[0.75,0.25]].
        let a = arr2(&[[1.0f32, 0.0], [1.0, 0.0]]).insert_axis(Axis(0));
        let r = rollout([a.view(), a.view()]);
        assert_eq!(r[0], arr2(&[[1.0f32, 0.0], [0.5, 0.5]]));
        assert_eq!(r[1], arr2(&[[1.0f32, 0.0], [0.75, 0.25]]));
        for row in r[1].rows() {
            assert!((row.sum() - 1.0).abs() < 1e-6);
        }
    }

    #[test]
    fn rows_are_renormalised_when_attention_rows_do_not_sum_to_one() {
        // A zero row (e.g. an ablated pattern): Ã's row is 0.5 on the diagonal, renormalised to 1.
        let a = Array3::<f32>::zeros((1, 2, 2));
        assert_eq!(rollout([a.view()])[0], Array2::<f32>::eye(2));
    }
}
