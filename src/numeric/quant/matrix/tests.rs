use super::*;
use crate::numeric::packed::PackedMatrix;
use crate::numeric::quant::decode::tests::random_blocks;
use crate::numeric::quant::decode_portable;

fn matrix(ty: GgmlType, m: usize, k: usize, seed: u64) -> QuantMatrix {
    let blocks = m * k / ty.block_size();
    QuantMatrix::new(
        ty,
        m,
        k,
        SharedBytes::from_vec(random_blocks(ty, blocks, seed)),
    )
    .unwrap()
}

fn input(n: usize, k: usize) -> Array2<f32> {
    Array2::from_shape_fn((n, k), |(i, j)| {
        ((i * 31 + j * 17) % 23) as f32 * 0.05 - 0.5
    })
}

/// Dequantize with the portable decoders, pack, multiply: what the loader did before.
fn reference(q: &QuantMatrix, x: &Array2<f32>) -> Array2<f32> {
    let (m, k) = q.dim();
    let mut w = vec![0f32; m * k];
    decode_portable(q.ty(), q.data.bytes(), &mut w).unwrap();
    let w = Array2::from_shape_vec((m, k), w).unwrap();
    PackedMatrix::new(&w).matmul_t(&x.view())
}

fn assert_close(got: &Array2<f32>, want: &Array2<f32>, what: &str) {
    assert_eq!(got.dim(), want.dim(), "{what}");
    let scale = want.iter().fold(0f32, |a, v| a.max(v.abs())).max(1e-6);
    for ((i, a), b) in got.indexed_iter().zip(want.iter()) {
        assert!(
            (a - b).abs() <= 2e-6 * scale + 1e-6 * b.abs(),
            "{what} at {i:?}: {a} vs {b} (scale {scale})"
        );
    }
}

#[test]
fn every_type_and_shape_matches_dequantize_then_pack() {
    use GgmlType::*;
    for ty in [
        F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K,
    ] {
        let k0 = ty.block_size().max(32);
        for (m, k) in [(1, k0), (5, 2 * k0), (37, 3 * k0), (64, k0)] {
            let q = matrix(ty, m, k, (m * 131 + k) as u64);
            for n in [1, 2, 3, 4, 7, 8, 13, 20] {
                let x = input(n, k);
                assert_close(
                    &q.matmul_t(&x.view()),
                    &reference(&q, &x),
                    &format!("{ty} {n}×{k}×{m}"),
                );
            }
        }
    }
}

#[test]
fn decoded_rows_are_the_dequantized_values() {
    let q = matrix(GgmlType::Q4_1, 9, 64, 5);
    let mut all = vec![0f32; 9 * 64];
    decode_portable(GgmlType::Q4_1, q.data.bytes(), &mut all).unwrap();
    let rows = q.rows_f32(&[8, 0, 3]);
    for (r, want) in [8usize, 0, 3].iter().zip(rows.rows()) {
        for (a, b) in all[r * 64..(r + 1) * 64].iter().zip(want.iter()) {
            assert_eq!(a.to_bits(), b.to_bits());
        }
    }
    assert_eq!(q.to_f32().as_slice().unwrap(), &all[..]);
    // selecting rows reorders them (un-permuting Q/K heads)
    let sel = q.select_rows(&[2, 1]);
    assert_eq!(sel.dim(), (2, 64));
    assert_eq!(sel.to_f32().row(0), q.to_f32().row(2));
    assert_eq!(sel.to_f32().row(1), q.to_f32().row(1));
}

#[test]
fn the_portable_dot_kernel_agrees() {
    let k = 72;
    let x = input(3, k);
    let w = input(4, k).mapv(|v| v * 0.7 + 0.1);
    let mut res = [[0f32; ROWS]; TOKENS];
    let tile = Tile {
        x: x.as_slice().unwrap(),
        r: 3,
        k,
        w: w.as_slice().unwrap(),
        c: 4,
    };
    dot_portable(&tile, &mut res);
    let want = x.dot(&w.t());
    for t in 0..3 {
        for j in 0..4 {
            assert!((res[t][j] - want[[t, j]]).abs() < 1e-5);
        }
    }
}

#[test]
fn bad_sizes_and_types_are_errors() {
    let b = || SharedBytes::from_vec(vec![0u8; 40]);
    assert!(QuantMatrix::new(GgmlType::Q4_0, 2, 32, b()).is_err()); // 36 bytes needed
    assert!(QuantMatrix::new(GgmlType::Q4_0, 1, 40, b()).is_err()); // not whole blocks
    assert!(QuantMatrix::new(GgmlType::IQ2_XXS, 1, 256, b()).is_err());
    assert!(QuantMatrix::new(GgmlType::F32, 2, 5, b()).is_ok());
    let owner: Arc<dyn AsRef<[u8]> + Send + Sync> = Arc::new(vec![1u8; 10]);
    assert!(SharedBytes::new(owner.clone(), 2..11).is_none());
    assert_eq!(SharedBytes::new(owner, 2..5).unwrap().bytes(), &[1, 1, 1]);
}
