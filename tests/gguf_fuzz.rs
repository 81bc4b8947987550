//! Property tests: truncated and mutated copies of a valid GGUF file parse to `Ok` or `Err`, never panic, and never
//! make a large allocation. A counting global allocator records the largest single allocation.

mod common;

use attn::weights::Gguf;
use proptest::prelude::*;
use std::sync::atomic::Ordering;

#[path = "common/largest_alloc.rs"]
mod largest_alloc;
use largest_alloc::LARGEST;

/// No single allocation may exceed this while parsing a ~3 KB file (and dequantizing its tensors).
const ALLOC_LIMIT: usize = 1 << 20;

fn small() -> Vec<u8> {
    std::fs::read(common::repo().join("fixtures/gguf/small.gguf")).unwrap()
}

/// Parse, and when that succeeds read every metadata value and dequantize every tensor.
fn exercise(bytes: Vec<u8>) -> bool {
    match Gguf::from_bytes(bytes, "fuzz.gguf") {
        Ok(g) => {
            let _ = g.metadata().count();
            for t in &g.tensors {
                // Ok, or an error (unsupported type); never a panic
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

#[test]
fn every_prefix_is_ok_or_err_and_short_ones_are_err() {
    let full = small();
    let g = Gguf::from_bytes(full.clone(), "small").unwrap();
    let data_end = g
        .tensors
        .iter()
        .map(|t| t.offset + t.n_bytes)
        .max()
        .unwrap() as usize;
    for n in 0..=full.len() {
        let ok = exercise(full[..n].to_vec());
        assert_eq!(ok, n >= data_end, "prefix of {n} bytes");
    }
    let largest = LARGEST.load(Ordering::Relaxed);
    assert!(largest <= ALLOC_LIMIT, "largest allocation {largest} bytes");
}

#[derive(Debug, Clone)]
enum Mutation {
    Byte(usize, u8),
    U32(usize, u32),
    U64(usize, u64),
}

fn mutation(len: usize) -> impl Strategy<Value = Mutation> {
    let huge = prop_oneof![
        Just(u64::MAX),
        Just(u64::MAX - 1),
        Just(1u64 << 63),
        Just(i64::MAX as u64),
        Just(1u64 << 32),
        Just(u32::MAX as u64 + 1),
        Just(0u64),
        any::<u64>(),
    ];
    let small32 = prop_oneof![
        Just(0u32),
        Just(5),
        Just(13),
        Just(u32::MAX),
        0u32..64,
        any::<u32>()
    ];
    prop_oneof![
        (0..len, any::<u8>()).prop_map(|(i, b)| Mutation::Byte(i, b)),
        (0..len, small32).prop_map(|(i, v)| Mutation::U32(i, v)),
        (0..len, huge).prop_map(|(i, v)| Mutation::U64(i, v)),
    ]
}

fn apply(bytes: &mut [u8], m: &Mutation) {
    let put = |bytes: &mut [u8], at: usize, v: &[u8]| {
        for (k, b) in v.iter().enumerate() {
            if let Some(x) = bytes.get_mut(at + k) {
                *x = *b;
            }
        }
    };
    match *m {
        Mutation::Byte(i, b) => put(bytes, i, &[b]),
        Mutation::U32(i, v) => put(bytes, i, &v.to_le_bytes()),
        Mutation::U64(i, v) => put(bytes, i, &v.to_le_bytes()),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, failure_persistence: None, ..ProptestConfig::default() })]

    /// Mutations aimed at the header/metadata/tensor-info region (where every count and size lives), at any byte,
    /// and together with a truncation.
    #[test]
    fn mutated_copies_are_ok_or_err(
        muts in prop::collection::vec(mutation(1200), 1..6),
        anywhere in prop::collection::vec(mutation(2688), 0..3),
        cut in prop::option::of(0usize..2688),
    ) {
        let mut bytes = small();
        for m in muts.iter().chain(&anywhere) {
            apply(&mut bytes, m);
        }
        if let Some(c) = cut {
            bytes.truncate(c);
        }
        exercise(bytes);
        let largest = LARGEST.load(Ordering::Relaxed);
        prop_assert!(largest <= ALLOC_LIMIT, "largest allocation {} bytes", largest);
    }
}
