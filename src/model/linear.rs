//! A linear map `y = x·Wᵀ + b`, the building block of every projection (attention, MLP, LM head inputs).

use crate::Result;
use crate::numeric::Matrix;
use crate::numeric::packed::PackedMatrix;
use crate::weights::source::Vb;
use ndarray::{Array1, Array2, ArrayView2};

/// `y = x·Wᵀ + b` with `W` `[out, in]` packed once.
#[derive(Debug)]
pub struct Linear {
    pub w: Matrix,
    pub b: Option<Array1<f32>>,
}

impl Linear {
    pub fn new(w: PackedMatrix, b: Option<Array1<f32>>) -> Self {
        Linear {
            w: Matrix::Packed(w),
            b,
        }
    }
    /// Any [`Matrix`] (e.g. GGUF blocks kept quantized).
    pub fn from_matrix(w: Matrix, b: Option<Array1<f32>>) -> Self {
        Linear { w, b }
    }
    /// `name.weight` `[out, in]` and, when `bias`, `name.bias` `[out]`.
    pub fn load(vb: &Vb, name: &str, out: usize, inp: usize, bias: bool) -> Result<Self> {
        let w = vb.matrix(&format!("{name}.weight"), out, inp)?;
        let b = if bias {
            Some(vb.vector(&format!("{name}.bias"), out)?)
        } else {
            None
        };
        Ok(Linear { w, b })
    }
    pub fn forward(&self, x: &ArrayView2<f32>) -> Array2<f32> {
        let y = self.w.matmul_t(x);
        match &self.b {
            Some(b) => y + b,
            None => y,
        }
    }
    /// `[out, in]`.
    pub fn dim(&self) -> (usize, usize) {
        self.w.dim()
    }
}
