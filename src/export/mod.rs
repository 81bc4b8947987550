//! Writers for `.npy`, `.csv` and `.json` dumps. Every dump is staged in a hidden directory inside its target and
//! moved into place only when every file was written ([`staged`]): a failure or a signal leaves nothing partial
//! behind, an existing file is never overwritten unless `force` is set, and `force` replaces a previous dump whole
//! (the `files` manifest in its `meta.json`). Attention is streamed one head at a time in every format.

pub mod staged;
mod summary;
pub use staged::Staged;
pub use summary::written_summary;

pub mod encdec;
mod select;
use select::each_head;
pub use select::parse_selection;

use crate::analysis;
use crate::hooks::HookPoint;
use crate::model::Model;
use crate::model::layer_attention;
use crate::trace::Trace;
use crate::{Error, Result};
use serde_json::json;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Format of the attention matrices in a dump.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `attention.npy`, float32 [layers, heads, n, n].
    Npy,
    /// `attention/layerLL_headHH.csv`, one per (layer, head), token labels in the header row and first column.
    Csv,
    /// `attention.json`: tokens and the [layers][heads][n][n] nested lists.
    Json,
}

impl Format {
    /// The name used in `meta.json` and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Format::Npy => "npy",
            Format::Csv => "csv",
            Format::Json => "json",
        }
    }
}

/// Where the explorer's dumps go when no `--dump-dir` is given.
pub const DEFAULT_DUMP_ROOT: &str = "attn-dumps";

/// The explorer's dump root: the one given, else [`DEFAULT_DUMP_ROOT`]. The one place this is decided.
pub fn dump_root(given: Option<&Path>) -> PathBuf {
    given.map_or_else(|| PathBuf::from(DEFAULT_DUMP_ROOT), Path::to_path_buf)
}

/// Create a fresh, empty directory `<root>/<stamp>` (or `<stamp>-2`, `-3`… when taken). Never reuses one.
pub fn fresh_dump_dir(root: &Path, stamp: &str) -> Result<PathBuf> {
    if fs::metadata(root).is_ok_and(|m| !m.is_dir()) {
        return Err(Error::Input(format!(
            "{}: the dump directory exists and is not a directory",
            root.display()
        )));
    }
    fs::create_dir_all(root).map_err(|e| Error::io(root, e))?;
    for k in 1..1000 {
        let name = if k == 1 {
            stamp.to_string()
        } else {
            format!("{stamp}-{k}")
        };
        let dir = root.join(name);
        match fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(Error::io(&dir, e)),
        }
    }
    Err(Error::Input(format!(
        "{}: too many dumps in one second",
        root.display()
    )))
}

/// One progress line: `writing attention  12/30 layers [=========>          ] 40%  ETA 3 s`.
pub fn progress_line(
    label: &str,
    done: usize,
    total: usize,
    elapsed: std::time::Duration,
) -> String {
    let total = total.max(1);
    let done = done.min(total);
    let width = 24;
    let filled = done * width / total;
    let bar: String = (0..width)
        .map(|i| match i.cmp(&filled) {
            std::cmp::Ordering::Less => '=',
            std::cmp::Ordering::Equal => '>',
            std::cmp::Ordering::Greater => ' ',
        })
        .collect();
    let eta = if done == 0 {
        "ETA ?".to_string()
    } else if done == total {
        format!("done in {:.1} s", elapsed.as_secs_f64())
    } else {
        let rest = elapsed.as_secs_f64() * (total - done) as f64 / done as f64;
        format!("ETA {rest:.0} s")
    };
    format!(
        "{label} {done:>w$}/{total} layers [{bar}] {:>3}%  {eta}",
        done * 100 / total,
        w = total.to_string().len()
    )
}

/// How to dump.
#[derive(Clone, Copy)]
pub struct DumpOptions<'a> {
    pub format: Format,
    /// Replace a previous dump in the same directory (its manifest) and files of the same names.
    pub force: bool,
    /// Told `(layers written, layers)` after each layer's attention is written.
    pub progress: Option<&'a (dyn Fn(usize, usize) + Sync)>,
    /// Write the attention of these layers only (`--layers`; `None`: every layer).
    pub layers: Option<&'a [usize]>,
    /// Write the attention of these heads only (`--heads`; `None`: every head).
    pub heads: Option<&'a [usize]>,
}

impl<'a> DumpOptions<'a> {
    pub fn new(format: Format, force: bool) -> Self {
        DumpOptions {
            format,
            force,
            progress: None,
            layers: None,
            heads: None,
        }
    }
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

/// The files a dump writes, for the no-overwrite check: `layers` and `heads` are the selected indices.
pub fn dump_file_names(layers: &[usize], heads: &[usize], format: Format) -> Vec<String> {
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
            for &l in layers {
                for &h in heads {
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
    opts: &DumpOptions,
) -> Result<Vec<PathBuf>> {
    dump_with(model, trace, out, opts, &[])
}

/// The records of `tokens.json`: per token its index, vocabulary id, vocabulary string (`text`), the label the
/// explorer and the CSV headers show (`label`: readable, escaped, `#position` added when two tokens read the same),
/// its segment (token type: 0 for sentence A, 1 for B) and its byte offsets in the input.
pub(crate) fn tokens_json(tokens: &[crate::tokenize::TokenInfo]) -> serde_json::Value {
    tokens
        .iter()
        .zip(crate::tokenize::token_labels(tokens))
        .enumerate()
        .map(|(i, (t, label))| {
            json!({"index": i, "id": t.id, "text": t.text, "label": label, "segment": t.type_id,
                   "start": t.start, "end": t.end})
        })
        .collect()
}

/// [`dump`] plus extra `.npy` arrays computed from the trace (`value_weighted.npy`), staged with the rest.
pub fn dump_with(
    model: &dyn Model,
    trace: &Trace,
    out: &Path,
    opts: &DumpOptions,
    extra: &[(String, ndarray::ArrayD<f32>)],
) -> Result<Vec<PathBuf>> {
    let (format, force) = (opts.format, opts.force);
    let progress = |l: usize, total: usize| {
        if let Some(p) = opts.progress {
            p(l, total)
        }
    };
    let info = model.info();
    let (nl, nh, n, d) = (
        trace.n_layers(),
        info.n_heads,
        trace.n_tokens(),
        trace.d_model(),
    );
    let all = |count: usize, sel: Option<&[usize]>, what: &str| -> Result<Vec<usize>> {
        let v = sel.map_or_else(|| (0..count).collect(), <[usize]>::to_vec);
        match v.iter().find(|&&i| i >= count) {
            Some(i) => Err(Error::Input(format!(
                "{what} {i} is out of range (0..={})",
                count.saturating_sub(1)
            ))),
            None => Ok(v),
        }
    };
    let (ls, hs) = (all(nl, opts.layers, "layer")?, all(nh, opts.heads, "head")?);
    let (sl, sh) = (ls.len(), hs.len());
    let mut names = dump_file_names(&ls, &hs, format);
    names.extend(full_captures(trace).into_iter().map(capture_file));
    names.extend(extra.iter().map(|(n, _)| n.clone()));
    staged::write_dump(out, force, &names, |st| {
        for (name, a) in extra {
            st.write(name, |w| write_npy(w, a.shape(), a.iter().copied()))?;
        }
        let labels = crate::tokenize::token_labels(&trace.tokens);

        st.write_json("tokens.json", &tokens_json(&trace.tokens))?;

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

        // Streamed one head at a time in every format: attention that was not kept is recomputed head by head.
        let sel = (model, trace, ls.as_slice(), hs.as_slice());
        match format {
            Format::Npy => {
                st.write("attention.npy", |w| {
                    write_npy_header(w, &[sl, sh, n, n])?;
                    each_head(sel, &progress, std::io::Error::other, &mut |_, _, m| {
                        m.iter().try_for_each(|v| w.write_all(&v.to_le_bytes()))
                    })
                })?;
            }
            Format::Csv => {
                each_head(sel, &progress, |e| e, &mut |li, hi, m| {
                    let csv = matrix_csv(&labels, &m.view());
                    st.write(&csv_name(ls[li], hs[hi]), |w| w.write_all(csv.as_bytes()))
                })?;
            }
            Format::Json => {
                st.write("attention.json", |w| {
                    w.write_all(b"{\"tokens\":")?;
                    serde_json::to_writer(&mut *w, &labels)?;
                    write!(w, ",\"shape\":[{sl},{sh},{n},{n}],\"attention\":[")?;
                    each_head(sel, &progress, std::io::Error::other, &mut |li, hi, m| {
                        if hi == 0 {
                            w.write_all(if li == 0 { b"[" } else { b",[" })?;
                        }
                        w.write_all(if hi == 0 { b"[" } else { b",[" })?;
                        for (i, r) in m.rows().into_iter().enumerate() {
                            if i > 0 {
                                w.write_all(b",")?;
                            }
                            serde_json::to_writer(&mut *w, &r.to_vec())?;
                        }
                        w.write_all(b"]")?;
                        if hi + 1 == sh {
                            w.write_all(b"]")?;
                        }
                        Ok(())
                    })?;
                    w.write_all(b"]}")
                })?;
            }
        }

        let mut captured = write_captures(st, trace)?;
        captured.extend(extra.iter().map(|(n, _)| n.clone()));
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
            "format": format.name(),
            "attention_layers": ls,
            "attention_heads": hs,
            "non_finite": analysis::first_non_finite(trace).map(|nf| nf.to_string()),
            "attn_version": env!("CARGO_PKG_VERSION"),
            "interventions": trace.interventions,
            "captured": captured,
        });
        Ok(object(meta))
    })
}

/// The fields of a JSON object (`json!({...})` is always one).
pub(crate) fn object(v: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
    match v {
        serde_json::Value::Object(m) => m,
        other => serde_json::Map::from_iter([("value".to_string(), other)]),
    }
}

/// Write `rollout.npy` into `out`: attention rollout float32 `[layers, n, n]` ([`analysis::rollout`]), computed
/// layer by layer from the trace (attention that was not kept is recomputed). Staged like [`dump`]; an existing
/// `rollout.npy` is kept unless `force`.
pub fn dump_rollout(
    model: &dyn Model,
    trace: &Trace,
    out: &Path,
    force: bool,
) -> Result<Vec<PathBuf>> {
    let (nl, n) = (trace.n_layers(), trace.n_tokens());
    let mut st = Staged::new(out, force)?;
    st.check_free(&["rollout.npy".to_string()])?;
    let mut r = analysis::rollout::Rollout::new();
    st.write("rollout.npy", |w| {
        write_npy_header(w, &[nl, n, n])?;
        for l in 0..nl {
            let a = layer_attention(model, trace, l).map_err(std::io::Error::other)?;
            let m = r.push(&a.view());
            m.iter().try_for_each(|v| w.write_all(&v.to_le_bytes()))?;
        }
        Ok(())
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
    write_matrix_pair(dir, stem, m, &matrix_csv(labels, m), force)
}

/// A matrix as `<stem>.npy` and its CSV text as `<stem>.csv` in `dir`, staged and moved into place together;
/// refuses to replace existing files unless `force`.
pub fn write_matrix_pair(
    dir: &Path,
    stem: &str,
    m: &ndarray::ArrayView2<f32>,
    csv: &str,
    force: bool,
) -> Result<Vec<PathBuf>> {
    let mut st = Staged::new(dir, force)?;
    let (npy, csv_name) = (format!("{stem}.npy"), format!("{stem}.csv"));
    st.check_free(&[npy.clone(), csv_name.clone()])?;
    st.write(&npy, |w| {
        write_npy(w, &[m.nrows(), m.ncols()], m.iter().copied())
    })?;
    st.write(&csv_name, |w| w.write_all(csv.as_bytes()))?;
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
    fn progress_line_shows_count_bar_and_eta() {
        let d = std::time::Duration::from_secs(10);
        let l = progress_line("forward", 10, 30, d);
        assert!(l.starts_with("forward 10/30 layers [========>"), "{l}");
        assert!(l.ends_with("33%  ETA 20 s"), "{l}");
        assert!(progress_line("w", 0, 4, d).ends_with("ETA ?"));
        assert!(progress_line("w", 4, 4, d).ends_with("100%  done in 10.0 s"));
    }

    #[test]
    fn csv_quotes_what_needs_quoting() {
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("plain"), "plain");
    }
}
