//! The GGUF reader against the `gguf` Python package: dequantization of every supported format on random blocks
//! (fixtures/dequant, made by scripts/golden/make_dequant_fixtures.py) and a small file written by gguf.GGUFWriter
//! (fixtures/gguf/small.gguf with its expected contents in small.json).

mod common;

use attn::weights::dequant::{self, GgmlType};
use attn::weights::{Gguf, GgufValue};
use serde_json::Value;

fn fixture(rel: &str) -> std::path::PathBuf {
    common::repo().join("fixtures").join(rel)
}

#[test]
fn dequantization_matches_the_python_reference_bit_for_bit() {
    use GgmlType::*;
    for ty in [
        F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K,
    ] {
        let bytes = std::fs::read(fixture(&format!("dequant/{ty}.bin"))).unwrap();
        let want = common::Npy::read(&fixture(&format!("dequant/{ty}.npy"))).f32();
        let n = want.len();
        assert!(n >= 512, "{ty}: fixture too small");
        let mut got = vec![f32::NAN; n];
        dequant::dequantize(ty, &bytes, &mut got).unwrap();
        let mut mismatches = 0;
        for (i, (g, w)) in got.iter().zip(want.iter()).enumerate() {
            // bit-exact, except that +0 and -0 are accepted as equal
            if g.to_bits() != w.to_bits() && g != w {
                if mismatches < 5 {
                    eprintln!("{ty}[{i}]: got {g:e}, want {w:e}");
                }
                mismatches += 1;
            }
        }
        assert_eq!(mismatches, 0, "{ty}: {mismatches} of {n} values differ");
        // one block short or one byte off is a size error, not a panic
        let bs = ty.block_size();
        assert!(
            dequant::dequantize(ty, &bytes, &mut got[..n - bs]).is_err(),
            "{ty}"
        );
        assert!(
            dequant::dequantize(ty, &bytes[1..], &mut got).is_err(),
            "{ty}"
        );
    }
}

fn value_matches(got: &GgufValue, types: &[Value], want: &Value) -> bool {
    let ty = types.first().and_then(Value::as_str).unwrap_or("");
    match (ty, got) {
        ("UINT8", GgufValue::U8(v)) => want.as_u64() == Some(*v as u64),
        ("INT8", GgufValue::I8(v)) => want.as_i64() == Some(*v as i64),
        ("UINT16", GgufValue::U16(v)) => want.as_u64() == Some(*v as u64),
        ("INT16", GgufValue::I16(v)) => want.as_i64() == Some(*v as i64),
        ("UINT32", GgufValue::U32(v)) => want.as_u64() == Some(*v as u64),
        ("INT32", GgufValue::I32(v)) => want.as_i64() == Some(*v as i64),
        ("UINT64", GgufValue::U64(v)) => want.as_u64() == Some(*v),
        ("INT64", GgufValue::I64(v)) => want.as_i64() == Some(*v),
        ("FLOAT32", GgufValue::F32(v)) => want.as_f64() == Some(*v as f64),
        ("FLOAT64", GgufValue::F64(v)) => want.as_f64() == Some(*v),
        ("BOOL", GgufValue::Bool(v)) => want.as_bool() == Some(*v),
        ("STRING", GgufValue::String(v)) => want.as_str() == Some(v.as_str()),
        ("ARRAY", GgufValue::Array(items)) => {
            let Some(w) = want.as_array() else {
                return false;
            };
            w.len() == items.len()
                && items
                    .iter()
                    .zip(w)
                    .all(|(g, w)| value_matches(g, &types[1..], w))
        }
        _ => false,
    }
}

fn err<T: std::fmt::Debug>(r: attn::Result<T>) -> String {
    r.unwrap_err().to_string()
}

#[test]
fn small_file_parses_with_every_value_right() {
    let path = fixture("gguf/small.gguf");
    let want: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("gguf/small.json")).unwrap())
            .unwrap();
    let g = Gguf::open(&path).unwrap();
    assert_eq!(g.version, 3);
    assert_eq!(g.alignment, 64);
    assert!(g.file_name().ends_with("small.gguf"));

    let meta: Vec<_> = g.metadata().collect();
    let wmeta = want["metadata"].as_array().unwrap();
    assert_eq!(meta.len(), wmeta.len());
    assert_eq!(g.metadata_len(), wmeta.len());
    for ((k, v), w) in meta.iter().zip(wmeta) {
        assert_eq!(*k, w["key"].as_str().unwrap(), "metadata order");
        let types = w["type"].as_array().unwrap();
        assert!(
            value_matches(v, types, &w["value"]),
            "{k}: {v:?} vs {}",
            w["value"]
        );
        assert_eq!(g.get(k), Some(*v));
    }

    // typed getters
    assert_eq!(g.get_str("general.architecture").unwrap(), "testarch");
    assert_eq!(g.get_u32("test.u8").unwrap(), 200);
    assert_eq!(g.get_u32("test.u16").unwrap(), 60000);
    assert_eq!(g.get_u32("test.u32").unwrap(), 4_000_000_000);
    assert_eq!(g.get_u64("test.u64").unwrap(), 18_000_000_000_000_000_000);
    assert_eq!(g.get_i64("test.i64").unwrap(), -9_000_000_000_000_000_000);
    assert_eq!(g.get_f32("test.f32").unwrap(), 0.1);
    assert_eq!(g.get_f32("test.f64").unwrap(), std::f64::consts::E as f32);
    assert!(g.get_bool("test.bool_true").unwrap());
    assert!(!g.get_bool("test.bool_false").unwrap());
    assert_eq!(g.get_str("test.string").unwrap(), "héllo, 세계 🌍");
    assert_eq!(
        g.get_str_array("test.str_array").unwrap(),
        ["a", "", "토큰", "Ġthe", "🙂"]
    );
    assert_eq!(
        g.get_i32_array("test.i32_array").unwrap(),
        [1, -2, 3, i32::MAX]
    );
    assert_eq!(g.get_i32_array("test.u8_array").unwrap(), [0, 1, 255]);
    assert_eq!(
        g.get_f32_array("test.f32_array").unwrap(),
        [0.5, -1.25, 3.0e-5]
    );
    assert_eq!(g.get_array("test.nested").unwrap().len(), 3);

    // getters that must refuse, naming the key and what was found
    let e = err(g.get_u32("test.i8"));
    assert!(e.contains("`test.i8`") && e.contains("i8 -100"), "{e}");
    let e = err(g.get_u32("test.u64"));
    assert!(e.contains("`test.u64`") && e.contains("u64"), "{e}");
    let e = err(g.get_u64("test.i64"));
    assert!(e.contains("`test.i64`"), "{e}");
    let e = err(g.get_str("test.u32"));
    assert!(
        e.contains("`test.u32`") && e.contains("expected string") && e.contains("u32"),
        "{e}"
    );
    let e = err(g.get_f32("test.string"));
    assert!(
        e.contains("`test.string`") && e.contains("found string"),
        "{e}"
    );
    let e = err(g.get_bool("test.u8"));
    assert!(e.contains("`test.u8`") && e.contains("bool"), "{e}");
    let e = err(g.get_str_array("test.i32_array"));
    assert!(
        e.contains("`test.i32_array`[0]") && e.contains("i32"),
        "{e}"
    );
    let e = err(g.get_i32_array("test.str_array"));
    assert!(e.contains("`test.str_array`[0]"), "{e}");
    let e = err(g.get_str_array("test.string"));
    assert!(
        e.contains("`test.string`") && e.contains("found string"),
        "{e}"
    );
    let e = err(g.get_u32("no.such.key"));
    assert!(e.contains("`no.such.key`") && e.contains("missing"), "{e}");
    assert!(g.get("no.such.key").is_none());

    // tensors: infos and dequantized values
    let wt = want["tensors"].as_array().unwrap();
    assert_eq!(g.tensors.len(), wt.len());
    for (t, w) in g.tensors.iter().zip(wt) {
        assert_eq!(t.name, w["name"].as_str().unwrap());
        let dims: Vec<u64> = w["dims"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_u64().unwrap())
            .collect();
        assert_eq!(t.dims, dims, "{}", t.name);
        assert_eq!(t.ty.name(), w["type"].as_str().unwrap(), "{}", t.name);
        assert_eq!(t.offset, w["offset"].as_u64().unwrap(), "{}", t.name);
        assert_eq!(t.n_bytes, w["n_bytes"].as_u64().unwrap(), "{}", t.name);
        assert_eq!(t.offset % 64, 0);
        let a = g.tensor_f32(&t.name).unwrap();
        let shape: Vec<usize> = w["shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_u64().unwrap() as usize)
            .collect();
        assert_eq!(a.shape(), shape.as_slice(), "{}", t.name);
        let vals: Vec<f32> = w["values"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap() as f32)
            .collect();
        assert_eq!(a.iter().copied().collect::<Vec<_>>(), vals, "{}", t.name);
        assert_eq!(g.tensor(&t.name), Some(t));
    }
    // a GGUF [ne0=5, ne1=3] F32 matrix is row-major [3, 5]
    assert_eq!(g.tensor_f32("t.f32").unwrap().shape(), &[3, 5]);
    let e = g.tensor_f32("t.missing").unwrap_err().to_string();
    assert!(e.contains("t.missing") && e.contains("not found"), "{e}");

    // the same bytes through from_bytes
    let bytes = std::fs::read(&path).unwrap();
    let g2 = Gguf::from_bytes(bytes, "mem.gguf").unwrap();
    assert_eq!(g2.file_name(), "mem.gguf");
    assert_eq!(g2.tensors, g.tensors);
    assert_eq!(g2.metadata().count(), g.metadata().count());
}
