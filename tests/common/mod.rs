//! Helpers shared by the integration tests: a small .npy reader and the real-model switches.
#![allow(dead_code)]

pub mod tmux;

use attn::model::Model;
use attn::trace::Trace;
use ndarray::{ArrayD, IxDyn};
use std::path::{Path, PathBuf};

/// Read a little-endian float32 (`<f4`) or int64/int32 C-order .npy file into f32/i64 values.
pub struct Npy {
    pub shape: Vec<usize>,
    pub descr: String,
    pub data: Vec<u8>,
}

impl Npy {
    pub fn read(path: &Path) -> Npy {
        let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        Npy::parse(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    pub fn parse(bytes: &[u8]) -> Result<Npy, String> {
        if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
            return Err("not an .npy file".into());
        }
        let (hlen, start) = match bytes[6] {
            1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
            _ => (
                u32::from_le_bytes(bytes[8..12].try_into().unwrap()) as usize,
                12,
            ),
        };
        let header = std::str::from_utf8(&bytes[start..start + hlen]).map_err(|e| e.to_string())?;
        if header.contains("'fortran_order': True") {
            return Err("fortran order is not supported".into());
        }
        let descr = header
            .split("'descr':")
            .nth(1)
            .and_then(|s| s.split('\'').nth(1))
            .ok_or("no descr")?
            .to_string();
        let shape_str = header
            .split("'shape':")
            .nth(1)
            .and_then(|s| s.split('(').nth(1))
            .and_then(|s| s.split(')').next())
            .ok_or("no shape")?;
        let shape: Vec<usize> = shape_str
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| s.parse().map_err(|_| format!("bad dim {s}")))
            .collect::<Result<_, _>>()?;
        Ok(Npy {
            shape,
            descr,
            data: bytes[start + hlen..].to_vec(),
        })
    }

    pub fn f32(&self) -> ArrayD<f32> {
        let v: Vec<f32> = match self.descr.as_str() {
            "<f4" => self
                .data
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
                .collect(),
            "<f8" => self
                .data
                .chunks_exact(8)
                .map(|c| f64::from_le_bytes(c.try_into().unwrap()) as f32)
                .collect(),
            d => panic!("f32(): unsupported dtype {d}"),
        };
        ArrayD::from_shape_vec(IxDyn(&self.shape), v).expect("shape matches data")
    }

    pub fn i64(&self) -> Vec<i64> {
        match self.descr.as_str() {
            "<i8" => self
                .data
                .chunks_exact(8)
                .map(|c| i64::from_le_bytes(c.try_into().unwrap()))
                .collect(),
            "<i4" => self
                .data
                .chunks_exact(4)
                .map(|c| i32::from_le_bytes(c.try_into().unwrap()) as i64)
                .collect(),
            d => panic!("i64(): unsupported dtype {d}"),
        }
    }
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The models directory the tests use: $ATTN_MODELS_DIR, else <repo>/models.
pub fn models_dir() -> PathBuf {
    std::env::var_os("ATTN_MODELS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("models"))
}

/// `Some(path)` when the real model is present. When it is missing: `None` (the test returns early, printing why),
/// unless ATTN_REQUIRE_MODELS=1 (as .ci/run sets after scripts/fetch-models), where a missing model fails.
pub fn real_model(rel: &str) -> Option<PathBuf> {
    let p = models_dir().join(rel);
    if p.exists() {
        return Some(p);
    }
    if std::env::var("ATTN_REQUIRE_MODELS").is_ok_and(|v| v == "1") {
        panic!(
            "ATTN_REQUIRE_MODELS=1 but {} is missing: run scripts/fetch-models",
            p.display()
        );
    }
    eprintln!(
        "note: {} is missing; skipping the real-model check (run scripts/fetch-models)",
        p.display()
    );
    None
}

/// Max |a - b| over two arrays of the same shape.
pub fn max_abs_diff(a: &ArrayD<f32>, b: &ArrayD<f32>) -> f32 {
    assert_eq!(a.shape(), b.shape(), "shapes differ");
    a.iter()
        .zip(b.iter())
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// A JSON file, parsed.
pub fn read_json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The integers of a JSON array (`ids`), or of one field of each object in it (`Some("id")` over tokens.json).
pub fn json_u64s(v: &serde_json::Value, field: Option<&str>) -> Vec<u64> {
    v.as_array()
        .expect("a JSON array")
        .iter()
        .map(|x| {
            field
                .map_or(x, |f| &x[f])
                .as_u64()
                .expect("an unsigned integer")
        })
        .collect()
}

/// Run the `attn` binary of this build with no real models in reach (`ATTN_MODELS_DIR` points nowhere).
pub fn attn_without_models(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_attn"))
        .args(args)
        .env("ATTN_MODELS_DIR", "/nonexistent-attn-models")
        .output()
        .expect("run attn")
}

/// [`attn_without_models`] that must succeed: its standard output.
pub fn attn_without_models_ok(args: &[&str]) -> String {
    succeeded(attn_without_models(args), args)
}

/// Run the `attn` binary of this build (models found as a user's would be).
pub fn run_attn(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_attn"))
        .args(args)
        .output()
        .expect("run attn")
}

/// [`run_attn`] that must succeed: its standard output.
pub fn attn_ok(args: &[&str]) -> String {
    succeeded(run_attn(args), args)
}

fn succeeded(o: std::process::Output, args: &[&str]) -> String {
    assert!(
        o.status.success(),
        "attn {args:?} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).expect("utf-8 stdout")
}

/// Every attention matrix of `got` (grown by KV-cache steps) equals the full run `want` within 1e-4; its streams and
/// the logits of every position within 1e-4 of their largest magnitude (at least 1: SmolLM2's streams reach the
/// hundreds, its logits ~20, where one-row and many-row products round differently); the same top next tokens.
pub fn assert_same_run(got: &Trace, want: &Trace, m: &dyn Model) {
    let within = |a: &ArrayD<f32>, b: &ArrayD<f32>, tol: f32, what: &str| {
        assert_eq!(a.shape(), b.shape(), "{what}");
        let d = a.iter().zip(b).fold(0f32, |d, (x, y)| d.max((x - y).abs()));
        assert!(d <= tol, "{what}: max |Δ| {d} > {tol}");
    };
    let close = |a: &ArrayD<f32>, b: &ArrayD<f32>, what: &str| within(a, b, 1e-4, what);
    assert_eq!(got.tokens, want.tokens);
    assert_eq!(got.layers.len(), want.layers.len());
    for (l, (a, b)) in got.layers.iter().zip(&want.layers).enumerate() {
        let (a, b) = (a.attention.clone().unwrap(), b.attention.clone().unwrap());
        close(
            &a.into_dyn(),
            &b.into_dyn(),
            &format!("attention of layer {l}"),
        );
    }
    let relative = |a: ArrayD<f32>, b: ArrayD<f32>, what: &str| {
        let scale = b.iter().fold(1f32, |m, v| m.max(v.abs()));
        within(&a, &b, 1e-4 * scale, what);
    };
    for (l, (a, b)) in got.hidden.iter().zip(&want.hidden).enumerate() {
        relative(
            a.clone().into_dyn(),
            b.clone().into_dyn(),
            &format!("stream {l}"),
        );
    }
    let logits = |t: &Trace| m.engine().logits(t.hidden.last().unwrap()).unwrap();
    relative(logits(got).into_dyn(), logits(want).into_dyn(), "logits");
    let top = |t: &Trace| -> Vec<Vec<u32>> {
        let nt = t.next_tokens.as_ref().unwrap();
        nt.iter()
            .map(|p| p.iter().map(|c| c.id).collect())
            .collect()
    };
    assert_eq!(top(got), top(want));
}
