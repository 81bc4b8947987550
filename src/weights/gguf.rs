//! A bounds-checked GGUF (v2, v3) reader.
//!
//! The whole file is memory-mapped (or given as bytes); parsing reads the header, the metadata key/value pairs and the
//! tensor infos, and checks every count, length, dimension, offset and byte size against the bytes that remain
//! *before* allocating or reading, with checked arithmetic. Tensor data are only touched when a tensor is asked for.
//! See `docs/gguf.md` for the list of checks.
//!
//! Layout (all little-endian):
//! ```text
//! magic "GGUF" | version u32 | tensor_count u64 | metadata_kv_count u64
//! metadata_kv_count × { key: string, value_type u32, value }
//! tensor_count × { name: string, n_dims u32, dims u64 × n_dims, type u32, offset u64 }
//! padding to general.alignment (default 32) | tensor data (offsets relative to here, each aligned)
//! string = u64 length + UTF-8 bytes;  array = element type u32 + count u64 + elements
//! ```

use super::dequant;
use super::gguf_types::describe;
pub use super::gguf_types::{
    DEFAULT_ALIGNMENT, GGUF_MAGIC, GgufValue, MAX_ARRAY_DEPTH, MAX_DIMS, TensorInfo,
};
use crate::numeric::quant::{QuantMatrix, SharedBytes};
use crate::{Error, Result};
use ndarray::{ArrayD, IxDyn};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

enum Backing {
    Mmap(memmap2::Mmap),
    Bytes(Arc<[u8]>),
}

impl Backing {
    fn bytes(&self) -> &[u8] {
        match self {
            Backing::Mmap(m) => m,
            Backing::Bytes(b) => b,
        }
    }
}

impl AsRef<[u8]> for Backing {
    fn as_ref(&self) -> &[u8] {
        self.bytes()
    }
}

/// A parsed GGUF file: metadata in file order, tensor infos in file order, and the file's bytes.
pub struct Gguf {
    pub version: u32,
    /// `general.alignment` (default 32).
    pub alignment: u64,
    /// Absolute offset of the tensor data section.
    pub data_offset: u64,
    /// Tensor infos in file order.
    pub tensors: Vec<TensorInfo>,
    metadata: Vec<(String, GgufValue)>,
    key_index: HashMap<String, usize>,
    tensor_index: HashMap<String, usize>,
    data: Arc<Backing>,
    file_name: String,
}

impl std::fmt::Debug for Gguf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gguf")
            .field("file", &self.file_name)
            .field("version", &self.version)
            .field("metadata", &self.metadata.len())
            .field("tensors", &self.tensors.len())
            .finish()
    }
}

impl Gguf {
    /// Memory-map and parse a GGUF file.
    pub fn open(path: &Path) -> Result<Gguf> {
        let file = crate::fsutil::open_regular(path)?;
        let name = path.display().to_string();
        let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
        if len == 0 {
            return Err(Error::format(name, "empty file (not GGUF)"));
        }
        // SAFETY: the map is read-only; like every mmap-based reader we rely on the file not being truncated or
        // rewritten by another process while it is open.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| Error::io(path, e))?;
        Gguf::parse(Backing::Mmap(map), name)
    }

    /// Parse GGUF bytes held in memory; `name` is used in error messages.
    pub fn from_bytes(bytes: impl Into<Arc<[u8]>>, name: &str) -> Result<Gguf> {
        Gguf::parse(Backing::Bytes(bytes.into()), name.to_string())
    }

    /// The file name (or the name given to [`Gguf::from_bytes`]).
    pub fn file_name(&self) -> &str {
        &self.file_name
    }

    /// Metadata pairs in file order.
    pub fn metadata(&self) -> impl Iterator<Item = (&str, &GgufValue)> {
        self.metadata.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Number of metadata pairs.
    pub fn metadata_len(&self) -> usize {
        self.metadata.len()
    }

    pub fn get(&self, key: &str) -> Option<&GgufValue> {
        self.key_index
            .get(key)
            .and_then(|&i| self.metadata.get(i))
            .map(|(_, v)| v)
    }

    fn require(&self, key: &str) -> Result<&GgufValue> {
        self.get(key).ok_or_else(|| {
            Error::format(&self.file_name, format!("metadata key `{key}` is missing"))
        })
    }

    fn wrong(&self, key: &str, want: &str, found: &GgufValue) -> Error {
        Error::format(
            &self.file_name,
            format!(
                "metadata key `{key}`: expected {want}, found {}",
                describe(found)
            ),
        )
    }

    fn int_in<T: TryFrom<i128>>(&self, key: &str, want: &str) -> Result<T> {
        let v = self.require(key)?;
        v.as_int()
            .and_then(|i| T::try_from(i).ok())
            .ok_or_else(|| self.wrong(key, want, v))
    }

    /// An integer of any GGUF integer type whose value fits in u32.
    pub fn get_u32(&self, key: &str) -> Result<u32> {
        self.int_in(key, "an integer that fits u32")
    }

    /// An integer of any GGUF integer type whose value fits in u64.
    pub fn get_u64(&self, key: &str) -> Result<u64> {
        self.int_in(key, "an integer that fits u64")
    }

    /// An integer of any GGUF integer type whose value fits in i64.
    pub fn get_i64(&self, key: &str) -> Result<i64> {
        self.int_in(key, "an integer that fits i64")
    }

    /// An f32 (or an f64, rounded to f32).
    pub fn get_f32(&self, key: &str) -> Result<f32> {
        let v = self.require(key)?;
        v.as_f32().ok_or_else(|| self.wrong(key, "f32", v))
    }

    pub fn get_bool(&self, key: &str) -> Result<bool> {
        let v = self.require(key)?;
        v.as_bool().ok_or_else(|| self.wrong(key, "bool", v))
    }

    pub fn get_str(&self, key: &str) -> Result<&str> {
        let v = self.require(key)?;
        v.as_str().ok_or_else(|| self.wrong(key, "string", v))
    }

    /// An array value of any element type.
    pub fn get_array(&self, key: &str) -> Result<&[GgufValue]> {
        let v = self.require(key)?;
        v.as_array().ok_or_else(|| self.wrong(key, "array", v))
    }

    fn array_of<T>(
        &self,
        key: &str,
        want: &str,
        f: impl Fn(&GgufValue) -> Option<T>,
    ) -> Result<Vec<T>> {
        let v = self.require(key)?;
        let arr = v.as_array().ok_or_else(|| self.wrong(key, want, v))?;
        arr.iter()
            .enumerate()
            .map(|(i, e)| {
                f(e).ok_or_else(|| {
                    Error::format(
                        &self.file_name,
                        format!(
                            "metadata key `{key}`[{i}]: expected {want} elements, found {}",
                            describe(e)
                        ),
                    )
                })
            })
            .collect()
    }

    pub fn get_str_array(&self, key: &str) -> Result<Vec<String>> {
        self.array_of(key, "string", |e| e.as_str().map(str::to_string))
    }

    /// f32 (or f64) elements as f32.
    pub fn get_f32_array(&self, key: &str) -> Result<Vec<f32>> {
        self.array_of(key, "f32", GgufValue::as_f32)
    }

    /// Integer elements of any type whose values fit in i32.
    pub fn get_i32_array(&self, key: &str) -> Result<Vec<i32>> {
        self.array_of(key, "i32", |e| {
            e.as_int().and_then(|i| i32::try_from(i).ok())
        })
    }

    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.tensor_index
            .get(name)
            .and_then(|&i| self.tensors.get(i))
    }

    /// The raw bytes of a tensor.
    pub fn tensor_bytes(&self, info: &TensorInfo) -> Result<&[u8]> {
        let bytes = self.data.bytes();
        usize::try_from(info.offset)
            .ok()
            .zip(usize::try_from(info.n_bytes).ok())
            .and_then(|(start, n)| Some(start..start.checked_add(n)?))
            .and_then(|r| bytes.get(r))
            .ok_or_else(|| Error::tensor(&self.file_name, &info.name, "data lies outside the file"))
    }

    /// A 2-D tensor as a [`QuantMatrix`] `[out, in]` (GGUF `[ne0 = in, ne1 = out]`) in its own format, sharing the
    /// file's bytes (no copy). Errors name the tensor: not 2-D, a type that cannot be decoded, or dims that do not
    /// match its bytes.
    pub fn quant_matrix(&self, info: &TensorInfo) -> Result<QuantMatrix> {
        let terr = |msg: String| Error::tensor(&self.file_name, &info.name, msg);
        let [k, m] = info.dims[..] else {
            return Err(terr(format!(
                "expected a matrix, found dims {:?}",
                info.dims
            )));
        };
        let (m, k) = usize::try_from(m)
            .ok()
            .zip(usize::try_from(k).ok())
            .ok_or_else(|| terr("too many elements".into()))?;
        self.tensor_bytes(info)?; // range check with the tensor's name in the error
        let start = info.offset as usize;
        let owner: Arc<dyn AsRef<[u8]> + Send + Sync> = self.data.clone();
        let bytes = SharedBytes::new(owner, start..start + info.n_bytes as usize)
            .ok_or_else(|| terr("data lies outside the file".into()))?;
        QuantMatrix::new(info.ty, m, k, bytes)
            .map_err(|e| terr(format!("dims {:?} of type {}: {e}", info.dims, info.ty)))
    }

    /// A tensor dequantized to f32, in row-major shape `dims` reversed (a GGUF `[in, out]` matrix becomes
    /// `[out, in]`).
    pub fn tensor_f32(&self, name: &str) -> Result<ArrayD<f32>> {
        let info = self
            .tensor(name)
            .ok_or_else(|| Error::tensor(&self.file_name, name, "not found in the file"))?;
        self.dequantize(info)
    }

    /// Dequantize the tensor `info` (from this file's `tensors`) to f32 in row-major shape `dims` reversed.
    pub fn dequantize(&self, info: &TensorInfo) -> Result<ArrayD<f32>> {
        let terr = |msg: String| Error::tensor(&self.file_name, &info.name, msg);
        if !info.ty.can_dequantize() {
            return Err(terr(format!(
                "dequantizing type {} is not supported",
                info.ty
            )));
        }
        let bytes = self.tensor_bytes(info)?;
        // `info` is public data: make sure its dims agree with its byte size before allocating the output.
        let (bs, ts) = (info.ty.block_size() as u64, info.ty.type_size() as u64);
        let n_elements = info.n_elements();
        if !n_elements.is_multiple_of(bs)
            || (n_elements / bs).checked_mul(ts) != Some(bytes.len() as u64)
        {
            return Err(terr(format!(
                "dims {:?} of type {} do not match its {} bytes",
                info.dims,
                info.ty,
                bytes.len()
            )));
        }
        let n = usize::try_from(n_elements).map_err(|_| terr("too many elements".into()))?;
        let mut out = vec![0f32; n];
        dequant::dequantize(info.ty, bytes, &mut out).map_err(|e| terr(e.to_string()))?;
        ArrayD::from_shape_vec(IxDyn(&info.shape()), out).map_err(|e| terr(e.to_string()))
    }

    fn parse(data: Backing, file_name: String) -> Result<Gguf> {
        let parsed = super::gguf_parse::parse(data.bytes(), &file_name)?;
        Ok(Gguf {
            version: parsed.version,
            alignment: parsed.alignment,
            data_offset: parsed.data_offset,
            tensors: parsed.tensors,
            metadata: parsed.metadata,
            key_index: parsed.key_index,
            tensor_index: parsed.tensor_index,
            data: Arc::new(data),
            file_name,
        })
    }
}
