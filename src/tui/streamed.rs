//! Long inputs in the explorer without every attention matrix: each head's `n × n` is recomputed alone from the
//! cached residual stream ([`crate::model::head_attention`]) — for the grid, or reduced at once to what the overview
//! needs (its statistics and a thumbnail, the block mean of its matrix on a `side × side` grid) and dropped. The
//! explorer asks for these one head at a time ([`crate::tui::event::Job::Head`]), so a head the user pages to waits
//! for at most one thumbnail; [`stream_heads`] runs the whole pass at once.

use crate::analysis::{HeadStats, head_stats};
use crate::model::{Model, head_attention};
use crate::trace::Trace;
use crate::tui::event::{HeadPart, HeadWant};
use ndarray::{Array2, ArrayView2};
use std::sync::Arc;

/// What the overview shows of every head of a trace that did not keep its attention.
#[derive(Debug, Clone)]
pub struct Streamed {
    /// `stats[layer][head]`, equal to [`head_stats`] of the full matrix.
    pub stats: Vec<Vec<HeadStats>>,
    /// `thumbs[layer][head]`: [`block_mean`] of the full matrix.
    pub thumbs: Vec<Vec<Array2<f32>>>,
}

/// The block means of `m` `[n, k]` on a grid of `min(side, n) × min(side, k)` cells: cell `(r, c)` averages rows
/// `⌊r·n/rows⌋..⌊(r+1)·n/rows⌋` and the columns likewise, so every row and column of `m` falls in exactly one cell.
pub fn block_mean(m: &ArrayView2<f32>, side: usize) -> Array2<f32> {
    let (n, k) = m.dim();
    let (rows, cols) = (side.min(n).max(1), side.min(k).max(1));
    let mut sum = Array2::<f64>::zeros((rows, cols));
    let mut count = Array2::<f64>::zeros((rows, cols));
    let (row_cell, col_cell) = (cell_of(n, rows), cell_of(k, cols));
    for (i, row) in m.rows().into_iter().enumerate() {
        let r = row_cell[i];
        for (j, &v) in row.iter().enumerate() {
            let c = col_cell[j];
            sum[[r, c]] += v as f64;
            count[[r, c]] += 1.0;
        }
    }
    ndarray::Zip::from(&sum)
        .and(&count)
        .map_collect(|&s, &c| if c > 0.0 { (s / c) as f32 } else { 0.0 })
}

/// For each of `len` indices, the part `p` of `parts` with `⌊p·len/parts⌋ ≤ index < ⌊(p+1)·len/parts⌋`.
fn cell_of(len: usize, parts: usize) -> Vec<usize> {
    let mut out = Vec::with_capacity(len);
    for p in 0..parts {
        let (a, b) = (p * len / parts, (p + 1) * len / parts);
        out.extend(std::iter::repeat_n(p, b - a));
    }
    out
}

/// Every head's statistics and thumbnail (`side × side` block means), one head's matrix at a time; `progress(done,
/// total)` after each layer.
pub fn stream_heads(
    model: &dyn Model,
    trace: &Trace,
    side: usize,
    progress: &dyn Fn(usize, usize),
) -> crate::Result<Streamed> {
    let (nl, nh) = (trace.n_layers(), model.info().n_heads);
    let mut stats = Vec::with_capacity(nl);
    let mut thumbs = Vec::with_capacity(nl);
    for l in 0..nl {
        let mut s = Vec::with_capacity(nh);
        let mut t = Vec::with_capacity(nh);
        for h in 0..nh {
            let (stats, thumb) = summarize(&head_attention(model, trace, l, h)?, side);
            s.push(stats);
            t.push(thumb);
        }
        stats.push(s);
        thumbs.push(t);
        progress(l + 1, nl);
    }
    Ok(Streamed { stats, thumbs })
}

/// A head's statistics and `side × side` thumbnail.
fn summarize(m: &Array2<f32>, side: usize) -> (HeadStats, Array2<f32>) {
    (head_stats(&m.view()), block_mean(&m.view(), side))
}

/// What a [`crate::tui::event::Job::Head`] asks of head `head` at `layer`.
pub fn head_part(
    model: &dyn Model,
    trace: &Trace,
    layer: usize,
    head: usize,
    want: HeadWant,
) -> crate::Result<HeadPart> {
    let m = head_attention(model, trace, layer, head)?;
    Ok(match want {
        HeadWant::Matrix => HeadPart::Matrix(Arc::new(m)),
        HeadWant::Thumb { side } => {
            let (stats, thumb) = summarize(&m, side);
            HeadPart::Thumb { stats, thumb }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{self, TextbookConfig};
    use crate::trace::ForwardOptions;

    #[test]
    fn thumbnails_and_statistics_equal_those_of_the_kept_matrices() {
        let cfg = TextbookConfig {
            layers: 2,
            heads: 3,
            d_model: 48,
            d_ff: 96,
            causal: true,
            ..Default::default()
        };
        let m = model::load("textbook", &cfg).unwrap();
        let text = "a long input is seen through thumbnails of its heads. ".repeat(6);
        let run = |keep| {
            let opts = ForwardOptions {
                keep_attention: keep,
                top_k: 0,
                ..Default::default()
            };
            model::run(m.as_ref(), &text, None, &opts).unwrap()
        };
        let (kept, lazy) = (run(true), run(false));
        let n = kept.n_tokens();
        assert!(
            n > 50 && n % 16 != 0,
            "{n} tokens: blocks of unequal size wanted"
        );
        let done = std::sync::Mutex::new(vec![]);
        let s = stream_heads(m.as_ref(), &lazy, 16, &|d, t| {
            done.lock().unwrap().push((d, t))
        })
        .unwrap();
        assert_eq!(*done.lock().unwrap(), [(1, 2), (2, 2)]);
        for l in 0..2 {
            let a = kept.layers[l].attention.as_ref().unwrap();
            for h in 0..3 {
                let full = a.index_axis(ndarray::Axis(0), h);
                let want = head_stats(&full);
                let got = s.stats[l][h];
                assert!(
                    (want.entropy - got.entropy).abs() < 1e-4,
                    "{want:?} {got:?}"
                );
                assert!((want.prev - got.prev).abs() < 1e-5 && (want.sink - got.sink).abs() < 1e-5);
                // The thumbnail against a plain block mean written out here.
                let th = &s.thumbs[l][h];
                assert_eq!(th.dim(), (16, 16));
                for r in 0..16 {
                    for c in 0..16 {
                        let (r0, r1) = (r * n / 16, (r + 1) * n / 16);
                        let (c0, c1) = (c * n / 16, (c + 1) * n / 16);
                        let block = full.slice(ndarray::s![r0..r1, c0..c1]);
                        let mean = block.sum() / block.len() as f32;
                        assert!(
                            (th[[r, c]] - mean).abs() < 1e-5,
                            "L{l} H{h} cell ({r}, {c})"
                        );
                    }
                }
                // Rows of the matrix sum to 1, so each thumbnail row's cells average to 1/cols of a row's mass.
                let row_mass: f32 = th
                    .row(15)
                    .iter()
                    .zip(0..16)
                    .map(|(v, c)| v * ((c + 1) * n / 16 - c * n / 16) as f32)
                    .sum();
                assert!((row_mass - 1.0).abs() < 1e-4, "{row_mass}");
            }
        }
    }

    #[test]
    fn block_mean_of_a_small_matrix_is_itself() {
        let m = Array2::from_shape_fn((3, 5), |(i, j)| (i * 5 + j) as f32);
        assert_eq!(block_mean(&m.view(), 8), m);
    }
}
