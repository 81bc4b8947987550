//! Handcrafted malformed GGUF files: each must be a `Format`/`Tensor` error naming the field, never a panic.

use attn::Error;
use attn::weights::Gguf;

/// A GGUF byte builder: write fields one at a time, so a test can put any value anywhere.
#[derive(Default, Clone)]
struct B(Vec<u8>);

impl B {
    fn header(version: u32, n_tensors: u64, n_kv: u64) -> B {
        let mut b = B::default();
        b.raw(b"GGUF").u32(version).u64(n_tensors).u64(n_kv);
        b
    }
    fn raw(&mut self, x: &[u8]) -> &mut Self {
        self.0.extend_from_slice(x);
        self
    }
    fn u8(&mut self, x: u8) -> &mut Self {
        self.raw(&[x])
    }
    fn u32(&mut self, x: u32) -> &mut Self {
        self.raw(&x.to_le_bytes())
    }
    fn u64(&mut self, x: u64) -> &mut Self {
        self.raw(&x.to_le_bytes())
    }
    fn str(&mut self, s: &str) -> &mut Self {
        self.u64(s.len() as u64).raw(s.as_bytes())
    }
    /// A u32 metadata pair.
    fn kv_u32(&mut self, key: &str, v: u32) -> &mut Self {
        self.str(key).u32(4).u32(v)
    }
    fn kv_str(&mut self, key: &str, v: &str) -> &mut Self {
        self.str(key).u32(8).str(v)
    }
    fn tensor(&mut self, name: &str, dims: &[u64], ty: u32, offset: u64) -> &mut Self {
        self.str(name).u32(dims.len() as u32);
        for &d in dims {
            self.u64(d);
        }
        self.u32(ty).u64(offset)
    }
    /// Pad to `align` and append `n` data bytes.
    fn data(&mut self, align: usize, n: usize) -> &mut Self {
        while !self.0.len().is_multiple_of(align) {
            self.0.push(0);
        }
        self.0.extend(std::iter::repeat_n(0x11, n));
        self
    }
    fn parse(&self) -> attn::Result<Gguf> {
        Gguf::from_bytes(self.0.clone(), "bad.gguf")
    }
}

/// The parse error's text; fails the test on success or on a non-format error.
#[track_caller]
fn format_err(b: &B) -> String {
    match b.parse() {
        Ok(_) => panic!("parsed a bad file"),
        Err(e @ Error::Format { .. }) => {
            let s = e.to_string();
            assert!(s.starts_with("bad.gguf: "), "{s}");
            s
        }
        Err(e) => panic!("not a format error: {e}"),
    }
}

#[track_caller]
fn expect(b: &B, parts: &[&str]) {
    let e = format_err(b);
    for p in parts {
        assert!(e.contains(p), "error {e:?} lacks {p:?}");
    }
}

/// A valid file: two metadata pairs, two tensors (F32 [4, 2] and Q8_0 [32]).
fn valid() -> B {
    let mut b = B::header(3, 2, 2);
    b.kv_str("general.architecture", "llama")
        .kv_u32("llama.block_count", 2);
    b.tensor("a", &[4, 2], 0, 0)
        .tensor("b", &[32], 8, 32)
        .data(32, 32 + 34);
    b
}

#[test]
fn the_valid_base_file_parses() {
    let g = valid().parse().unwrap();
    assert_eq!(g.tensors.len(), 2);
    assert_eq!(g.tensor_f32("a").unwrap().shape(), &[2, 4]);
    assert_eq!(g.tensor_f32("b").unwrap().shape(), &[32]);
    // v2 is the same layout
    let mut v2 = valid();
    v2.0[4] = 2;
    assert_eq!(v2.parse().unwrap().version, 2);
    // no tensors and no metadata is a valid (empty) file
    assert!(B::header(3, 0, 0).parse().is_ok());
    // n_dims 0 is a scalar
    let mut s = B::header(3, 1, 0);
    s.tensor("s", &[], 0, 0).data(32, 4);
    assert_eq!(s.parse().unwrap().tensor_f32("s").unwrap().len(), 1);
}

#[test]
fn bad_magic_and_versions() {
    let mut b = valid();
    b.0[0] = b'X';
    expect(&b, &["magic", "not a GGUF file"]);
    expect(&B(b"GGU".to_vec()), &["magic", "truncated"]);
    expect(&B(Vec::new()), &["magic"]);
    expect(&B::header(1, 0, 0), &["version", "v1"]);
    expect(&B::header(0, 0, 0), &["version", "unknown GGUF version 0"]);
    expect(&B::header(4, 0, 0), &["version", "unknown GGUF version 4"]);
    expect(
        &B::header(3u32.swap_bytes(), 0, 0),
        &["version", "big-endian"],
    );
}

#[test]
fn truncation_at_every_byte_is_an_error() {
    let full = valid();
    let g = full.parse().unwrap();
    let data_end = g
        .tensors
        .iter()
        .map(|t| t.offset + t.n_bytes)
        .max()
        .unwrap() as usize;
    assert_eq!(data_end, full.0.len());
    for n in 0..full.0.len() {
        let e = format_err(&B(full.0[..n].to_vec()));
        assert!(
            ["truncated", "outside the file", "cannot fit", "exceeds"]
                .iter()
                .any(|p| e.contains(p)),
            "{n}: {e}"
        );
    }
}

#[test]
fn huge_counts() {
    expect(&B::header(3, u64::MAX, 0), &["tensor_count", "cannot fit"]);
    expect(
        &B::header(3, 0, u64::MAX),
        &["metadata_kv_count", "cannot fit"],
    );
    // each tensor info takes ≥ 24 bytes: a count that would fit at 1 byte each is still refused
    let mut b = B::header(3, 10, 0);
    b.raw(&[0; 100]);
    expect(&b, &["tensor_count"]);
    // count × minimum size overflowing u64
    expect(&B::header(3, u64::MAX / 13 + 1, 0), &["tensor_count"]);
    expect(&B::header(3, 0, u64::MAX / 13 + 1), &["metadata_kv_count"]);
}

#[test]
fn bad_strings() {
    let mut b = B::header(3, 0, 1);
    b.u64(u64::MAX).raw(b"key").raw(&[0; 16]);
    expect(&b, &["metadata key #0", "string length"]);
    let mut b = B::header(3, 0, 1);
    b.u64(40).raw(b"ke").raw(&[0; 16]);
    expect(&b, &["metadata key #0", "string length 40 exceeds"]);
    let mut b = B::header(3, 0, 1);
    b.str("k").u32(8).u64(u64::MAX - 7);
    expect(&b, &["metadata key #0 `k`", "string length"]);
    let mut b = B::header(3, 0, 1);
    b.u64(2).raw(&[0xC3, 0x28]).u32(4).u32(0);
    expect(&b, &["metadata key #0", "UTF-8"]);
    let mut b = B::header(3, 0, 1);
    b.str("k").u32(8).u64(3).raw(&[b'a', 0xFF, b'b']);
    expect(&b, &["metadata key #0 `k`", "UTF-8"]);
    let mut b = B::header(3, 1, 0);
    b.u64(1)
        .raw(&[0x80])
        .u32(1)
        .u64(4)
        .u32(0)
        .u64(0)
        .data(32, 16);
    expect(&b, &["tensor #0 name", "UTF-8"]);
    let mut b = B::header(3, 0, 1);
    b.str("").u32(4).u32(0);
    expect(&b, &["metadata key #0", "empty key"]);
    // an empty string value is fine
    let mut b = B::header(3, 0, 1);
    b.kv_str("k", "");
    assert_eq!(b.parse().unwrap().get_str("k").unwrap(), "");
}

#[test]
fn bad_metadata_values() {
    let mut b = B::header(3, 0, 2);
    b.kv_u32("general.name", 1).kv_u32("general.name", 2);
    expect(&b, &["metadata key #1 `general.name`", "duplicate key"]);
    let mut b = B::header(3, 0, 1);
    b.str("k").u32(13).u32(0);
    expect(
        &b,
        &["metadata key #0 `k` value type", "unknown value type 13"],
    );
    let mut b = B::header(3, 0, 1);
    b.str("k").u32(7).u8(2);
    expect(&b, &["metadata key #0 `k`", "bool"]);
    // arrays: unknown element type, huge counts, counts whose byte size overflows
    let mut b = B::header(3, 0, 1);
    b.str("k").u32(9).u32(99).u64(1).u32(0);
    expect(&b, &["`k` array element type", "unknown value type 99"]);
    let mut b = B::header(3, 0, 1);
    b.str("k").u32(9).u32(0).u64(u64::MAX);
    expect(&b, &["`k` array length", "cannot fit"]);
    let mut b = B::header(3, 0, 1);
    b.str("k").u32(9).u32(12).u64(u64::MAX / 8 + 1);
    expect(&b, &["`k` array length", "cannot fit"]);
    let mut b = B::header(3, 0, 1);
    b.str("k").u32(9).u32(8).u64(1 << 40).raw(&[0; 64]);
    expect(&b, &["`k` array length"]);
    // a string inside an array, truncated
    let mut b = B::header(3, 0, 1);
    b.str("tokenizer.ggml.tokens")
        .u32(9)
        .u32(8)
        .u64(2)
        .str("a")
        .u64(5)
        .raw(b"ab");
    expect(&b, &["`tokenizer.ggml.tokens`[1]", "string length 5"]);
    // nesting: 4 levels of arrays are accepted, 5 are not
    let nest = |levels: usize| {
        let mut b = B::header(3, 0, 1);
        b.str("k").u32(9);
        for _ in 1..levels {
            b.u32(9).u64(1);
        }
        b.u32(0).u64(1).u8(7);
        b
    };
    assert!(nest(4).parse().is_ok());
    expect(&nest(5), &["metadata key #0 `k`[0][0][0][0]", "nested"]);
    expect(&nest(50), &["nested"]);
}

#[test]
fn bad_alignment() {
    for (a, what) in [(0u32, "0 is not"), (3, "3 is not"), (48, "48 is not")] {
        let mut b = B::header(3, 0, 1);
        b.kv_u32("general.alignment", a);
        expect(&b, &["general.alignment", what]);
    }
    let mut b = B::header(3, 0, 1);
    b.kv_str("general.alignment", "32");
    expect(&b, &["general.alignment", "expected u32", "string"]);
    let mut b = B::header(3, 0, 1);
    b.str("general.alignment").u32(10).u64(1 << 40);
    expect(&b, &["general.alignment"]);
    // a valid custom alignment moves the data section and constrains offsets
    let mut b = B::header(3, 1, 1);
    b.kv_u32("general.alignment", 256)
        .tensor("t", &[4], 0, 0)
        .data(256, 16);
    let g = b.parse().unwrap();
    assert_eq!((g.alignment, g.data_offset % 256), (256, 0));
    let mut b = B::header(3, 1, 1);
    b.kv_u32("general.alignment", 256)
        .tensor("t", &[4], 0, 32)
        .data(256, 64);
    expect(
        &b,
        &[
            "tensor #0 `t` offset",
            "32 is not a multiple of the alignment 256",
        ],
    );
}

#[test]
fn bad_tensor_infos() {
    let one = |name: &str, dims: &[u64], ty: u32, off: u64, data: usize| {
        let mut b = B::header(3, 1, 0);
        b.tensor(name, dims, ty, off).data(32, data);
        b
    };
    expect(
        &one("t", &[1, 1, 1, 1, 1], 0, 0, 4),
        &["tensor #0 `t` n_dims", "5 dimensions"],
    );
    let mut b = B::header(3, 1, 0);
    b.str("t").u32(u32::MAX).raw(&[0; 32]);
    expect(&b, &["tensor #0 `t` n_dims"]);
    expect(
        &one("blk.0.attn_q.weight", &[4, 0], 0, 0, 16),
        &[
            "tensor #0 `blk.0.attn_q.weight` dims[1]",
            "invalid dimension 0",
        ],
    );
    expect(
        &one("t", &[u64::MAX], 0, 0, 16),
        &["tensor #0 `t` dims[0]", "invalid dimension"],
    );
    expect(
        &one("t", &[1 << 63], 0, 0, 16),
        &["dims[0]", "invalid dimension"],
    );
    // a product of valid dims overflowing
    expect(
        &one("t", &[1 << 32, 1 << 32, 1 << 32], 0, 0, 16),
        &["tensor #0 `t`", "element count", "overflows"],
    );
    // element count fits, byte size (× 4 for F32) does not
    expect(
        &one("t", &[1 << 62], 0, 0, 16),
        &["tensor #0 `t`", "byte size overflows"],
    );
    // huge but representable: outside the file
    expect(
        &one("t", &[1 << 40], 0, 0, 16),
        &["tensor #0 `t` offset", "outside the file"],
    );
    expect(
        &one("t", &[33], 8, 0, 64),
        &[
            "tensor #0 `t` dims[0]",
            "not a multiple of the Q8_0 block size 32",
        ],
    );
    expect(
        &one("t", &[4], 4, 0, 16),
        &["tensor #0 `t` type", "unknown tensor type id 4"],
    );
    expect(
        &one("t", &[4], 1000, 0, 16),
        &["tensor #0 `t` type", "unknown tensor type id 1000"],
    );
    // offsets: misaligned, outside the file, overflowing
    expect(
        &one("t", &[4], 0, 4, 64),
        &["tensor #0 `t` offset", "not a multiple of the alignment 32"],
    );
    expect(
        &one("t", &[4], 0, 32, 16),
        &["tensor #0 `t` offset", "outside the file"],
    );
    expect(
        &one("t", &[4], 0, u64::MAX - 31, 16),
        &["tensor #0 `t` offset", "overflows"],
    );
    expect(
        &one("t", &[8], 0, (u64::MAX - 31) & !31, 16),
        &["tensor #0 `t` offset"],
    );
    // data shorter than the tensor by one byte
    expect(
        &one("t", &[4], 0, 0, 15),
        &["tensor #0 `t` offset", "outside the file"],
    );
}

#[test]
fn duplicate_names_and_overlaps() {
    let mut b = B::header(3, 2, 0);
    b.tensor("w", &[4], 0, 0)
        .tensor("w", &[4], 0, 32)
        .data(32, 64);
    expect(&b, &["tensor #1 `w`", "duplicate tensor name"]);
    let mut b = B::header(3, 2, 0);
    b.tensor("x", &[16], 0, 0)
        .tensor("y", &[4], 0, 32)
        .data(32, 64);
    expect(&b, &["tensor #1 `y` offset", "overlaps tensor #0 `x`"]);
    let mut b = B::header(3, 2, 0);
    b.tensor("x", &[4], 0, 0)
        .tensor("y", &[4], 0, 0)
        .data(32, 64);
    expect(&b, &["overlaps"]);
    // adjacent is fine, order in the file does not matter
    let mut b = B::header(3, 2, 0);
    b.tensor("x", &[8], 0, 32)
        .tensor("y", &[8], 0, 0)
        .data(32, 64);
    assert!(b.parse().is_ok());
}

#[test]
fn unsupported_dequantization_and_missing_files() {
    // IQ2_XXS (16) parses (its size is known) but cannot be dequantized: a tensor error naming it
    let mut b = B::header(3, 1, 0);
    b.tensor("q", &[256], 16, 0).data(32, 66);
    let g = b.parse().unwrap();
    match g.tensor_f32("q") {
        Err(e @ Error::Tensor { .. }) => {
            let s = e.to_string();
            assert!(
                s.contains("`q`") && s.contains("IQ2_XXS") && s.contains("not supported"),
                "{s}"
            );
        }
        other => panic!("{other:?}"),
    }
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.gguf");
    assert!(matches!(Gguf::open(&missing), Err(Error::Io { .. })));
    let empty = dir.path().join("empty.gguf");
    std::fs::write(&empty, b"").unwrap();
    let e = Gguf::open(&empty).unwrap_err().to_string();
    assert!(e.contains("empty.gguf") && e.contains("empty"), "{e}");
    let bad = dir.path().join("bad.gguf");
    std::fs::write(&bad, b"GGUF\x03\0\0\0").unwrap();
    let e = Gguf::open(&bad).unwrap_err().to_string();
    assert!(e.contains("bad.gguf") && e.contains("tensor_count"), "{e}");
}

#[test]
fn a_hand_built_tensor_info_cannot_cause_a_huge_allocation_or_read_outside() {
    let g = valid().parse().unwrap();
    let mut info = g.tensor("a").unwrap().clone();
    info.dims = vec![1 << 40, 1 << 20];
    let e = g.dequantize(&info).unwrap_err().to_string();
    assert!(e.contains("`a`") && e.contains("do not match"), "{e}");
    info.dims = vec![u64::MAX, u64::MAX];
    assert_eq!(info.n_elements(), u64::MAX);
    assert!(g.dequantize(&info).is_err());
    let mut info = g.tensor("a").unwrap().clone();
    info.offset = u64::MAX - 4;
    let e = g.dequantize(&info).unwrap_err().to_string();
    assert!(e.contains("outside the file"), "{e}");
}
