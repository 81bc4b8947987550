//! The property of issue 8: more than 10⁵ mutated or truncated copies of the small fixture GGUF and safetensors files
//! are each `Ok` or a named `Err`: never a panic, never a single allocation over [`ALLOC_CAP`] (a counting global
//! allocator records the largest one). Most copies go through the parsers and every tensor read; a share of them
//! through the whole model loader from a file on disk. Deterministic (a fixed-seed generator), about 20 s in the
//! test profile.

mod common;

use attn::weights::Gguf;
use attn::weights::safetensors::SafeTensors;
use std::sync::atomic::Ordering;

#[path = "common/largest_alloc.rs"]
mod largest_alloc;
use largest_alloc::LARGEST;

/// No single allocation may be larger than this while reading a fixture of at most 250 KB (the fixtures' own
/// largest legitimate allocation, a copied file included, is under 1 MiB).
const ALLOC_CAP: usize = 8 << 20;

/// xorshift64*: a fixed-seed generator, so every run tests the same copies.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

const INTERESTING: [u64; 10] = [
    0,
    1,
    5,
    13,
    u32::MAX as u64,
    u32::MAX as u64 + 1,
    1 << 40,
    i64::MAX as u64,
    u64::MAX - 1,
    u64::MAX,
];

/// 1–4 mutations (a random byte, an interesting u32/u64, or for JSON headers a changed digit), mostly inside the
/// first `hot` bytes (where every count, size and offset lives); sometimes a truncation.
fn mutate(rng: &mut Rng, bytes: &mut Vec<u8>, hot: usize) {
    for _ in 0..1 + rng.below(4) {
        let len = if rng.chance(80) {
            hot.min(bytes.len())
        } else {
            bytes.len()
        };
        if len == 0 {
            break;
        }
        let at = rng.below(len);
        match rng.below(4) {
            0 => bytes[at] = rng.next() as u8,
            1 => {
                let v = (INTERESTING[rng.below(INTERESTING.len())] as u32).to_le_bytes();
                for (k, b) in v.iter().enumerate() {
                    if let Some(x) = bytes.get_mut(at + k) {
                        *x = *b;
                    }
                }
            }
            2 => {
                let v = INTERESTING[rng.below(INTERESTING.len())].to_le_bytes();
                for (k, b) in v.iter().enumerate() {
                    if let Some(x) = bytes.get_mut(at + k) {
                        *x = *b;
                    }
                }
            }
            _ => {
                // A digit in a JSON header becomes another digit (shapes, offsets), or a run of nines.
                if let Some(p) = bytes[at..len].iter().position(u8::is_ascii_digit) {
                    let p = at + p;
                    if rng.chance(50) {
                        bytes[p] = b'0' + rng.below(10) as u8;
                    } else {
                        bytes.splice(p..p + 1, *b"99999999999");
                    }
                }
            }
        }
    }
    if rng.chance(25) {
        let cut = rng.below(bytes.len() + 1);
        bytes.truncate(cut);
    }
}

fn read(rel: &str) -> Vec<u8> {
    std::fs::read(common::repo().join(rel)).unwrap()
}

/// Parse a GGUF copy and, when it parses, read every metadata value and dequantize every tensor.
fn exercise_gguf(bytes: Vec<u8>) -> bool {
    match Gguf::from_bytes(bytes, "fuzz.gguf") {
        Ok(g) => {
            let _ = g.metadata().count();
            for t in &g.tensors {
                let _ = g.tensor_f32(&t.name);
            }
            true
        }
        Err(e) => {
            assert!(e.to_string().starts_with("fuzz.gguf: "), "{e}");
            false
        }
    }
}

/// Parse a safetensors copy and, when it parses, read every tensor at its stated shape.
fn exercise_safetensors(bytes: Vec<u8>) -> bool {
    match SafeTensors::from_bytes(bytes, "fuzz.safetensors") {
        Ok(st) => {
            let names: Vec<String> = st.names().map(str::to_string).collect();
            for n in &names {
                if let Some(shape) = st.info(n).map(|t| t.shape.clone()) {
                    let _ = st.weight(n, &shape);
                }
            }
            true
        }
        Err(e) => {
            assert!(e.to_string().starts_with("fuzz.safetensors: "), "{e}");
            false
        }
    }
}

fn check_cap(what: &str) {
    let largest = LARGEST.load(Ordering::Relaxed);
    assert!(
        largest <= ALLOC_CAP,
        "{what}: largest single allocation {largest} bytes > {ALLOC_CAP}"
    );
}

#[test]
fn a_hundred_thousand_mutated_and_truncated_files_are_ok_or_err() {
    let mut rng = Rng(0x5eed_0008_0000_0001);
    let mut cases = 0usize;
    let mut parsed = [0usize; 4];

    // The 2.7 KB GGUF: header, metadata and tensor infos fill its first 1200 bytes.
    let small = read("fixtures/gguf/small.gguf");
    for _ in 0..50_000 {
        let mut b = small.clone();
        mutate(&mut rng, &mut b, 1200);
        parsed[0] += exercise_gguf(b) as usize;
        cases += 1;
    }
    check_cap("small.gguf");

    // The tiny Llama GGUF (248 KB): mutations in its metadata (vocabulary included) and tensor infos.
    let tiny = read("fixtures/tiny-llama.gguf");
    let hot = Gguf::from_bytes(tiny.clone(), "tiny").unwrap().data_offset as usize;
    for _ in 0..10_000 {
        let mut b = tiny.clone();
        mutate(&mut rng, &mut b, hot);
        parsed[1] += exercise_gguf(b) as usize;
        cases += 1;
    }
    check_cap("tiny-llama.gguf");

    // The tiny BERT and GPT-2 safetensors: an 8-byte length, then a JSON header of names, shapes and offsets.
    for (k, rel) in [
        "fixtures/tiny-bert/model.safetensors",
        "fixtures/tiny-gpt2/model.safetensors",
    ]
    .iter()
    .enumerate()
    {
        let st = read(rel);
        let hot = 8 + u64::from_le_bytes(st[..8].try_into().unwrap()) as usize;
        for _ in 0..21_000 {
            let mut b = st.clone();
            mutate(&mut rng, &mut b, hot);
            parsed[2 + k] += exercise_safetensors(b) as usize;
            cases += 1;
        }
        check_cap(rel);
    }

    // Whole models from files on disk (config, weights, tokenizer together): the GGUF loader and the BERT folder.
    let dir = tempfile::tempdir().unwrap();
    let gguf_path = dir.path().join("m.gguf");
    let folder = dir.path().join("bert");
    std::fs::create_dir(&folder).unwrap();
    for f in ["config.json", "tokenizer.json"] {
        std::fs::copy(
            common::repo().join("fixtures/tiny-bert").join(f),
            folder.join(f),
        )
        .unwrap();
    }
    let bert = read("fixtures/tiny-bert/model.safetensors");
    let bert_hot = 8 + u64::from_le_bytes(bert[..8].try_into().unwrap()) as usize;
    let tb = attn::model::TextbookConfig::default();
    let mut loaded = 0;
    for i in 0..1_000 {
        let (path, bytes) = if i % 2 == 0 {
            let mut b = tiny.clone();
            mutate(&mut rng, &mut b, hot);
            (gguf_path.clone(), b)
        } else {
            let mut b = bert.clone();
            mutate(&mut rng, &mut b, bert_hot);
            (folder.join("model.safetensors"), b)
        };
        std::fs::write(&path, &bytes).unwrap();
        let spec = if i % 2 == 0 { &gguf_path } else { &folder };
        if let Ok(m) = attn::model::load(spec.to_str().unwrap(), &tb) {
            loaded += 1;
            // A model that loads also runs (or fails with an error) on a short input.
            let _ = attn::model::run(m.as_ref(), "hello world", None, &Default::default());
        }
        cases += 1;
    }
    check_cap("whole models");

    assert!(cases >= 100_000, "{cases} cases");
    // The generator must reach both outcomes in every family (else it tests nothing but one early check).
    for (k, p) in parsed.iter().enumerate() {
        assert!(*p > 0, "family {k}: no copy parsed");
    }
    assert!(loaded > 0, "no mutated model loaded");
    eprintln!("{cases} copies; parsed {parsed:?}; {loaded} whole models loaded");
}
