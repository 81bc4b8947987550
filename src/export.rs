//! Writers for `.npy`, `.csv` and `.json` dumps. Every dump is staged in a hidden directory next to its target and
//! renamed into place only when every file was written, so a failure leaves nothing partial behind; an existing
//! file is never overwritten unless `force` is set.

pub mod encdec;

use crate::analysis;
use crate::hooks::HookPoint;
use crate::model::Model;
use crate::model::layer_attention;
use crate::trace::Trace;
use crate::{Error, Result};
use serde_json::json;
use std::fs;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// Format of the attention matrices in a dump.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// `attention.npy`, float32 [layers, heads, n, n].
    Npy,
    /// `attention/layerLL_headHH.csv`, one per (layer, head), token labels in the header row and first column.
    Csv,
    /// `attention.json`: tokens and the [layers][heads][n][n] nested lists.
    Json,
}

/// Write a float32, little-endian, C-order `.npy` (format 1.0) of the given shape.
pub fn write_npy<W: Write>(
    w: &mut W,
    shape: &[usize],
    data: impl IntoIterator<Item = f32>,
) -> std::io::Result<()> {
    write_npy_header(w, shape)?;
    for v in data {
        w.write_all(&v.to_le_bytes())?;
    }
    Ok(())
}

/// The `.npy` magic, version and header dict, padded so the data starts on a 64-byte boundary.
pub fn write_npy_header<W: Write>(w: &mut W, shape: &[usize]) -> std::io::Result<()> {
    let dims = match shape {
        [one] => format!("({one},)"),
        _ => format!(
            "({})",
            shape
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {dims}, }}");
    let unpadded = 10 + header.len() + 1;
    header.push_str(&" ".repeat((64 - unpadded % 64) % 64));
    header.push('\n');
    w.write_all(b"\x93NUMPY\x01\x00")?;
    w.write_all(&(header.len() as u16).to_le_bytes())?;
    w.write_all(header.as_bytes())
}

/// Quote a CSV field when it needs it.
pub fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) || s.starts_with(' ') || s.ends_with(' ') {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// One head's matrix as CSV: a header row `query\key,<key labels>`, then one row per query with its label.
pub fn matrix_csv(labels: &[String], m: &ndarray::ArrayView2<f32>) -> String {
    let mut s = String::from("query\\key");
    for l in labels {
        s.push(',');
        s.push_str(&csv_field(l));
    }
    s.push('\n');
    for (i, row) in m.rows().into_iter().enumerate() {
        s.push_str(&csv_field(labels.get(i).map(String::as_str).unwrap_or("")));
        for v in row {
            s.push(',');
            s.push_str(&v.to_string());
        }
        s.push('\n');
    }
    s
}

/// A set of files written into a hidden staging directory, then moved into `out` together.
pub struct Staged {
    out: PathBuf,
    stage: PathBuf,
    created_out: bool,
    files: Vec<PathBuf>,
    force: bool,
}

impl Staged {
    /// Prepare to write into `out`: it may exist (a directory) or be created if its parent exists.
    pub fn new(out: &Path, force: bool) -> Result<Self> {
        let mut created_out = false;
        if out.exists() {
            if !out.is_dir() {
                return Err(Error::Input(format!(
                    "{}: exists and is not a directory",
                    out.display()
                )));
            }
        } else {
            let parent = match out.parent() {
                Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
                _ => PathBuf::from("."),
            };
            if !parent.is_dir() {
                return Err(Error::Input(format!(
                    "{}: cannot create the output directory: {} does not exist",
                    out.display(),
                    parent.display()
                )));
            }
            fs::create_dir(out).map_err(|e| Error::io(out, e))?;
            created_out = true;
        }
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let stage = out.join(format!(".attn-staging-{}-{nanos}", std::process::id()));
        if let Err(e) = fs::create_dir(&stage) {
            if created_out {
                let _ = fs::remove_dir(out);
            }
            return Err(Error::io(out, e));
        }
        Ok(Staged {
            out: out.to_path_buf(),
            stage,
            created_out,
            files: vec![],
            force,
        })
    }

    /// Check up front that none of `names` exists in `out` (unless forced).
    pub fn check_free(&self, names: &[String]) -> Result<()> {
        if self.force {
            return Ok(());
        }
        for n in names {
            let p = self.out.join(n);
            if p.exists() {
                return Err(Error::Exists { path: p });
            }
        }
        Ok(())
    }

    /// Write one file (relative name, may contain one sub-directory) through a closure.
    pub fn write(
        &mut self,
        name: &str,
        f: impl FnOnce(&mut BufWriter<fs::File>) -> std::io::Result<()>,
    ) -> Result<()> {
        let path = self.stage.join(name);
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        let file = fs::File::create(&path).map_err(|e| Error::io(self.out.join(name), e))?;
        let mut w = BufWriter::new(file);
        f(&mut w)
            .and_then(|_| w.flush())
            .and_then(|_| w.get_ref().sync_all())
            .map_err(|e| Error::io(self.out.join(name), e))?;
        self.files.push(PathBuf::from(name));
        Ok(())
    }

    /// Move every staged file into place; returns their final paths.
    pub fn commit(mut self) -> Result<Vec<PathBuf>> {
        let names: Vec<String> = self.files.iter().map(|f| f.display().to_string()).collect();
        self.check_free(&names)?;
        let mut done = vec![];
        for f in std::mem::take(&mut self.files) {
            let dst = self.out.join(&f);
            if let Some(dir) = dst.parent() {
                fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
            }
            fs::rename(self.stage.join(&f), &dst).map_err(|e| Error::io(&dst, e))?;
            done.push(dst);
        }
        Ok(done)
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.stage);
        if self.created_out {
            // Only removes the directory if nothing was moved into it (a failed dump).
            let _ = fs::remove_dir(&self.out);
        }
    }
}

/// The files a dump writes, for the no-overwrite check.
pub fn dump_file_names(layers: usize, heads: usize, format: Format) -> Vec<String> {
    let mut names: Vec<String> = [
        "tokens.json",
        "hidden.npy",
        "positional.npy",
        "residual_norms.csv",
        "meta.json",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    match format {
        Format::Npy => names.push("attention.npy".into()),
        Format::Json => names.push("attention.json".into()),
        Format::Csv => {
            for l in 0..layers {
                for h in 0..heads {
                    names.push(csv_name(l, h));
                }
            }
        }
    }
    names
}

fn csv_name(layer: usize, head: usize) -> String {
    format!("attention/layer{layer:02}_head{head:02}.csv")
}

/// What `attn dump --qkv` captures: queries, keys, values and each head's output z.
pub const QKV_POINTS: [HookPoint; 4] = [
    HookPoint::AttnQ,
    HookPoint::AttnK,
    HookPoint::AttnV,
    HookPoint::AttnZ,
];

/// The file a hook point's captures are written to: `q.npy`, `k.npy`, `v.npy`, `z.npy` for the attention inputs and
/// output, else the point's name with `.` → `_` (`mlp_post.npy`).
pub fn capture_file(point: HookPoint) -> String {
    match point {
        HookPoint::AttnQ => "q.npy".into(),
        HookPoint::AttnK => "k.npy".into(),
        HookPoint::AttnV => "v.npy".into(),
        HookPoint::AttnZ => "z.npy".into(),
        p => format!("{}.npy", p.name().replace('.', "_")),
    }
}

/// The hook points captured at every layer `0..n_layers` of `trace`: each is written as one array
/// `[layers, …shape of one layer]`.
fn full_captures(trace: &Trace) -> Vec<HookPoint> {
    let nl = trace.n_layers();
    HookPoint::ALL
        .into_iter()
        .filter(|p| nl > 0 && (0..nl).all(|l| trace.captures.get(*p, l).is_some()))
        .collect()
}

/// Write every fully captured hook point (see [`capture_file`]) as one `.npy` stacked over layers.
fn write_captures(st: &mut Staged, trace: &Trace) -> Result<Vec<String>> {
    let mut written = vec![];
    for p in full_captures(trace) {
        let nl = trace.n_layers();
        let first = trace
            .captures
            .get(p, 0)
            .map(|a| a.shape().to_vec())
            .unwrap_or_default();
        let mut shape = vec![nl];
        shape.extend(&first);
        let name = capture_file(p);
        st.write(&name, |w| {
            write_npy_header(w, &shape)?;
            for l in 0..nl {
                if let Some(a) = trace.captures.get(p, l) {
                    a.iter().try_for_each(|v| w.write_all(&v.to_le_bytes()))?;
                }
            }
            Ok(())
        })?;
        written.push(name);
    }
    Ok(written)
}

/// Write the whole trace in the `attn dump` format into `out`. Returns the written paths.
pub fn dump(
    model: &dyn Model,
    trace: &Trace,
    out: &Path,
    format: Format,
    force: bool,
) -> Result<Vec<PathBuf>> {
    let info = model.info();
    let (nl, nh, n, d) = (
        trace.n_layers(),
        info.n_heads,
        trace.n_tokens(),
        trace.d_model(),
    );
    let mut names = dump_file_names(nl, nh, format);
    names.extend(full_captures(trace).into_iter().map(capture_file));
    let mut st = Staged::new(out, force)?;
    st.check_free(&names)?;
    let labels: Vec<String> = trace.tokens.iter().map(|t| t.label.clone()).collect();

    st.write("tokens.json", |w| {
        let toks: Vec<_> = trace
            .tokens
            .iter()
            .enumerate()
            .map(|(i, t)| json!({"index": i, "id": t.id, "text": t.text, "start": t.start, "end": t.end}))
            .collect();
        serde_json::to_writer_pretty(&mut *w, &toks)?;
        w.write_all(b"\n")
    })?;

    st.write("hidden.npy", |w| {
        write_npy(
            w,
            &[nl + 1, n, d],
            trace.hidden.iter().flat_map(|h| h.iter().copied()),
        )
    })?;

    let pos = trace.positional.matrix();
    st.write("positional.npy", |w| {
        write_npy(w, &[pos.nrows(), pos.ncols()], pos.iter().copied())
    })?;

    st.write("residual_norms.csv", |w| {
        writeln!(
            w,
            "layer,token_index,token,resid_in_norm,resid_out_norm,attn_update_norm,ffn_update_norm"
        )?;
        for r in analysis::residual_rows(trace) {
            writeln!(
                w,
                "{},{},{},{},{},{},{}",
                r.layer,
                r.token,
                csv_field(&labels[r.token]),
                r.resid_in,
                r.resid_out,
                r.attn_update,
                r.ffn_update
            )?;
        }
        Ok(())
    })?;

    match format {
        Format::Npy => {
            // Streamed one layer at a time: attention that was not kept is recomputed layer by layer.
            st.write("attention.npy", |w| {
                write_npy_header(w, &[nl, nh, n, n])?;
                for l in 0..nl {
                    let a = layer_attention(model, trace, l).map_err(std::io::Error::other)?;
                    a.iter().try_for_each(|v| w.write_all(&v.to_le_bytes()))?;
                }
                Ok(())
            })?;
        }
        Format::Csv => {
            for l in 0..nl {
                let a = layer_attention(model, trace, l)?;
                for h in 0..nh {
                    let csv = matrix_csv(&labels, &a.index_axis(ndarray::Axis(0), h));
                    st.write(&csv_name(l, h), |w| w.write_all(csv.as_bytes()))?;
                }
            }
        }
        Format::Json => {
            let mut all = Vec::with_capacity(nl);
            for l in 0..nl {
                let a = layer_attention(model, trace, l)?;
                let heads: Vec<Vec<Vec<f32>>> = a
                    .outer_iter()
                    .map(|m| m.rows().into_iter().map(|r| r.to_vec()).collect())
                    .collect();
                all.push(heads);
            }
            let doc = json!({"tokens": labels, "shape": [nl, nh, n, n], "attention": all});
            st.write("attention.json", |w| {
                Ok(serde_json::to_writer(&mut *w, &doc)?)
            })?;
        }
    }

    let captured = write_captures(&mut st, trace)?;
    let meta = json!({
        "model": info.spec,
        "name": info.name,
        "architecture": info.arch.name(),
        "layers": nl,
        "heads": nh,
        "kv_heads": info.n_kv_heads,
        "d_model": d,
        "d_ff": info.d_ff,
        "vocab_size": info.vocab_size,
        "causal": info.causal,
        "positional": trace.positional.kind(),
        "positional_shape": [pos.nrows(), pos.ncols()],
        "text": trace.text,
        "text_b": trace.text_b,
        "n_tokens": n,
        "format": format!("{format:?}").to_lowercase(),
        "attn_version": env!("CARGO_PKG_VERSION"),
        "interventions": trace.interventions,
        "captured": captured,
    });
    st.write("meta.json", |w| {
        serde_json::to_writer_pretty(&mut *w, &meta)?;
        w.write_all(b"\n")
    })?;
    st.commit()
}

/// Write one head's matrix as `<stem>.npy` and `<stem>.csv` into `dir` (created with its parents).
pub fn dump_head(
    dir: &Path,
    stem: &str,
    labels: &[String],
    m: &ndarray::ArrayView2<f32>,
    force: bool,
) -> Result<Vec<PathBuf>> {
    if !dir.exists() {
        fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    let mut st = Staged::new(dir, force)?;
    let (npy, csv) = (format!("{stem}.npy"), format!("{stem}.csv"));
    st.check_free(&[npy.clone(), csv.clone()])?;
    st.write(&npy, |w| {
        write_npy(w, &[m.nrows(), m.ncols()], m.iter().copied())
    })?;
    let text = matrix_csv(labels, m);
    st.write(&csv, |w| w.write_all(text.as_bytes()))?;
    st.commit()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn npy_header_is_aligned_and_parsable() {
        let mut buf = vec![];
        write_npy(&mut buf, &[2, 3], (0..6).map(|i| i as f32)).unwrap();
        assert_eq!(&buf[..8], b"\x93NUMPY\x01\x00");
        let hlen = u16::from_le_bytes([buf[8], buf[9]]) as usize;
        assert_eq!((10 + hlen) % 64, 0);
        let header = std::str::from_utf8(&buf[10..10 + hlen]).unwrap();
        assert!(header.contains("'shape': (2, 3)") && header.ends_with('\n'));
        assert_eq!(buf.len(), 10 + hlen + 24);
        assert_eq!(
            f32::from_le_bytes(buf[10 + hlen + 20..].try_into().unwrap()),
            5.0
        );
        let mut one = vec![];
        write_npy(&mut one, &[4], [1.0f32; 4]).unwrap();
        assert!(String::from_utf8_lossy(&one).contains("'shape': (4,)"));
    }

    #[test]
    fn csv_quotes_what_needs_quoting() {
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("plain"), "plain");
    }
}
