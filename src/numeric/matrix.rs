//! One weight-matrix type for the layers: f32 packed once ([`PackedMatrix`]) or kept in its file's block format
//! ([`QuantMatrix`]), both multiplied as `x · Wᵀ`.

use super::packed::PackedMatrix;
use super::quant::QuantMatrix;
use ndarray::{Array2, ArrayView2};

/// A weight `[out, in]` (nn.Linear layout).
#[derive(Debug, Clone)]
pub enum Matrix {
    Packed(PackedMatrix),
    Quant(QuantMatrix),
}

impl Matrix {
    /// `[out, in]`.
    pub fn dim(&self) -> (usize, usize) {
        match self {
            Matrix::Packed(p) => p.dim(),
            Matrix::Quant(q) => q.dim(),
        }
    }

    /// `x · Wᵀ`, `[n, out]`. Panics if `x` does not have `in` columns (shapes are checked at load).
    pub fn matmul_t(&self, x: &ArrayView2<f32>) -> Array2<f32> {
        match self {
            Matrix::Packed(p) => p.matmul_t(x),
            Matrix::Quant(q) => q.matmul_t(x),
        }
    }

    /// The weights as f32 `[out, in]` (for explanations, e.g. per-head slices of an output projection).
    pub fn to_f32(&self) -> Array2<f32> {
        match self {
            Matrix::Packed(p) => p.to_f32(),
            Matrix::Quant(q) => q.to_f32(),
        }
    }

    /// Row `i` (`[in]`) as f32; `None` out of range.
    pub fn row(&self, i: usize) -> Option<ndarray::Array1<f32>> {
        match self {
            Matrix::Packed(p) => p.row(i),
            Matrix::Quant(q) => (i < q.dim().0).then(|| {
                let mut out = vec![0f32; q.dim().1];
                q.decode_row(i, &mut out);
                ndarray::Array1::from(out)
            }),
        }
    }

    /// Bytes the weights occupy in memory (for a quantized matrix: shared with the mapped file).
    pub fn n_bytes(&self) -> usize {
        match self {
            Matrix::Packed(p) => p.n_bytes(),
            Matrix::Quant(q) => q.n_bytes(),
        }
    }
}

impl From<PackedMatrix> for Matrix {
    fn from(p: PackedMatrix) -> Self {
        Matrix::Packed(p)
    }
}

impl From<QuantMatrix> for Matrix {
    fn from(q: QuantMatrix) -> Self {
        Matrix::Quant(q)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::numeric::quant::{GgmlType, SharedBytes};

    #[test]
    fn both_kinds_multiply_the_same_weights() {
        let w = Array2::from_shape_fn((20, 32), |(i, j)| {
            ((i * 7 + j * 3) % 11) as f32 * 0.25 - 1.0
        });
        let bytes: Vec<u8> = w.iter().flat_map(|v| v.to_le_bytes()).collect();
        let q: Matrix = QuantMatrix::new(GgmlType::F32, 20, 32, SharedBytes::from_vec(bytes))
            .unwrap()
            .into();
        let p: Matrix = PackedMatrix::new(&w).into();
        assert_eq!(q.dim(), (20, 32));
        assert_eq!(p.to_f32(), w);
        assert_eq!(q.to_f32(), w);
        assert_eq!(q.n_bytes(), 20 * 32 * 4);
        let x = Array2::from_shape_fn((5, 32), |(i, j)| (i + j) as f32 * 0.1);
        let want = x.dot(&w.t());
        for m in [&p, &q] {
            let got = m.matmul_t(&x.view());
            for (a, b) in got.iter().zip(want.iter()) {
                assert!((a - b).abs() < 1e-4, "{a} vs {b}");
            }
        }
    }
}
