//! What every `x · Wᵀ` kernel checks and prepares first: `x` has `W`'s `k` columns, an empty product is zeros, and
//! the rows are contiguous.

use ndarray::{Array2, ArrayView2, CowArray, Ix2};

/// `x` as contiguous rows for a product with a `[m, k]` matrix, or the `[n, m]` zeros of an empty product. Panics
/// when `x` does not have `k` columns (a programming error: shapes are checked at load); `what` names the kernel.
pub fn rows_for<'a>(
    what: &str,
    x: &'a ArrayView2<'a, f32>,
    (m, k): (usize, usize),
) -> Result<CowArray<'a, f32, Ix2>, Array2<f32>> {
    let (n, xk) = x.dim();
    assert_eq!(xk, k, "{what}: x has {xk} columns, W has {k}");
    if n == 0 || m == 0 {
        return Err(Array2::zeros((n, m)));
    }
    Ok(x.as_standard_layout())
}
