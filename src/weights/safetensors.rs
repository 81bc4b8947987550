//! A memory-mapped reader for the safetensors format, written for `attn` (no external safetensors crate).
//!
//! Layout: an 8-byte little-endian header length `N`, `N` bytes of JSON mapping tensor names to
//! `{"dtype", "shape", "data_offsets": [begin, end]}` (offsets relative to the byte after the header; an optional
//! `__metadata__` entry holds strings), then the data. Everything is checked before any tensor is read: the header
//! length against the file size, every offset inside the data, `end - begin == elements × dtype size`, and no two
//! tensors overlapping. A bad file is an [`Error::Format`]/[`Error::Tensor`] naming the file and tensor, never a panic.
//!
//! F32 tensors that are 4-byte aligned are used in place (zero-copy views into the mapping, little-endian hosts).
//! F16 and BF16 weight matrices stay in their dtype, sharing the mapped bytes ([`SafeTensors::half_matrix`]: the
//! matrix kernel converts each value to f32 as it multiplies, giving the same f32 values a conversion at load gives);
//! other F16/BF16 tensors (vectors, tables read as views) are converted to f32 once at load (with the `half` crate).

use super::safetensors_header::parse_header;
pub use super::safetensors_header::{Dtype, MAX_HEADER, TensorInfo, f32_bytes, serialize};
use crate::numeric::quant::{GgmlType, QuantMatrix, SharedBytes};
use crate::{Error, Result};
use ndarray::{Array1, Array2, ArrayView1, ArrayView2};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

enum Backing {
    Mmap(memmap2::Mmap),
    Owned(Vec<u8>),
}

impl Backing {
    fn bytes(&self) -> &[u8] {
        match self {
            Backing::Mmap(m) => m,
            Backing::Owned(v) => v,
        }
    }
}

impl AsRef<[u8]> for Backing {
    fn as_ref(&self) -> &[u8] {
        self.bytes()
    }
}

/// An opened, validated safetensors file.
pub struct SafeTensors {
    name: String,
    data: Arc<Backing>,
    tensors: BTreeMap<String, TensorInfo>,
}

impl std::fmt::Debug for SafeTensors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SafeTensors")
            .field("name", &self.name)
            .field("tensors", &self.tensors.len())
            .finish()
    }
}

impl SafeTensors {
    /// Memory-map and validate a file.
    pub fn open(path: &Path) -> Result<Self> {
        let file = crate::fsutil::open_regular(path)?;
        // SAFETY: the mapping is read-only; as with every mmap-based reader, the file must not be truncated or
        // rewritten by another process while `attn` runs (model files are not edited in place).
        let mmap = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| Error::io(path, e))?;
        Self::from_backing(Backing::Mmap(mmap), path.display().to_string())
    }

    /// Validate a file already in memory; `name` is used in error messages.
    pub fn from_bytes(bytes: Vec<u8>, name: &str) -> Result<Self> {
        Self::from_backing(Backing::Owned(bytes), name.to_string())
    }

    fn from_backing(data: Backing, name: String) -> Result<Self> {
        let tensors = parse_header(data.bytes(), &name)?;
        Ok(SafeTensors {
            name,
            data: Arc::new(data),
            tensors,
        })
    }

    /// The file name used in errors.
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.tensors.keys().map(String::as_str)
    }

    pub fn contains(&self, name: &str) -> bool {
        self.tensors.contains_key(name)
    }

    pub fn info(&self, name: &str) -> Option<&TensorInfo> {
        self.tensors.get(name)
    }

    pub fn len(&self) -> usize {
        self.tensors.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tensors.is_empty()
    }

    fn err(&self, tensor: &str, msg: impl Into<String>) -> Error {
        Error::tensor(&self.name, tensor, msg)
    }

    /// Look a weight up by name and check its shape; returns its f32 data (in place when possible).
    pub fn weight(&self, name: &str, shape: &[usize]) -> Result<Weight> {
        let info = self.tensors.get(name).ok_or_else(|| {
            self.err(
                name,
                format!(
                    "missing (expected shape {shape:?}); the file has {} tensors",
                    self.len()
                ),
            )
        })?;
        if info.shape != shape {
            return Err(self.err(
                name,
                format!(
                    "has shape {:?}, expected {shape:?} from config.json",
                    info.shape
                ),
            ));
        }
        if !info.dtype.is_weight() {
            return Err(self.err(
                name,
                format!(
                    "has dtype {}; only F32, F16 and BF16 weights are supported",
                    info.dtype.name()
                ),
            ));
        }
        let raw = self
            .data
            .bytes()
            .get(info.start..info.end)
            .ok_or_else(|| self.err(name, "data out of bounds"))?;
        let numel = info.numel();
        if info.dtype == Dtype::F32 && cfg!(target_endian = "little") {
            // SAFETY: every bit pattern is a valid f32; `align_to` only returns a middle part that is aligned.
            let (pre, mid, post) = unsafe { raw.align_to::<f32>() };
            if pre.is_empty() && post.is_empty() && mid.len() == numel {
                return Ok(Weight {
                    store: Store::Mapped {
                        data: Arc::clone(&self.data),
                        start: info.start,
                        len: numel,
                    },
                });
            }
        }
        let values: Vec<f32> = match info.dtype {
            Dtype::F32 => raw
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
            Dtype::F16 => raw
                .chunks_exact(2)
                .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            Dtype::BF16 => raw
                .chunks_exact(2)
                .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            other => {
                return Err(self.err(name, format!("dtype {} is not a weight type", other.name())));
            }
        };
        if values.len() != numel {
            return Err(self.err(name, "data length does not match its shape"));
        }
        Ok(Weight {
            store: Store::Owned(values),
        })
    }

    /// A vector `[n]`.
    pub fn vector(&self, name: &str, n: usize) -> Result<Vector> {
        Ok(Vector {
            w: self.weight(name, &[n])?,
        })
    }

    /// A matrix `[rows, cols]` as stored.
    pub fn matrix(&self, name: &str, rows: usize, cols: usize) -> Result<Matrix> {
        let w = self.weight(name, &[rows, cols])?;
        Matrix::new(w, rows, cols, false).map_err(|m| self.err(name, m))
    }

    /// An F16 or BF16 matrix `[rows, cols]` as stored, kept in its dtype over the file's bytes (no f32 copy); `None`
    /// for other dtypes. The shape is checked as [`Self::matrix`] checks it.
    pub fn half_matrix(&self, name: &str, rows: usize, cols: usize) -> Result<Option<QuantMatrix>> {
        let Some(info) = self.tensors.get(name) else {
            return Ok(None);
        };
        let ty = match info.dtype {
            Dtype::F16 => GgmlType::F16,
            Dtype::BF16 => GgmlType::BF16,
            _ => return Ok(None),
        };
        if info.shape != [rows, cols] {
            // The f32 path reports the shape mismatch with the file's figures.
            return self.matrix(name, rows, cols).map(|_| None);
        }
        let owner: Arc<dyn AsRef<[u8]> + Send + Sync> = self.data.clone();
        let bytes = SharedBytes::new(owner, info.start..info.end)
            .ok_or_else(|| self.err(name, "data out of bounds"))?;
        QuantMatrix::new(ty, rows, cols, bytes)
            .map(Some)
            .map_err(|e| {
                self.err(
                    name,
                    format!("shape [{rows}, {cols}] of {}: {e}", ty.name()),
                )
            })
    }

    /// An F16 or BF16 matrix stored `[cols, rows]` (GPT-2's Conv1D), as `[rows, cols]` kept in its dtype: the
    /// 2-byte values transposed into an owned buffer (half the size of an f32 copy). `None` for other dtypes.
    pub fn half_matrix_transposed(
        &self,
        name: &str,
        rows: usize,
        cols: usize,
    ) -> Result<Option<QuantMatrix>> {
        let Some(stored) = self.half_matrix(name, cols, rows)? else {
            return Ok(None);
        };
        let info = &self.tensors[name];
        let src = &self.data.bytes()[info.start..info.end];
        let mut v = vec![0u8; src.len()];
        for r in 0..rows {
            for c in 0..cols {
                let from = 2 * (c * rows + r);
                let to = 2 * (r * cols + c);
                v[to..to + 2].copy_from_slice(&src[from..from + 2]);
            }
        }
        QuantMatrix::new(stored.ty(), rows, cols, SharedBytes::from_vec(v))
            .map(Some)
            .map_err(|e| self.err(name, format!("transposed to [{rows}, {cols}]: {e}")))
    }

    /// A matrix stored `[cols, rows]` (e.g. GPT-2's Conv1D `[in, out]`), presented transposed as `[rows, cols]`
    /// without copying.
    pub fn matrix_transposed(&self, name: &str, rows: usize, cols: usize) -> Result<Matrix> {
        let w = self.weight(name, &[cols, rows])?;
        Matrix::new(w, rows, cols, true).map_err(|m| self.err(name, m))
    }
}

enum Store {
    Mapped {
        data: Arc<Backing>,
        start: usize,
        len: usize,
    },
    Owned(Vec<f32>),
}

/// The f32 data of one weight: a view into the mapped file, or converted values.
pub struct Weight {
    store: Store,
}

impl Weight {
    pub fn as_slice(&self) -> &[f32] {
        match &self.store {
            Store::Mapped { data, start, len } => {
                let bytes = data.bytes().get(*start..*start + *len * 4).unwrap_or(&[]);
                // SAFETY: checked aligned and of the right length when the weight was created; f32 accepts any bits.
                let (_, mid, _) = unsafe { bytes.align_to::<f32>() };
                mid
            }
            Store::Owned(v) => v,
        }
    }
    pub fn is_mapped(&self) -> bool {
        matches!(self.store, Store::Mapped { .. })
    }
    pub fn len(&self) -> usize {
        self.as_slice().len()
    }
    pub fn is_empty(&self) -> bool {
        self.as_slice().is_empty()
    }
}

/// A 1-D weight.
pub struct Vector {
    w: Weight,
}

impl Vector {
    pub fn view(&self) -> ArrayView1<'_, f32> {
        ArrayView1::from(self.w.as_slice())
    }
    pub fn to_owned(&self) -> Array1<f32> {
        self.view().to_owned()
    }
    pub fn is_mapped(&self) -> bool {
        self.w.is_mapped()
    }
}

/// A 2-D weight `[rows, cols]`, possibly a transposed view of the stored `[cols, rows]` data.
pub struct Matrix {
    w: Weight,
    rows: usize,
    cols: usize,
    transposed: bool,
}

impl Matrix {
    fn new(
        w: Weight,
        rows: usize,
        cols: usize,
        transposed: bool,
    ) -> std::result::Result<Self, String> {
        let m = Matrix {
            w,
            rows,
            cols,
            transposed,
        };
        // Validate once so that `view` cannot fail later.
        m.try_view()
            .map_err(|e| format!("cannot view as [{rows}, {cols}]: {e}"))?;
        Ok(m)
    }

    fn try_view(&self) -> std::result::Result<ArrayView2<'_, f32>, ndarray::ShapeError> {
        let s = self.w.as_slice();
        if self.transposed {
            Ok(ArrayView2::from_shape((self.cols, self.rows), s)?.reversed_axes())
        } else {
            ArrayView2::from_shape((self.rows, self.cols), s)
        }
    }

    /// The `[rows, cols]` view.
    pub fn view(&self) -> ArrayView2<'_, f32> {
        self.try_view()
            .unwrap_or_else(|_| unreachable!("the shape was validated when the matrix was loaded"))
    }

    pub fn dim(&self) -> (usize, usize) {
        (self.rows, self.cols)
    }

    pub fn to_owned(&self) -> Array2<f32> {
        self.view().to_owned()
    }

    pub fn is_mapped(&self) -> bool {
        self.w.is_mapped()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        let f16: Vec<u8> = [1.5f32, -2.0, 0.25]
            .iter()
            .flat_map(|v| half::f16::from_f32(*v).to_le_bytes())
            .collect();
        let bf16: Vec<u8> = [3.0f32, -0.5]
            .iter()
            .flat_map(|v| half::bf16::from_f32(*v).to_le_bytes())
            .collect();
        serialize(&[
            ("a", "F32", vec![2, 3], f32_bytes(&[1., 2., 3., 4., 5., 6.])),
            ("h", "F16", vec![3], f16),
            ("b", "BF16", vec![2], bf16),
            ("ids", "I64", vec![2], vec![0; 16]),
        ])
    }

    #[test]
    fn reads_f32_f16_bf16_and_checks_shapes() {
        let st = SafeTensors::from_bytes(sample(), "x.safetensors").unwrap();
        assert_eq!(st.len(), 4);
        let a = st.matrix("a", 2, 3).unwrap();
        assert_eq!(a.view(), ndarray::arr2(&[[1f32, 2., 3.], [4., 5., 6.]]));
        let at = st.matrix_transposed("a", 3, 2).unwrap();
        assert_eq!(at.view(), ndarray::arr2(&[[1f32, 4.], [2., 5.], [3., 6.]]));
        assert_eq!(
            st.vector("h", 3).unwrap().to_owned().to_vec(),
            vec![1.5, -2.0, 0.25]
        );
        assert_eq!(
            st.vector("b", 2).unwrap().to_owned().to_vec(),
            vec![3.0, -0.5]
        );
        let e = st.matrix("a", 3, 2).err().unwrap().to_string();
        assert!(
            e.contains("x.safetensors") && e.contains("`a`") && e.contains("[2, 3]"),
            "{e}"
        );
        let e = st.vector("nope", 4).err().unwrap().to_string();
        assert!(e.contains("`nope`") && e.contains("missing"), "{e}");
        let e = st.vector("ids", 2).err().unwrap().to_string();
        assert!(e.contains("I64"), "{e}");
    }

    #[test]
    fn aligned_f32_is_zero_copy() {
        let st = SafeTensors::from_bytes(sample(), "x").unwrap();
        // The serialized header is padded to 8 bytes; a Vec<u8> from the allocator is at least 8-aligned.
        let a = st.matrix("a", 2, 3).unwrap();
        assert!(a.is_mapped());
        assert!(!st.vector("h", 3).unwrap().is_mapped());
    }

    #[test]
    fn truncation_at_every_offset_is_an_error() {
        let bytes = sample();
        for cut in 0..bytes.len() {
            let r = SafeTensors::from_bytes(bytes[..cut].to_vec(), "cut.safetensors");
            let e = r
                .err()
                .unwrap_or_else(|| panic!("truncated at {cut} must fail"))
                .to_string();
            assert!(e.contains("cut.safetensors"), "{e}");
        }
    }

    #[test]
    fn nonsense_headers_are_errors() {
        let with_header = |h: &str, data: usize| {
            let mut out = (h.len() as u64).to_le_bytes().to_vec();
            out.extend_from_slice(h.as_bytes());
            out.extend(std::iter::repeat_n(0u8, data));
            out
        };
        // (header, bytes of data after it, what the error must say)
        #[rustfmt::skip]
        let headers: [(&str, usize, &str); 10] = [
            (r#"{"a":{"dtype":"Q9","shape":[1],"data_offsets":[0,4]}}"#, 4, "unknown dtype `Q9`"),
            (r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}"#, 8, "needs 8"),
            (r#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#, 2, "past the end"),
            (r#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}}"#, 8, "backwards"),
            (r#"{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}"#, 8, "shape"),
            (r#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0]}}"#, 8, "2 entries"),
            (r#"{"a":{"shape":[1],"data_offsets":[0,4]}}"#, 8, "dtype"),
            (r#"{"a":7}"#, 8, "not an object"),
            (r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#, 8, "overlaps"),
            (r#"{"a":{"dtype":"F32","shape":[4611686018427387904,8],"data_offsets":[0,8]}}"#, 8, "too large"),
        ];
        let mut cases: Vec<(Vec<u8>, &str)> = vec![
            (u64::MAX.to_le_bytes().to_vec(), "limit"),
            (
                1000u64
                    .to_le_bytes()
                    .into_iter()
                    .chain([b'{'; 10])
                    .collect(),
                "past the end",
            ),
        ];
        cases.extend(headers.map(|(h, data, want)| (with_header(h, data), want)));
        for (bytes, want) in cases {
            let e = SafeTensors::from_bytes(bytes, "bad.safetensors")
                .err()
                .unwrap()
                .to_string();
            assert!(
                e.contains(want) && e.contains("bad.safetensors"),
                "{e} lacks {want}"
            );
        }
    }

    #[test]
    fn empty_tensors_and_metadata_are_fine() {
        let h = r#"{"__metadata__":{"format":"pt"},"e":{"dtype":"F32","shape":[0],"data_offsets":[0,0]}}"#;
        let mut out = (h.len() as u64).to_le_bytes().to_vec();
        out.extend_from_slice(h.as_bytes());
        let st = SafeTensors::from_bytes(out, "e").unwrap();
        assert_eq!(st.vector("e", 0).unwrap().view().len(), 0);
    }
}
