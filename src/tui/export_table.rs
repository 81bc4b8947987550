//! `d` in the explorer: the table on screen as `<stem>.npy` + `<stem>.csv`, with row and column labels (a head's
//! matrix: tokens × tokens; the positions: tokens × dimensions; the norms: layers × norms).

use crate::export::csv_field;
use ndarray::ArrayView2;
use std::path::{Path, PathBuf};

/// A labelled table.
pub struct Table<'a> {
    pub stem: &'a str,
    /// The top-left CSV cell (`query\key`).
    pub corner: &'a str,
    pub rows: &'a [String],
    pub cols: &'a [String],
}

/// The CSV text: a header of column labels, then one labelled line per row.
pub fn csv(t: &Table, m: &ArrayView2<f32>) -> String {
    let mut s = csv_field(t.corner);
    for l in t.cols {
        s.push(',');
        s.push_str(&csv_field(l));
    }
    s.push('\n');
    for (i, row) in m.rows().into_iter().enumerate() {
        s.push_str(&csv_field(t.rows.get(i).map(String::as_str).unwrap_or("")));
        for v in row {
            s.push(',');
            s.push_str(&v.to_string());
        }
        s.push('\n');
    }
    s
}

/// Write both files into `dir` (staged, then moved into place together).
pub fn write(dir: &Path, t: &Table, m: &ArrayView2<f32>) -> crate::Result<Vec<PathBuf>> {
    crate::export::write_matrix_pair(dir, t.stem, m, &csv(t, m), false)
}
