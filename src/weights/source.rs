//! One way to read weights by name from safetensors or GGUF, with name prefixes and shape checks (like candle's
//! `VarBuilder::pp`). Architectures ask a [`Vb`] for `"encoder.layer.3.attention.self.query.weight"` as
//! `vb.pp("encoder.layer").pp(3).pp("attention.self.query").matrix("weight", d, d)`; a missing tensor or a wrong
//! shape is an error naming the file, the tensor, the expected shape and what it is for.
//!
//! Layouts: every matrix is returned `[out, in]` (nn.Linear). GGUF stores `[ne0 = in, ne1 = out]`, which the reader
//! already returns row-major as `[out, in]`; safetensors Conv1D weights (GPT-2) are stored `[in, out]` and read with
//! [`Vb::matrix_t`], a transposed view without a copy.

use super::Gguf;
use super::safetensors::{Matrix, SafeTensors};
use crate::numeric::Matrix as Weight;
use crate::numeric::packed::PackedMatrix;
use crate::numeric::quant::QuantMatrix;
use crate::{Error, Result};
use ndarray::{Array1, Array2, ArrayView2, Ix1, Ix2};
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

/// A 2-D table: a view into a memory-mapped file, or values converted at load.
pub enum Table {
    Mapped(Matrix),
    Owned(Array2<f32>),
}

impl Table {
    pub fn view(&self) -> ArrayView2<'_, f32> {
        match self {
            Table::Mapped(m) => m.view(),
            Table::Owned(a) => a.view(),
        }
    }
    pub fn nrows(&self) -> usize {
        self.view().nrows()
    }
    pub fn ncols(&self) -> usize {
        self.view().ncols()
    }
}

impl std::fmt::Debug for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Table {:?}", self.view().dim())
    }
}

/// A weight file that tensors can be read from by name.
pub trait TensorSource: Sync {
    fn file_name(&self) -> &str;
    fn contains(&self, name: &str) -> bool;
    /// The tensor as `[rows, cols]`; `transposed` reads a `[cols, rows]` tensor as its transpose.
    fn table(&self, name: &str, rows: usize, cols: usize, transposed: bool) -> Result<Table>;
    fn vector(&self, name: &str, n: usize) -> Result<Array1<f32>>;
    /// A weight matrix `[rows, cols]` for `x · Wᵀ`: by default the f32 table packed once; GGUF keeps its blocks.
    fn matrix(&self, name: &str, rows: usize, cols: usize) -> Result<Weight> {
        packed(self, name, rows, cols)
    }
    /// An F16/BF16 matrix `[rows, cols]` kept in its dtype, or `None` when the tensor is stored otherwise;
    /// `transposed` reads a `[cols, rows]` tensor as its transpose.
    fn half(&self, _name: &str, _shape: (usize, usize), _t: bool) -> Result<Option<QuantMatrix>> {
        Ok(None)
    }
    /// Elements and storage type of a tensor (for parameter counts and notes).
    fn describe(&self, name: &str) -> Option<(u64, String)>;
}

/// A matrix read as an f32 table and packed once for the matrix kernel.
fn packed(
    src: &(impl TensorSource + ?Sized),
    name: &str,
    rows: usize,
    cols: usize,
) -> Result<Weight> {
    Ok(Weight::Packed(PackedMatrix::from_view(
        &src.table(name, rows, cols, false)?.view(),
    )))
}

impl TensorSource for SafeTensors {
    fn file_name(&self) -> &str {
        self.name()
    }
    fn contains(&self, name: &str) -> bool {
        SafeTensors::contains(self, name)
    }
    fn table(&self, name: &str, rows: usize, cols: usize, transposed: bool) -> Result<Table> {
        Ok(Table::Mapped(if transposed {
            self.matrix_transposed(name, rows, cols)?
        } else {
            self.matrix(name, rows, cols)?
        }))
    }
    fn vector(&self, name: &str, n: usize) -> Result<Array1<f32>> {
        Ok(SafeTensors::vector(self, name, n)?.to_owned())
    }
    fn half(
        &self,
        name: &str,
        (rows, cols): (usize, usize),
        t: bool,
    ) -> Result<Option<QuantMatrix>> {
        if t {
            self.half_matrix_transposed(name, rows, cols)
        } else {
            self.half_matrix(name, rows, cols)
        }
    }
    /// F16/BF16 matrices stay in their dtype ([`SafeTensors::half_matrix`]); F32 ones are packed once.
    fn matrix(&self, name: &str, rows: usize, cols: usize) -> Result<Weight> {
        match self.half_matrix(name, rows, cols)? {
            Some(q) => Ok(Weight::Quant(q)),
            None => Ok(packed(self, name, rows, cols)?),
        }
    }
    fn describe(&self, name: &str) -> Option<(u64, String)> {
        self.info(name)
            .map(|t| (t.numel() as u64, t.dtype.name().to_string()))
    }
}

impl Gguf {
    fn checked(&self, name: &str, want: &[usize]) -> Result<&super::TensorInfo> {
        let t = self.tensor(name).ok_or_else(|| {
            Error::tensor(
                self.file_name(),
                name,
                format!("missing (expected shape {want:?})"),
            )
        })?;
        if t.shape() != want {
            return Err(Error::tensor(
                self.file_name(),
                name,
                format!(
                    "shape {:?} does not match the configuration: expected {want:?}",
                    t.shape()
                ),
            ));
        }
        Ok(t)
    }
}

impl TensorSource for Gguf {
    fn file_name(&self) -> &str {
        Gguf::file_name(self)
    }
    fn contains(&self, name: &str) -> bool {
        self.tensor(name).is_some()
    }
    fn table(&self, name: &str, rows: usize, cols: usize, transposed: bool) -> Result<Table> {
        if transposed {
            return Err(Error::tensor(
                self.file_name(),
                name,
                "GGUF matrices are read as stored ([out, in]), never transposed",
            ));
        }
        let t = self.checked(name, &[rows, cols])?;
        let a = self
            .dequantize(t)?
            .into_dimensionality::<Ix2>()
            .map_err(|e| Error::tensor(self.file_name(), name, e.to_string()))?;
        Ok(Table::Owned(a))
    }
    /// GGUF matrices stay in the file's format, sharing the mapped bytes ([`crate::numeric::quant::QuantMatrix`]).
    fn matrix(&self, name: &str, rows: usize, cols: usize) -> Result<Weight> {
        let t = self.checked(name, &[rows, cols])?;
        Ok(Weight::Quant(self.quant_matrix(t)?))
    }
    fn vector(&self, name: &str, n: usize) -> Result<Array1<f32>> {
        let t = self.checked(name, &[n])?;
        self.dequantize(t)?
            .into_dimensionality::<Ix1>()
            .map_err(|e| Error::tensor(self.file_name(), name, e.to_string()))
    }
    fn describe(&self, name: &str) -> Option<(u64, String)> {
        self.tensor(name)
            .map(|t| (t.n_elements(), t.ty.to_string()))
    }
}

/// A [`TensorSource`] under a name prefix; records every tensor it handed out.
#[derive(Clone)]
pub struct Vb<'a> {
    src: &'a dyn TensorSource,
    prefix: String,
    used: Arc<Mutex<BTreeSet<String>>>,
}

impl<'a> Vb<'a> {
    pub fn new(src: &'a dyn TensorSource) -> Self {
        Vb {
            src,
            prefix: String::new(),
            used: Arc::default(),
        }
    }

    /// The same source under `prefix.` added to the current prefix (`pp` = "push prefix").
    pub fn pp(&self, part: impl std::fmt::Display) -> Vb<'a> {
        Vb {
            src: self.src,
            prefix: format!("{}{part}.", self.prefix),
            used: Arc::clone(&self.used),
        }
    }

    /// Under `prefix` when the file holds `probe` there (checkpoints saved with a task head prefix their base model:
    /// `bert.`, `transformer.`), else unchanged.
    pub fn pp_if_present(&self, prefix: &str, probe: &str) -> Vb<'a> {
        if self.contains(&format!("{prefix}.{probe}")) {
            self.pp(prefix)
        } else {
            self.clone()
        }
    }

    /// The full name of `name` under this prefix.
    pub fn name(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    pub fn file_name(&self) -> &str {
        self.src.file_name()
    }

    pub fn contains(&self, name: &str) -> bool {
        self.src.contains(&self.name(name))
    }

    fn mark(&self, full: &str) {
        if let Ok(mut u) = self.used.lock() {
            u.insert(full.to_string());
        }
    }

    /// A `[rows, cols]` matrix as stored.
    pub fn table(&self, name: &str, rows: usize, cols: usize) -> Result<Table> {
        let full = self.name(name);
        let t = self.src.table(&full, rows, cols, false)?;
        self.mark(&full);
        Ok(t)
    }

    /// A weight matrix `[rows, cols]` for `x · Wᵀ` (packed f32, or GGUF blocks kept as stored).
    pub fn matrix(&self, name: &str, rows: usize, cols: usize) -> Result<Weight> {
        let full = self.name(name);
        let m = self.src.matrix(&full, rows, cols)?;
        self.mark(&full);
        Ok(m)
    }

    /// A `[rows, cols]` F16/BF16 matrix kept in its dtype (embedding tables read a row at a time), or `None` when the
    /// tensor is stored in another dtype (then read it with [`Self::table`]). `transposed` reads a matrix stored
    /// `[cols, rows]` (Conv1D), `t`, into an owned, transposed half-precision copy.
    pub fn half(&self, name: &str, shape: (usize, usize), t: bool) -> Result<Option<QuantMatrix>> {
        let full = self.name(name);
        let h = self.src.half(&full, shape, t)?;
        if h.is_some() {
            self.mark(&full);
        }
        Ok(h)
    }

    /// A matrix stored `[cols, rows]` (Conv1D `[in, out]`), read as `[rows, cols]`.
    pub fn table_t(&self, name: &str, rows: usize, cols: usize) -> Result<Table> {
        let full = self.name(name);
        let t = self.src.table(&full, rows, cols, true)?;
        self.mark(&full);
        Ok(t)
    }

    pub fn vector(&self, name: &str, n: usize) -> Result<Array1<f32>> {
        let full = self.name(name);
        let v = self.src.vector(&full, n)?;
        self.mark(&full);
        Ok(v)
    }

    /// The tensors handed out so far (full names).
    pub fn used(&self) -> Vec<String> {
        self.used
            .lock()
            .map(|u| u.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Parameters and storage types of the tensors handed out: `(count, [("Q4_1", tensors), …])`, most common
    /// type first.
    pub fn used_summary(&self) -> (u64, Vec<(String, usize)>) {
        let mut n = 0u64;
        let mut types: std::collections::BTreeMap<String, usize> = Default::default();
        for name in self.used() {
            if let Some((count, ty)) = self.src.describe(&name) {
                n += count;
                *types.entry(ty).or_default() += 1;
            }
        }
        let mut types: Vec<(String, usize)> = types.into_iter().collect();
        types.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        (n, types)
    }
}
