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

use super::dequant::{self, GgmlType};
use crate::{Error, Result};
use ndarray::{ArrayD, IxDyn};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

/// The GGUF magic, "GGUF" read as a little-endian u32.
pub const GGUF_MAGIC: [u8; 4] = *b"GGUF";
/// Alignment of the data section and of each tensor when `general.alignment` is absent.
pub const DEFAULT_ALIGNMENT: u64 = 32;
/// Most dimensions a tensor may have (ggml's GGML_MAX_DIMS).
pub const MAX_DIMS: u32 = 4;
/// Deepest nesting of arrays inside arrays accepted in metadata.
pub const MAX_ARRAY_DEPTH: usize = 4;

/// One metadata value.
#[derive(Debug, Clone, PartialEq)]
pub enum GgufValue {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    F32(f32),
    Bool(bool),
    String(String),
    Array(Vec<GgufValue>),
    U64(u64),
    I64(i64),
    F64(f64),
}

impl GgufValue {
    /// The GGUF name of this value's type (`"u32"`, `"string"`, `"array of string"`...), for error messages.
    pub fn type_name(&self) -> String {
        match self {
            GgufValue::Array(v) => match v.first() {
                Some(e) => format!("array of {}", e.type_name()),
                None => "empty array".to_string(),
            },
            other => value_type_name(other.type_id()).to_string(),
        }
    }

    fn type_id(&self) -> u32 {
        match self {
            GgufValue::U8(_) => 0,
            GgufValue::I8(_) => 1,
            GgufValue::U16(_) => 2,
            GgufValue::I16(_) => 3,
            GgufValue::U32(_) => 4,
            GgufValue::I32(_) => 5,
            GgufValue::F32(_) => 6,
            GgufValue::Bool(_) => 7,
            GgufValue::String(_) => 8,
            GgufValue::Array(_) => 9,
            GgufValue::U64(_) => 10,
            GgufValue::I64(_) => 11,
            GgufValue::F64(_) => 12,
        }
    }

    /// Any integer variant as i128 (wide enough for every GGUF integer type).
    pub fn as_int(&self) -> Option<i128> {
        Some(match *self {
            GgufValue::U8(v) => v as i128,
            GgufValue::I8(v) => v as i128,
            GgufValue::U16(v) => v as i128,
            GgufValue::I16(v) => v as i128,
            GgufValue::U32(v) => v as i128,
            GgufValue::I32(v) => v as i128,
            GgufValue::U64(v) => v as i128,
            GgufValue::I64(v) => v as i128,
            _ => return None,
        })
    }

    /// F32 or F64 as f32.
    pub fn as_f32(&self) -> Option<f32> {
        match *self {
            GgufValue::F32(v) => Some(v),
            GgufValue::F64(v) => Some(v as f32),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            GgufValue::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            GgufValue::Bool(b) => Some(b),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&[GgufValue]> {
        match self {
            GgufValue::Array(v) => Some(v),
            _ => None,
        }
    }
}

fn value_type_name(id: u32) -> &'static str {
    match id {
        0 => "u8",
        1 => "i8",
        2 => "u16",
        3 => "i16",
        4 => "u32",
        5 => "i32",
        6 => "f32",
        7 => "bool",
        8 => "string",
        9 => "array",
        10 => "u64",
        11 => "i64",
        12 => "f64",
        _ => "unknown",
    }
}

/// Where one tensor lives and what it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorInfo {
    pub name: String,
    /// GGUF order: ne0 (the fastest-varying, contiguous dimension) first.
    pub dims: Vec<u64>,
    pub ty: GgmlType,
    /// Absolute byte offset of the data in the file.
    pub offset: u64,
    /// Size of the data in bytes.
    pub n_bytes: u64,
}

impl TensorInfo {
    /// Number of elements: the product of `dims` (checked at parse time not to overflow; saturates at u64::MAX for
    /// a hand-built info whose product would).
    pub fn n_elements(&self) -> u64 {
        self.dims
            .iter()
            .try_fold(1u64, |a, &d| a.checked_mul(d))
            .unwrap_or(u64::MAX)
    }

    /// Row-major shape: `dims` reversed, so a GGUF `[ne0 = in, ne1 = out]` matrix is `[out, in]` like nn.Linear.
    pub fn shape(&self) -> Vec<usize> {
        self.dims.iter().rev().map(|&d| d as usize).collect()
    }
}

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
    data: Backing,
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
        let parsed = Parser {
            buf: data.bytes(),
            pos: 0,
            file: &file_name,
        }
        .parse()?;
        Ok(Gguf {
            version: parsed.version,
            alignment: parsed.alignment,
            data_offset: parsed.data_offset,
            tensors: parsed.tensors,
            metadata: parsed.metadata,
            key_index: parsed.key_index,
            tensor_index: parsed.tensor_index,
            data,
            file_name,
        })
    }
}

fn describe(v: &GgufValue) -> String {
    match v {
        GgufValue::Array(a) => format!("{} (len {})", v.type_name(), a.len()),
        GgufValue::String(_) => "string".to_string(),
        other => format!("{} {}", other.type_name(), short_value(other)),
    }
}

fn short_value(v: &GgufValue) -> String {
    match v {
        GgufValue::F32(x) => x.to_string(),
        GgufValue::F64(x) => x.to_string(),
        GgufValue::Bool(b) => b.to_string(),
        other => other.as_int().map(|i| i.to_string()).unwrap_or_default(),
    }
}

struct Parsed {
    version: u32,
    alignment: u64,
    data_offset: u64,
    tensors: Vec<TensorInfo>,
    metadata: Vec<(String, GgufValue)>,
    key_index: HashMap<String, usize>,
    tensor_index: HashMap<String, usize>,
}

/// A cursor over the file's bytes. Every read checks the remaining length first; `what` names the field for errors
/// and is only evaluated when an error is built.
struct Parser<'a> {
    buf: &'a [u8],
    pos: usize,
    file: &'a str,
}

type What<'w> = &'w dyn Fn() -> String;

impl<'a> Parser<'a> {
    fn err(&self, what: What, msg: impl std::fmt::Display) -> Error {
        Error::format(self.file, format!("{}: {msg}", what()))
    }

    fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    fn take(&mut self, n: u64, what: What) -> Result<&'a [u8]> {
        let rem = self.remaining();
        let n_us = usize::try_from(n)
            .ok()
            .filter(|&n| n <= rem)
            .ok_or_else(|| {
                self.err(
                    what,
                    format!(
                        "file truncated: needs {n} bytes at offset {}, only {rem} left",
                        self.pos
                    ),
                )
            })?;
        let s = self
            .buf
            .get(self.pos..self.pos + n_us)
            .ok_or_else(|| self.err(what, "file truncated"))?;
        self.pos += n_us;
        Ok(s)
    }

    fn array<const N: usize>(&mut self, what: What) -> Result<[u8; N]> {
        let s = self.take(N as u64, what)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    fn u32(&mut self, what: What) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    fn u64(&mut self, what: What) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    fn string(&mut self, what: What) -> Result<String> {
        let len = self.u64(&|| format!("{} (string length)", what()))?;
        if len > self.remaining() as u64 {
            return Err(self.err(
                what,
                format!(
                    "string length {len} exceeds the {} bytes left in the file",
                    self.remaining()
                ),
            ));
        }
        let bytes = self.take(len, what)?;
        match std::str::from_utf8(bytes) {
            Ok(s) => Ok(s.to_string()),
            Err(e) => Err(self.err(what, format!("string is not valid UTF-8 ({e})"))),
        }
    }

    /// A count of items that each take at least `min_size` bytes: must fit in the remaining bytes.
    fn count(&mut self, min_size: u64, what: What) -> Result<usize> {
        let n = self.u64(what)?;
        let rem = self.remaining() as u64;
        match n.checked_mul(min_size) {
            Some(total) if total <= rem => usize::try_from(n).map_err(|_| self.err(what, "count too large")),
            _ => Err(self.err(
                what,
                format!("count {n} cannot fit in the {rem} bytes left (each item takes at least {min_size} bytes)"),
            )),
        }
    }

    fn parse(mut self) -> Result<Parsed> {
        let magic = self.array::<4>(&|| "magic".to_string())?;
        if magic != GGUF_MAGIC {
            return Err(self.err(
                &|| "magic".to_string(),
                format!("not a GGUF file (starts with {magic:02x?}, expected \"GGUF\")"),
            ));
        }
        let version = self.u32(&|| "version".to_string())?;
        match version {
            2 | 3 => {}
            1 => {
                return Err(self.err(
                    &|| "version".to_string(),
                    "GGUF v1 is not supported (only v2 and v3; re-convert the model with a current llama.cpp)",
                ));
            }
            v if v.swap_bytes() == 2 || v.swap_bytes() == 3 => {
                return Err(self.err(
                    &|| "version".to_string(),
                    format!(
                        "big-endian GGUF (version {}) is not supported",
                        v.swap_bytes()
                    ),
                ));
            }
            v => {
                return Err(self.err(
                    &|| "version".to_string(),
                    format!("unknown GGUF version {v} (supported: 2, 3)"),
                ));
            }
        }
        // Minimum encoded sizes: a tensor info has a name length (8), n_dims (4), type (4), offset (8);
        // a metadata pair has a key length (8), value type (4), and at least one value byte.
        let tensor_count = self.count(24, &|| "tensor_count".to_string())?;
        let kv_count = self.count(13, &|| "metadata_kv_count".to_string())?;

        let mut metadata = Vec::with_capacity(kv_count);
        let mut key_index = HashMap::with_capacity(kv_count);
        for i in 0..kv_count {
            let key = self.string(&|| format!("metadata key #{i}"))?;
            let what = || format!("metadata key #{i} `{key}`");
            if key.is_empty() {
                return Err(self.err(&what, "empty key"));
            }
            if key_index.contains_key(&key) {
                return Err(self.err(&what, "duplicate key"));
            }
            let ty = self.u32(&|| format!("{} value type", what()))?;
            let value = self.value(ty, 0, &what)?;
            key_index.insert(key.clone(), i);
            metadata.push((key, value));
        }

        let alignment = match key_index
            .get("general.alignment")
            .and_then(|&i| metadata.get(i))
        {
            None => DEFAULT_ALIGNMENT,
            Some((_, v)) => {
                let what = || "metadata `general.alignment`".to_string();
                match v.as_int().and_then(|a| u32::try_from(a).ok()) {
                    Some(a) if a != 0 && a.is_power_of_two() => a as u64,
                    Some(a) => {
                        return Err(self.err(&what, format!("{a} is not a non-zero power of two")));
                    }
                    None => {
                        return Err(self.err(&what, format!("expected u32, found {}", describe(v))));
                    }
                }
            }
        };

        struct Raw {
            name: String,
            dims: Vec<u64>,
            ty: GgmlType,
            rel: u64,
            n_bytes: u64,
        }
        let mut raw: Vec<Raw> = Vec::with_capacity(tensor_count);
        let mut tensor_index = HashMap::with_capacity(tensor_count);
        for i in 0..tensor_count {
            let name = self.string(&|| format!("tensor #{i} name"))?;
            let what = || format!("tensor #{i} `{name}`");
            if tensor_index.contains_key(&name) {
                return Err(self.err(&what, "duplicate tensor name"));
            }
            let n_dims = self.u32(&|| format!("{} n_dims", what()))?;
            if n_dims > MAX_DIMS {
                return Err(self.err(
                    &|| format!("{} n_dims", what()),
                    format!("{n_dims} dimensions (at most {MAX_DIMS})"),
                ));
            }
            let mut dims = Vec::with_capacity(n_dims as usize);
            for d in 0..n_dims {
                let dwhat = || format!("{} dims[{d}]", what());
                let v = self.u64(&dwhat)?;
                // ggml keeps dimensions as int64.
                if v == 0 || v > i64::MAX as u64 {
                    return Err(self.err(&dwhat, format!("invalid dimension {v}")));
                }
                dims.push(v);
            }
            let ty_id = self.u32(&|| format!("{} type", what()))?;
            let ty = GgmlType::from_id(ty_id).ok_or_else(|| {
                self.err(
                    &|| format!("{} type", what()),
                    format!("unknown tensor type id {ty_id}"),
                )
            })?;
            let rel = self.u64(&|| format!("{} offset", what()))?;

            let n_elements = dims
                .iter()
                .try_fold(1u64, |acc, &d| {
                    acc.checked_mul(d).filter(|&p| p <= i64::MAX as u64)
                })
                .ok_or_else(|| {
                    self.err(&what, format!("element count of dims {dims:?} overflows"))
                })?;
            let ne0 = dims.first().copied().unwrap_or(1);
            let bs = ty.block_size() as u64;
            if !ne0.is_multiple_of(bs) {
                return Err(self.err(
                    &|| format!("{} dims[0]", what()),
                    format!("{ne0} is not a multiple of the {ty} block size {bs}"),
                ));
            }
            let n_bytes = (n_elements / bs)
                .checked_mul(ty.type_size() as u64)
                .ok_or_else(|| self.err(&what, "byte size overflows"))?;
            if !rel.is_multiple_of(alignment) {
                return Err(self.err(
                    &|| format!("{} offset", what()),
                    format!("{rel} is not a multiple of the alignment {alignment}"),
                ));
            }
            tensor_index.insert(name.clone(), i);
            raw.push(Raw {
                name,
                dims,
                ty,
                rel,
                n_bytes,
            });
        }

        let pos = self.pos as u64;
        let data_offset = pos
            .checked_next_multiple_of(alignment)
            .ok_or_else(|| self.err(&|| "data section".to_string(), "offset overflows"))?;
        let file_len = self.buf.len() as u64;

        let mut tensors = Vec::with_capacity(raw.len());
        for (i, r) in raw.into_iter().enumerate() {
            let what = || format!("tensor #{i} `{}` offset", r.name);
            let start = data_offset
                .checked_add(r.rel)
                .ok_or_else(|| self.err(&what, format!("{} overflows", r.rel)))?;
            let end = start
                .checked_add(r.n_bytes)
                .ok_or_else(|| self.err(&what, "end overflows"))?;
            if end > file_len {
                return Err(self.err(
                    &what,
                    format!(
                        "data [{start}, {end}) lies outside the file ({file_len} bytes; {} bytes of {} {:?})",
                        r.n_bytes, r.ty, r.dims
                    ),
                ));
            }
            tensors.push(TensorInfo {
                name: r.name,
                dims: r.dims,
                ty: r.ty,
                offset: start,
                n_bytes: r.n_bytes,
            });
        }

        // No two tensors may share bytes.
        let mut order: Vec<usize> = (0..tensors.len()).collect();
        order.sort_by_key(|&i| tensors.get(i).map(|t| (t.offset, t.n_bytes)));
        for w in order.windows(2) {
            if let [a, b] = *w
                && let (Some(ta), Some(tb)) = (tensors.get(a), tensors.get(b))
                && ta.offset + ta.n_bytes > tb.offset
            {
                return Err(Error::format(
                    self.file,
                    format!(
                        "tensor #{b} `{}` offset: data [{}, {}) overlaps tensor #{a} `{}` [{}, {})",
                        tb.name,
                        tb.offset,
                        tb.offset + tb.n_bytes,
                        ta.name,
                        ta.offset,
                        ta.offset + ta.n_bytes
                    ),
                ));
            }
        }

        Ok(Parsed {
            version,
            alignment,
            data_offset,
            tensors,
            metadata,
            key_index,
            tensor_index,
        })
    }

    fn value(&mut self, ty: u32, depth: usize, what: What) -> Result<GgufValue> {
        Ok(match ty {
            0 => GgufValue::U8(u8::from_le_bytes(self.array(what)?)),
            1 => GgufValue::I8(i8::from_le_bytes(self.array(what)?)),
            2 => GgufValue::U16(u16::from_le_bytes(self.array(what)?)),
            3 => GgufValue::I16(i16::from_le_bytes(self.array(what)?)),
            4 => GgufValue::U32(u32::from_le_bytes(self.array(what)?)),
            5 => GgufValue::I32(i32::from_le_bytes(self.array(what)?)),
            6 => GgufValue::F32(f32::from_le_bytes(self.array(what)?)),
            7 => match self.array::<1>(what)? {
                [0] => GgufValue::Bool(false),
                [1] => GgufValue::Bool(true),
                [b] => return Err(self.err(what, format!("bool byte is {b}, not 0 or 1"))),
            },
            8 => GgufValue::String(self.string(what)?),
            9 => {
                if depth >= MAX_ARRAY_DEPTH {
                    return Err(self.err(
                        what,
                        format!("arrays nested more than {MAX_ARRAY_DEPTH} deep"),
                    ));
                }
                let ety = self.u32(&|| format!("{} array element type", what()))?;
                let min = min_value_size(ety).ok_or_else(|| {
                    self.err(
                        &|| format!("{} array element type", what()),
                        format!("unknown value type {ety}"),
                    )
                })?;
                let n = self.count(min, &|| format!("{} array length", what()))?;
                let mut v = Vec::with_capacity(n);
                for j in 0..n {
                    v.push(self.value(ety, depth + 1, &|| format!("{}[{j}]", what()))?);
                }
                GgufValue::Array(v)
            }
            10 => GgufValue::U64(u64::from_le_bytes(self.array(what)?)),
            11 => GgufValue::I64(i64::from_le_bytes(self.array(what)?)),
            12 => GgufValue::F64(f64::from_le_bytes(self.array(what)?)),
            t => {
                return Err(self.err(
                    &|| format!("{} value type", what()),
                    format!("unknown value type {t}"),
                ));
            }
        })
    }
}

/// The fewest bytes a value of GGUF value type `ty` occupies, or `None` for an unknown type.
fn min_value_size(ty: u32) -> Option<u64> {
    Some(match ty {
        0 | 1 | 7 => 1,
        2 | 3 => 2,
        4..=6 => 4,
        8 => 8,
        9 => 12,
        10..=12 => 8,
        _ => return None,
    })
}
