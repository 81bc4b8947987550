//! The quantized matrix kernel on the Python reference blocks (fixtures/dequant, made by
//! scripts/golden/make_dequant_fixtures.py with the `gguf` package): the rows it decodes are the reference's f32
//! values bit for bit, and `x · Wᵀ` equals the product with those values (dequantize, pack, multiply) to rounding.

mod common;

use attn::numeric::packed::PackedMatrix;
use attn::numeric::quant::{GgmlType, QuantMatrix, SharedBytes};
use ndarray::Array2;

#[test]
fn quant_matrices_of_the_reference_blocks_multiply_the_reference_values() {
    use GgmlType::*;
    for ty in [F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, Q6_K] {
        let dir = common::repo().join("fixtures/dequant");
        let bytes = std::fs::read(dir.join(format!("{ty}.bin"))).unwrap();
        let want = common::Npy::read(&dir.join(format!("{ty}.npy"))).f32();
        let want: Vec<f32> = want.iter().copied().collect();
        // as many rows of 256 columns as the fixture holds (every type's block divides 256)
        let k = 256;
        let m = want.len() / k;
        assert!(m >= 2, "{ty}: fixture too small");
        let row_bytes = k / ty.block_size() * ty.type_size();
        let q = QuantMatrix::new(
            ty,
            m,
            k,
            SharedBytes::from_vec(bytes[..m * row_bytes].to_vec()),
        )
        .unwrap();
        let w = Array2::from_shape_vec((m, k), want[..m * k].to_vec()).unwrap();
        let decoded = q.to_f32();
        for (i, (a, b)) in decoded.iter().zip(w.iter()).enumerate() {
            assert!(
                a.to_bits() == b.to_bits() || a == b,
                "{ty}[{i}]: {a} vs {b}"
            );
        }
        let packed = PackedMatrix::new(&w);
        for n in [1usize, 3, 8, 21] {
            let x =
                Array2::from_shape_fn((n, k), |(i, j)| ((i * 13 + j * 7) % 17) as f32 * 0.1 - 0.8);
            let (got, want) = (q.matmul_t(&x.view()), packed.matmul_t(&x.view()));
            // (the random F16/BF16 fixtures hold some infinities and NaNs: those rows must agree in kind)
            let scale = want
                .iter()
                .filter(|v| v.is_finite())
                .fold(0f32, |a, v| a.max(v.abs()))
                .max(1e-6);
            for (a, b) in got.iter().zip(want.iter()) {
                let same = a == b || (a.is_nan() && b.is_nan()) || (a - b).abs() <= 2e-6 * scale;
                assert!(same, "{ty} n={n}: {a} vs {b}");
            }
        }
    }
}
