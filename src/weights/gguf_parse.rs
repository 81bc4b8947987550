//! The GGUF header parser: every count, length, dimension, offset and byte size is checked against the bytes that
//! remain before anything is allocated or read.

use super::dequant::GgmlType;
use super::gguf_types::{
    DEFAULT_ALIGNMENT, GGUF_MAGIC, GgufValue, MAX_ARRAY_DEPTH, MAX_DIMS, TensorInfo, describe,
};
use crate::{Error, Result};
use std::collections::HashMap;

/// Parse the header of `buf` (`file` names it in errors).
pub(super) fn parse(buf: &[u8], file: &str) -> Result<Parsed> {
    Parser { buf, pos: 0, file }.parse()
}

pub(super) struct Parsed {
    pub(super) version: u32,
    pub(super) alignment: u64,
    pub(super) data_offset: u64,
    pub(super) tensors: Vec<TensorInfo>,
    pub(super) metadata: Vec<(String, GgufValue)>,
    pub(super) key_index: HashMap<String, usize>,
    pub(super) tensor_index: HashMap<String, usize>,
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
