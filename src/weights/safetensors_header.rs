//! The safetensors header: dtypes, tensor infos, the bounds-checked header parser, and a writer for tests and
//! fixtures.

use crate::{Error, Result};
use std::collections::BTreeMap;

/// The largest header accepted (the real files have headers of a few hundred KiB at most).
pub const MAX_HEADER: u64 = 100 << 20;

/// Element types of the format. Only F32, F16 and BF16 can be read as weights; the rest are recognised (so that a
/// file with an integer buffer such as BERT's `position_ids` loads) but refused when asked for as a weight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dtype {
    F64,
    F32,
    F16,
    BF16,
    I64,
    I32,
    I16,
    I8,
    U64,
    U32,
    U16,
    U8,
    Bool,
    F8E4M3,
    F8E5M2,
}

impl Dtype {
    fn parse(s: &str) -> Option<Dtype> {
        Some(match s {
            "F64" => Dtype::F64,
            "F32" => Dtype::F32,
            "F16" => Dtype::F16,
            "BF16" => Dtype::BF16,
            "I64" => Dtype::I64,
            "I32" => Dtype::I32,
            "I16" => Dtype::I16,
            "I8" => Dtype::I8,
            "U64" => Dtype::U64,
            "U32" => Dtype::U32,
            "U16" => Dtype::U16,
            "U8" => Dtype::U8,
            "BOOL" => Dtype::Bool,
            "F8_E4M3" => Dtype::F8E4M3,
            "F8_E5M2" => Dtype::F8E5M2,
            _ => return None,
        })
    }
    pub fn size(self) -> usize {
        match self {
            Dtype::F64 | Dtype::I64 | Dtype::U64 => 8,
            Dtype::F32 | Dtype::I32 | Dtype::U32 => 4,
            Dtype::F16 | Dtype::BF16 | Dtype::I16 | Dtype::U16 => 2,
            Dtype::I8 | Dtype::U8 | Dtype::Bool | Dtype::F8E4M3 | Dtype::F8E5M2 => 1,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Dtype::F64 => "F64",
            Dtype::F32 => "F32",
            Dtype::F16 => "F16",
            Dtype::BF16 => "BF16",
            Dtype::I64 => "I64",
            Dtype::I32 => "I32",
            Dtype::I16 => "I16",
            Dtype::I8 => "I8",
            Dtype::U64 => "U64",
            Dtype::U32 => "U32",
            Dtype::U16 => "U16",
            Dtype::U8 => "U8",
            Dtype::Bool => "BOOL",
            Dtype::F8E4M3 => "F8_E4M3",
            Dtype::F8E5M2 => "F8_E5M2",
        }
    }
    pub(crate) fn is_weight(self) -> bool {
        matches!(self, Dtype::F32 | Dtype::F16 | Dtype::BF16)
    }
}

/// Where one tensor lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorInfo {
    pub dtype: Dtype,
    pub shape: Vec<usize>,
    /// Byte range inside the whole file (header included), already bounds-checked.
    pub start: usize,
    pub end: usize,
}

impl TensorInfo {
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
}

/// The bytes of a file: a read-only memory mapping or an owned buffer.
pub(super) fn parse_header(bytes: &[u8], file: &str) -> Result<BTreeMap<String, TensorInfo>> {
    let fmt = |m: String| Error::format(file, m);
    let len_bytes: [u8; 8] = bytes
        .get(..8)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| {
            fmt(format!(
                "not a safetensors file: {} bytes, shorter than the 8-byte header length",
                bytes.len()
            ))
        })?;
    let n = u64::from_le_bytes(len_bytes);
    let file_len = bytes.len() as u64;
    if n > MAX_HEADER {
        return Err(fmt(format!(
            "header length {n} is larger than the {MAX_HEADER}-byte limit (corrupt file?)"
        )));
    }
    if n > file_len - 8 {
        return Err(fmt(format!(
            "header length {n} runs past the end of the file ({file_len} bytes): the file is truncated or corrupt"
        )));
    }
    let data_start = 8 + n as usize;
    let header = bytes
        .get(8..data_start)
        .ok_or_else(|| fmt("header out of bounds".into()))?;
    let header =
        std::str::from_utf8(header).map_err(|e| fmt(format!("header is not UTF-8: {e}")))?;
    let json: serde_json::Value = serde_json::from_str(header.trim_end_matches(' '))
        .map_err(|e| fmt(format!("header is not valid JSON: {e}")))?;
    let obj = json
        .as_object()
        .ok_or_else(|| fmt("header is not a JSON object".into()))?;
    let data_len = bytes.len() - data_start;
    let mut tensors = BTreeMap::new();
    for (name, entry) in obj {
        if name == "__metadata__" {
            continue;
        }
        let terr = |m: String| Error::tensor(file, name, m);
        let entry = entry
            .as_object()
            .ok_or_else(|| terr("header entry is not an object".into()))?;
        let dtype_s = entry
            .get("dtype")
            .and_then(|v| v.as_str())
            .ok_or_else(|| terr("missing or non-string `dtype`".into()))?;
        let dtype =
            Dtype::parse(dtype_s).ok_or_else(|| terr(format!("unknown dtype `{dtype_s}`")))?;
        let shape = entry
            .get("shape")
            .and_then(|v| v.as_array())
            .ok_or_else(|| terr("missing or non-array `shape`".into()))?
            .iter()
            .map(|d| d.as_u64().and_then(|d| usize::try_from(d).ok()))
            .collect::<Option<Vec<usize>>>()
            .ok_or_else(|| terr("`shape` must be a list of non-negative integers".into()))?;
        let offs = entry
            .get("data_offsets")
            .and_then(|v| v.as_array())
            .ok_or_else(|| terr("missing or non-array `data_offsets`".into()))?;
        let (begin, end) = match offs.as_slice() {
            [b, e] => match (b.as_u64(), e.as_u64()) {
                (Some(b), Some(e)) => (b, e),
                _ => {
                    return Err(terr(
                        "`data_offsets` must be two non-negative integers".into(),
                    ));
                }
            },
            _ => {
                return Err(terr(format!(
                    "`data_offsets` must have 2 entries, not {}",
                    offs.len()
                )));
            }
        };
        if begin > end {
            return Err(terr(format!("data_offsets [{begin}, {end}] run backwards")));
        }
        if end > data_len as u64 {
            return Err(terr(format!(
                "data_offsets [{begin}, {end}] run past the end of the data ({data_len} bytes): the file is truncated \
                 or corrupt"
            )));
        }
        let want = shape
            .iter()
            .try_fold(dtype.size() as u64, |acc, d| acc.checked_mul(*d as u64))
            .ok_or_else(|| terr(format!("shape {shape:?} is too large")))?;
        if end - begin != want {
            return Err(terr(format!(
                "data_offsets [{begin}, {end}] hold {} bytes, but {dtype_s} × {shape:?} needs {want}",
                end - begin
            )));
        }
        tensors.insert(
            name.clone(),
            TensorInfo {
                dtype,
                shape,
                start: data_start + begin as usize,
                end: data_start + end as usize,
            },
        );
    }
    let mut ranges: Vec<(&String, &TensorInfo)> =
        tensors.iter().filter(|(_, t)| t.end > t.start).collect();
    ranges.sort_by_key(|(_, t)| (t.start, t.end));
    for pair in ranges.windows(2) {
        if let [(a, ta), (b, tb)] = pair
            && tb.start < ta.end
        {
            return Err(Error::tensor(
                file,
                b.as_str(),
                format!(
                    "its data overlaps tensor `{a}` (bytes {}..{} vs {}..{})",
                    tb.start, tb.end, ta.start, ta.end
                ),
            ));
        }
    }
    Ok(tensors)
}

/// Write tensors in the safetensors format (tests and fixtures): `(name, dtype, shape, little-endian bytes)`.
pub fn serialize(tensors: &[(&str, &str, Vec<usize>, Vec<u8>)]) -> Vec<u8> {
    let mut header = serde_json::Map::new();
    let mut offset = 0usize;
    for (name, dtype, shape, data) in tensors {
        header.insert(
            name.to_string(),
            serde_json::json!({"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + data.len()]}),
        );
        offset += data.len();
    }
    let mut h = serde_json::Value::Object(header).to_string().into_bytes();
    while !(8 + h.len()).is_multiple_of(8) {
        h.push(b' ');
    }
    let mut out = (h.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(&h);
    for (_, _, _, data) in tensors {
        out.extend_from_slice(data);
    }
    out
}

/// Little-endian bytes of f32 values (for [`serialize`]).
pub fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}
