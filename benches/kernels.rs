//! The numeric kernels on SmolLM2/MiniLM shapes: the f32 pack-once matrix kernel against the quantized kernels
//! (blocks decoded inside the kernel), at 3, 39 and 115 tokens.
//! `cargo bench --bench kernels -- --warm-up-time 1 --measurement-time 3`

use attn::numeric::packed::PackedMatrix;
use attn::numeric::quant::{GgmlType, QuantMatrix, SharedBytes};
use criterion::{Criterion, criterion_group, criterion_main};
use half::f16;
use ndarray::Array2;
use std::hint::black_box;

/// Random valid blocks (finite f16 scales at the start of each block, as Q4_0/Q4_1/Q8_0/Q4_K store them).
fn blocks(ty: GgmlType, n_blocks: usize) -> Vec<u8> {
    let mut s = 0x2545_F491_4F6C_DD1Du64;
    let ts = ty.type_size();
    let mut b: Vec<u8> = (0..n_blocks * ts)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s as u8
        })
        .collect();
    for blk in b.chunks_exact_mut(ts) {
        blk[0..2].copy_from_slice(&f16::from_f32(0.01).to_bits().to_le_bytes());
        blk[2..4].copy_from_slice(&f16::from_f32(-0.02).to_bits().to_le_bytes());
    }
    b
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("matmul_t");
    g.sample_size(20);
    for (m, k) in [(1536usize, 576usize), (576, 1536)] {
        let mut w = Array2::<f32>::zeros((m, k));
        for ty in [GgmlType::Q4_1, GgmlType::Q8_0, GgmlType::Q4_K] {
            let q = QuantMatrix::new(
                ty,
                m,
                k,
                SharedBytes::from_vec(blocks(ty, m * k / ty.block_size())),
            )
            .expect("matrix");
            w = q.to_f32();
            for n in [1usize, 3, 7, 8, 16, 39, 115] {
                let x = Array2::from_shape_fn((n, k), |(i, j)| {
                    ((i * 31 + j * 17) % 23) as f32 * 0.05 - 0.5
                });
                g.bench_function(format!("{ty} {m}x{k}, {n} tokens"), |b| {
                    b.iter(|| black_box(q.matmul_t(&x.view())))
                });
            }
        }
        let p = PackedMatrix::new(&w);
        for n in [3usize, 39, 115] {
            let x = Array2::from_shape_fn((n, k), |(i, j)| {
                ((i * 31 + j * 17) % 23) as f32 * 0.05 - 0.5
            });
            g.bench_function(format!("packed f32 {m}x{k}, {n} tokens"), |b| {
                b.iter(|| black_box(p.matmul_t(&x.view())))
            });
        }
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
