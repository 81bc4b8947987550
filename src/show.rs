//! Plain-text renderings for `attn show` and `attn info`: pure functions that return strings (ANSI colour codes
//! only when asked for). The binary prints them.

use crate::analysis;
use crate::colormap::{self, Palette};
use crate::model::ModelInfo;
use crate::trace::Trace;
use ndarray::ArrayView2;
use std::fmt::Write;
use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

/// Pad or cut `s` to exactly `width` terminal columns (cut text ends in `…`), measuring display width, never bytes.
pub fn fit(s: &str, width: usize) -> String {
    if s.width() <= width {
        let mut out = s.to_string();
        out.push_str(&" ".repeat(width - s.width()));
        return out;
    }
    if width == 0 {
        return String::new();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in s.chars() {
        let w = c.width().unwrap_or(0);
        if used + w > width - 1 {
            break;
        }
        out.push(c);
        used += w;
    }
    out.push('…');
    used += 1;
    out.push_str(&" ".repeat(width.saturating_sub(used)));
    out
}

/// Right-align `s` in `width` columns (cut like [`fit`]).
pub fn fit_right(s: &str, width: usize) -> String {
    let f = fit(s, width);
    let trimmed = f.trim_end();
    format!("{}{}", " ".repeat(width - trimmed.width()), trimmed)
}

fn paint(out: &mut String, cell: &str, t: f32, colors: Palette) {
    let bg = colormap::rgb(t);
    let fg = colormap::text_on(bg);
    match colors {
        Palette::Mono => out.push_str(cell),
        Palette::TrueColor => {
            let _ = write!(
                out,
                "\x1b[48;2;{};{};{}m\x1b[38;2;{};{};{}m{cell}\x1b[0m",
                bg[0], bg[1], bg[2], fg[0], fg[1], fg[2]
            );
        }
        Palette::Ansi256 => {
            let _ = write!(
                out,
                "\x1b[48;5;{}m\x1b[38;5;{}m{cell}\x1b[0m",
                colormap::ansi256(bg),
                colormap::ansi256(fg)
            );
        }
    }
}

/// The one header form of a selection: `Layer 2 of 0–5 · Head 3 of 0–7` (or `Head mean of 0–7` for `None`).
pub fn position_text(layer: usize, n_layers: usize, head: Option<usize>, n_heads: usize) -> String {
    let last_l = n_layers.saturating_sub(1);
    let last_h = n_heads.saturating_sub(1);
    match head {
        Some(h) => format!("Layer {layer} of 0–{last_l} · Head {h} of 0–{last_h}"),
        None => format!("Layer {layer} of 0–{last_l} · Head mean of 0–{last_h}"),
    }
}

/// A weight in 4 columns: ` .42`, `1.00`, `   0` for exact zero (masked), ` NaN` / `   ∞` for non-finite values.
pub fn weight_cell(w: f32) -> String {
    if w.is_nan() {
        " NaN".into()
    } else if w.is_infinite() {
        "   ∞".into()
    } else if w == 0.0 {
        "   0".into()
    } else if w >= 0.995 {
        "1.00".into()
    } else {
        format!(" .{:02}", (w * 100.0).round() as u32)
    }
}

/// One head's attention grid: rows = queries (index + label), columns = keys (index + label), each cell the
/// weight (coloured when asked).
pub fn render_grid(labels: &[String], m: &ArrayView2<f32>, colors: Palette) -> String {
    render_grid_window(labels, m, colors, 0..m.nrows(), 0..m.ncols())
}

/// Width of the row labels before the first cell of [`render_grid`].
pub fn grid_label_width(n: usize) -> usize {
    n.saturating_sub(1).to_string().len().max(1) + 1 + GRID_LABEL + 1
}

const GRID_LABEL: usize = 14;

/// How many key columns of 5 characters fit in `width` terminal columns after the row labels (at least 1).
pub fn grid_cols_fitting(n: usize, width: usize) -> usize {
    (width.saturating_sub(grid_label_width(n)) / 5).max(1)
}

/// The part of the grid in `rows` × `cols` (clamped to the matrix).
pub fn render_grid_window(
    labels: &[String],
    m: &ArrayView2<f32>,
    colors: Palette,
    rows: std::ops::Range<usize>,
    cols: std::ops::Range<usize>,
) -> String {
    let rows = rows.start.min(m.nrows())..rows.end.min(m.nrows());
    let cols = cols.start.min(m.ncols())..cols.end.min(m.ncols());
    let mut out = String::new();
    let idx_w = m.nrows().saturating_sub(1).to_string().len().max(1);
    let left = grid_label_width(m.nrows());
    // Header: key indices, then key labels cut to 4 columns.
    out.push_str(&" ".repeat(left));
    for j in cols.clone() {
        let _ = write!(out, " {}", fit_right(&j.to_string(), 4));
    }
    out.push('\n');
    out.push_str(&fit("query ╲ key", left));
    for j in cols.clone() {
        let _ = write!(
            out,
            " {}",
            fit(labels.get(j).map(String::as_str).unwrap_or(""), 4)
        );
    }
    out.push('\n');
    for i in rows {
        let _ = write!(
            out,
            "{} {} ",
            fit_right(&i.to_string(), idx_w),
            fit(labels.get(i).map(String::as_str).unwrap_or(""), GRID_LABEL)
        );
        for j in cols.clone() {
            let w = m[[i, j]];
            out.push(' ');
            paint(&mut out, &weight_cell(w), w, colors);
        }
        out.push('\n');
    }
    out
}

/// The residual-norm table: per layer, mean over tokens of ‖stream in‖, ‖attention update‖, ‖FFN update‖,
/// ‖stream out‖, and the two update/stream ratios.
pub fn render_norm_table(trace: &Trace) -> String {
    let mut out = String::from(
        "layer  ‖x_in‖     ‖attn Δ‖   ‖ffn Δ‖    ‖x_out‖    attn/in  ffn/in   (means over tokens)\n",
    );
    for r in analysis::layer_norms(trace, None) {
        let _ = writeln!(
            out,
            "{:>5}  {:<9.3}  {:<9.3}  {:<9.3}  {:<9.3}  {:<7.3}  {:.3}",
            r.layer,
            r.resid_in,
            r.attn_update,
            r.ffn_update,
            r.resid_out,
            r.attn_ratio(),
            r.ffn_ratio()
        );
    }
    out
}

/// Head statistics as one line.
pub fn render_head_stats(m: &ArrayView2<f32>) -> String {
    let s = analysis::head_stats(m);
    let tag = analysis::head_tag(&s)
        .map(|t| format!("  [{t}]"))
        .unwrap_or_default();
    format!(
        "entropy {:.3} nats ({:.0}% of uniform) · mean row max {:.3} · first-token {:.3} · previous {:.3} · self {:.3} · \
         mean distance {:.2}{tag}",
        s.entropy,
        s.entropy_norm * 100.0,
        s.max_weight,
        s.sink,
        s.prev,
        s.self_,
        s.distance
    )
}

/// `attn heads`: one line per head (probe scores, and the text's when given), then the top heads of each kind.
pub fn render_head_scans(
    info: &ModelInfo,
    probe_t: usize,
    probe: &[analysis::scans::HeadScores],
    text: Option<&[analysis::scans::HeadScores]>,
) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} · {} layers × {} heads · probe: {} random tokens repeated twice (seed {})",
        info.name,
        info.n_layers,
        info.n_heads,
        probe_t,
        analysis::scans::PROBE_SEED
    );
    let _ = write!(
        out,
        "{:>5} {:>4} {:>9} {:>6} {:>6} {:>9}",
        "layer", "head", "previous", "sink", "self", "induction"
    );
    if text.is_some() {
        let _ = write!(
            out,
            " │ text: {:>8} {:>6} {:>6} {:>9}",
            "previous", "sink", "self", "induction"
        );
    }
    let _ = writeln!(out, "  tag");
    let opt = |v: Option<f32>| v.map_or("—".to_string(), |v| format!("{v:.3}"));
    for (i, s) in probe.iter().enumerate() {
        let _ = write!(
            out,
            "{:>5} {:>4} {:>9.3} {:>6.3} {:>6.3} {:>9}",
            s.layer,
            s.head,
            s.previous,
            s.sink,
            s.self_,
            opt(s.induction)
        );
        if let Some(t) = text.and_then(|t| t.get(i)) {
            let _ = write!(
                out,
                " │       {:>8.3} {:>6.3} {:>6.3} {:>9}",
                t.previous,
                t.sink,
                t.self_,
                opt(t.induction)
            );
        }
        let _ = writeln!(out, "  {}", s.tag().unwrap_or(""));
    }
    type Key = fn(&analysis::scans::HeadScores) -> f32;
    let kinds: [(&str, Key); 4] = [
        ("induction", |s| s.induction.unwrap_or(0.0)),
        ("previous-token", |s| s.previous),
        ("sink", |s| s.sink),
        ("self", |s| s.self_),
    ];
    let _ = writeln!(out);
    for (name, key) in kinds {
        let mut v: Vec<&analysis::scans::HeadScores> = probe.iter().collect();
        v.sort_by(|a, b| key(b).total_cmp(&key(a)));
        let top: Vec<String> = v
            .iter()
            .take(5)
            .map(|s| format!("L{}.H{} {:.2}", s.layer, s.head, key(s)))
            .collect();
        let _ = writeln!(out, "top {name:<15} {}", top.join(" · "));
    }
    out
}

/// `attn sweep`: the clean prediction, then the heads ranked by |Δ logit|.
pub fn render_sweep(
    s: &analysis::ablation::Sweep,
    tok: &crate::tokenize::Tokenizer,
    took: std::time::Duration,
) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "position {} · clean prediction {:?} (id {}) logit {:.3} · {}-ablation of {} heads in {:.1} s",
        s.position,
        s.token_text,
        s.token,
        s.logit,
        if s.mean { "mean" } else { "zero" },
        s.heads.len(),
        took.as_secs_f64()
    );
    let _ = writeln!(
        out,
        "{:>5} {:>4} {:>9} {:>9}  top after",
        "layer", "head", "Δ logit", "logit"
    );
    for h in s.ranked().into_iter().take(20) {
        let _ = writeln!(
            out,
            "{:>5} {:>4} {:>+9.3} {:>9.3}  {:?}",
            h.layer,
            h.head,
            h.delta,
            h.logit,
            tok.token_label(h.top)
        );
    }
    out
}

/// `attn attribute`: the logit, then the components by |value|.
pub fn render_attribution(a: &analysis::attribution::Attribution) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "position {} · token {:?} (id {}) · logit {:.4} · Σ components {:.4}",
        a.position,
        a.text,
        a.token,
        a.logit,
        a.total()
    );
    let mut v: Vec<&analysis::attribution::Component> = a.components.iter().collect();
    v.sort_by(|x, y| y.value.abs().total_cmp(&x.value.abs()));
    for c in v.into_iter().take(25) {
        let _ = writeln!(out, "{:>16} {:>+9.4}", c.name, c.value);
    }
    out
}

/// `attn info`.
/// A copy of `info` with every string that came from a file escaped for the terminal
/// ([`crate::tokenize::escape_text`]): what `attn info`, `attn show` and the explorer display.
pub fn escaped_info(info: &ModelInfo) -> ModelInfo {
    use crate::tokenize::escape_text as esc;
    ModelInfo {
        spec: esc(&info.spec),
        name: esc(&info.name),
        positional: info.positional,
        tokenizer: esc(&info.tokenizer),
        source: esc(&info.source),
        notes: info.notes.iter().map(|n| esc(n)).collect(),
        ..info.clone()
    }
}

pub fn render_info(info: &ModelInfo) -> String {
    let kind = if info.causal {
        "decoder, causal"
    } else {
        "encoder, bidirectional"
    };
    render_info_as(info, kind, info.head_dim())
}

/// `attn info` of an encoder–decoder: its kind and the head width of its attention (T5's `d_kv` need not be
/// d_model / heads).
pub fn render_encdec_info(m: &crate::model::encdec::EncoderDecoder) -> String {
    render_info_as(
        &m.info,
        "encoder–decoder: bidirectional encoder, causal decoder with cross-attention",
        m.encoder.attn.head_dim,
    )
}

fn render_info_as(info: &ModelInfo, kind: &str, head_dim: usize) -> String {
    let info = &escaped_info(info);
    let mut out = String::new();
    let _ = writeln!(out, "model         {}", info.name);
    let _ = writeln!(out, "spec          {}", info.spec);
    let _ = writeln!(out, "architecture  {} ({kind})", info.arch.name());
    let _ = writeln!(out, "layers        {}", info.n_layers);
    if info.n_kv_heads != info.n_heads {
        let _ = writeln!(
            out,
            "heads         {} query / {} key-value (grouped-query, {} query heads per KV head)",
            info.n_heads,
            info.n_kv_heads,
            info.n_heads / info.n_kv_heads.max(1)
        );
    } else {
        let _ = writeln!(out, "heads         {}", info.n_heads);
    }
    let _ = writeln!(out, "d_model       {} (head dim {head_dim})", info.d_model);
    let _ = writeln!(out, "d_ff          {}", info.d_ff);
    let _ = writeln!(out, "vocab         {}", info.vocab_size);
    let _ = writeln!(out, "max tokens    {}", info.max_len);
    let _ = writeln!(
        out,
        "parameters    {} ({:.1}M)",
        info.n_params,
        info.n_params as f64 / 1e6
    );
    let _ = writeln!(out, "positions     {}", info.positional);
    let _ = writeln!(out, "tokenizer     {}", info.tokenizer);
    let _ = writeln!(out, "loaded from   {}", info.source);
    for n in &info.notes {
        let _ = writeln!(out, "note          {n}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::arr2;

    #[test]
    fn fit_measures_display_width() {
        assert_eq!(fit("abc", 5), "abc  ");
        assert_eq!(fit("abcdef", 4), "abc…");
        assert_eq!(fit("안녕하세요", 5), "안녕…");
        assert_eq!(fit("안녕하세요", 5).width(), 5);
        assert_eq!(fit("🤖x", 3), "🤖x");
        assert_eq!(fit_right("7", 3), "  7");
    }

    #[test]
    fn korean_jamo_rows_stay_aligned() {
        // `attn show` uses the tokenizer's display labels: lone jamo are visible and measured like the explorer's.
        let t = crate::tokenize::Tokenizer::bundled_bert_uncased();
        let e = t.encode("나는 AI를 사랑해", None).unwrap();
        let labels: Vec<String> = e.tokens.iter().map(|t| t.label.clone()).collect();
        let n = labels.len();
        let m = ndarray::Array2::from_elem((n, n), 1.0 / n as f32);
        let g = render_grid(&labels, &m.view(), Palette::Mono);
        let widths: Vec<usize> = g.lines().map(|l| l.width()).collect();
        assert!(widths.iter().all(|w| *w == widths[0]), "{g}");
        assert!(g.contains("##ㅏ"), "{g}");
    }

    #[test]
    fn a_window_of_the_grid_fits_the_width() {
        let labels: Vec<String> = (0..40).map(|i| format!("t{i}")).collect();
        let m = ndarray::Array2::from_elem((40, 40), 0.025f32);
        let k = grid_cols_fitting(40, 80);
        let g = render_grid_window(&labels, &m.view(), Palette::Mono, 5..10, 3..3 + k);
        assert!(g.lines().all(|l| l.width() <= 80), "{g}");
        assert_eq!(g.lines().count(), 2 + 5);
        assert!(g.lines().nth(2).unwrap().starts_with(" 5 t5"), "{g}");
    }

    #[test]
    fn plain_grid_has_digits_and_labels() {
        let labels = vec!["[CLS]".to_string(), "love".into()];
        let m = arr2(&[[1.0f32, 0.0], [0.25, 0.75]]);
        let g = render_grid(&labels, &m.view(), Palette::Mono);
        assert!(!g.contains('\x1b'));
        let lines: Vec<&str> = g.lines().collect();
        assert_eq!(lines.len(), 4);
        assert!(
            lines[2].contains("[CLS]") && lines[2].ends_with("1.00    0"),
            "{g}"
        );
        assert!(lines[3].ends_with(" .25  .75"), "{g}");
        let c = render_grid(&labels, &m.view(), Palette::TrueColor);
        assert!(c.contains("\x1b[48;2;"));
    }
}
