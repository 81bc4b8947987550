//! Inside one head: how the weight under the cursor is computed (q, k, q⊙k, the scale, the mask, the row's
//! softmax) and what the head writes (Σ α·v, and through its slice of W_O). Pure draw functions over
//! [`WeightComputation`]; small heads show every number, large ones signed bars, the top dimensions, and scroll.

use super::widgets::{Theme, hbar, w3};
use crate::explain::{WeightComputation, norm};
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Paragraph, Widget};

/// Column width of one number in the "every number" layout.
pub const NUM_W: usize = 7;
/// Width of the row labels (`q`, `k`, `q⊙k`, ...).
pub const LABEL_W: usize = 8;

const LOWER: [&str; 9] = [" ", "▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"];

/// A number in 7 columns, right-aligned: `  0.123`, ` -1.500`, `   −∞`.
pub fn n7(v: f32) -> String {
    if v == f32::NEG_INFINITY {
        format!("{:>w$}", "−∞", w = NUM_W)
    } else if v.abs() >= 1000.0 {
        format!("{v:>w$.0}", w = NUM_W)
    } else {
        format!("{v:>w$.3}", w = NUM_W)
    }
}

/// Whether `d` numbers fit on one line of `width` columns after the label.
pub fn fits(d: usize, width: u16) -> bool {
    LABEL_W + d * NUM_W <= width as usize
}

pub fn framed<'a>(title: String, theme: &Theme) -> Block<'a> {
    Block::bordered()
        .border_type(BorderType::Rounded)
        .border_style(theme.dim())
        .title(Line::styled(title, theme.title()))
}

fn label(s: &str, theme: &Theme) -> Span<'static> {
    Span::styled(format!("{s:<LABEL_W$}"), theme.accent())
}

/// A vector as a row of numbers (`marked` dimensions bold), from dimension `first`.
pub fn number_row(
    name: &str,
    values: &[f32],
    first: usize,
    cols: usize,
    marked: &[usize],
    theme: &Theme,
) -> Line<'static> {
    let mut spans = vec![label(name, theme)];
    for (d, v) in values.iter().enumerate().skip(first).take(cols) {
        let st = if marked.contains(&d) {
            theme.title()
        } else if *v < 0.0 {
            theme.negative()
        } else {
            theme.text()
        };
        spans.push(Span::styled(n7(*v), st));
    }
    Line::from(spans)
}

/// The dimension header of a number row.
pub fn dim_header(first: usize, cols: usize, d: usize, theme: &Theme) -> Line<'static> {
    let mut s = format!("{:<LABEL_W$}", "dim");
    for i in first..(first + cols).min(d) {
        s.push_str(&format!("{i:>NUM_W$}"));
    }
    Line::styled(s, theme.dim())
}

/// A vector as two rows of signed bars, one column per dimension from `first`: positive grows up from the middle,
/// negative down (a reversed lower block fills from the top). `scale` fills a half.
pub fn strip(
    name: &str,
    values: &[f32],
    first: usize,
    cols: usize,
    scale: f32,
    theme: &Theme,
) -> [Line<'static>; 2] {
    let scale = if scale > 0.0 && scale.is_finite() {
        scale
    } else {
        1.0
    };
    let mut up = vec![label(name, theme)];
    let mut down = vec![Span::raw(" ".repeat(LABEL_W))];
    for v in values.iter().skip(first).take(cols) {
        let v = if v.is_finite() { *v } else { 0.0 };
        let e = ((v.abs() / scale).min(1.0) * 8.0).round() as usize;
        if v >= 0.0 {
            up.push(Span::styled(LOWER[e], theme.positive()));
            down.push(Span::raw(" "));
        } else {
            up.push(Span::raw(" "));
            down.push(if e == 8 {
                Span::styled("█", theme.negative())
            } else if e == 0 {
                Span::raw(" ")
            } else {
                Span::styled(
                    LOWER[8 - e],
                    theme.negative().add_modifier(Modifier::REVERSED),
                )
            });
        }
    }
    [Line::from(up), Line::from(down)]
}

/// Vectors that share one scale, as numbers when they fit, else as signed bars. `first` pans the dimensions.
pub fn vectors(
    rows: &[(&str, &[f32], &[usize])],
    first: usize,
    width: u16,
    theme: &Theme,
) -> Vec<Line<'static>> {
    let d = rows.iter().map(|r| r.1.len()).max().unwrap_or(0);
    let mut out = vec![];
    if fits(d, width) {
        out.push(dim_header(0, d, d, theme));
        for (name, v, marked) in rows {
            out.push(number_row(name, v, 0, d, marked, theme));
        }
    } else {
        let cols = (width as usize).saturating_sub(LABEL_W);
        let first = first.min(d.saturating_sub(cols));
        let scale = rows
            .iter()
            .flat_map(|r| r.1.iter())
            .fold(0.0f32, |m, v| m.max(v.abs()));
        out.push(Line::styled(
            format!(
                "dims {first}–{} of {d} · bars: ± up to {scale:.3} · [ ] pan",
                (first + cols).min(d).saturating_sub(1)
            ),
            theme.dim(),
        ));
        for (name, v, _) in rows {
            out.extend(strip(name, v, first, cols, scale, theme));
        }
    }
    out
}

/// `«label»` of token `i`, or `#i` without labels.
pub fn tok(labels: &[String], i: usize) -> String {
    labels
        .get(i)
        .map(|l| format!("{i} «{l}»"))
        .unwrap_or_else(|| format!("#{i}"))
}

/// The labels of the query tokens (rows) and the key tokens (columns: the source tokens for cross-attention).
#[derive(Debug, Clone, Copy)]
pub struct Labels<'a> {
    pub query: &'a [String],
    pub key: &'a [String],
}

impl<'a> Labels<'a> {
    /// Self-attention: queries and keys are the same tokens.
    pub fn same(labels: &'a [String]) -> Self {
        Labels {
            query: labels,
            key: labels,
        }
    }
}

/// The lines of the weight computation (`scroll` pans dimensions of large heads).
pub fn weight_lines(c: &WeightComputation, labels: Labels, p: Pane) -> Vec<Line<'static>> {
    let Pane { width, pan, theme } = p;
    let kv = c
        .kv_head
        .map(|g| format!(" · k and v from KV head {g}"))
        .unwrap_or_default();
    let mut l = p.title(format!(
        "query {} · key {} · head {}{kv}",
        tok(labels.query, c.query),
        tok(labels.key, c.key),
        c.head
    ));
    if let Some(r) = &c.rotary {
        let none: &[usize] = &[];
        for (caption, pair) in [
            (
                "rotary: q and k below are rotated by their positions; before the rotation:",
                [("q pre", &r.q_pre), ("k pre", &r.k_pre)],
            ),
            (
                "angles of the pairs (d, d + d_head/2) at the query's / key's position, radians:",
                [("θ query", &r.angles_q), ("θ key", &r.angles_k)],
            ),
        ] {
            l.push(Line::styled(caption, theme.dim()));
            l.extend(vectors(
                &pair.map(|(name, v)| (name, v.as_slice(), none)),
                pan,
                width,
                theme,
            ));
        }
    }
    l.extend(vectors(
        &[
            ("q", &c.q, &[]),
            ("k", &c.k, &[]),
            ("q⊙k", &c.qk, &c.top_dims),
        ],
        pan,
        width,
        theme,
    ));
    let top: Vec<String> = c
        .top_dims
        .iter()
        .map(|&d| format!("d{d} {:+.3}", c.qk[d]))
        .collect();
    l.push(Line::from(vec![
        Span::styled("largest |q⊙k|: ", theme.dim()),
        Span::raw(top.join(" · ")),
    ]));
    l.push(Line::from(vec![
        Span::styled("q·k = Σ q⊙k = ", theme.dim()),
        Span::raw(format!("{:.4}", c.score)),
        Span::styled(
            if c.scale == 1.0 {
                "  (no 1/√d scale)".to_string()
            } else {
                format!("  × scale {:.4} (1/√d_head)", c.scale)
            },
            theme.dim(),
        ),
        Span::styled(
            c.bias
                .map(|b| format!("  + position bias {b:.4}"))
                .unwrap_or_default(),
            theme.dim(),
        ),
        Span::styled(" = scaled ", theme.dim()),
        Span::styled(format!("{:.4}", c.scaled), theme.accent()),
    ]));
    if c.masked {
        l.push(Line::styled(
            format!(
                "masked: key {} comes after query {} (a decoder reads only the past): −∞ → weight 0",
                c.key, c.query
            ),
            theme.error(),
        ));
    } else {
        l.push(Line::styled(
            format!("mask: key {} is visible to query {}", c.key, c.query),
            theme.dim(),
        ));
    }
    l.push(Line::styled(
        format!(
            "softmax over the row of query {}: exp(x − max), max = {:.4}",
            c.query, c.row_max
        ),
        theme.title(),
    ));
    l.push(Line::styled(
        format!(
            "{:<14}{:>9}{:>12}{:>9}",
            "key", "scaled", "exp(x−max)", "weight"
        ),
        theme.dim(),
    ));
    let bw = (width as usize).saturating_sub(46).min(20) as u16;
    for (j, s) in c.row_scaled.iter().enumerate() {
        let name = crate::show::fit(&tok(labels.key, j), 13);
        let scaled = s.map_or("−∞".to_string(), |v| format!("{v:.3}"));
        let text = format!(
            "{name} {scaled:>9}{:>12.4}{:>9}  ",
            c.row_exp[j],
            w3(c.row_weights[j])
        );
        let st = if j == c.key {
            theme.selected()
        } else {
            theme.text()
        };
        l.push(Line::from(vec![
            Span::styled(text, st),
            Span::styled(hbar(c.row_weights[j], bw), theme.bar()),
        ]));
    }
    l.push(Line::from(vec![
        Span::styled("Σ exp = ", theme.dim()),
        Span::raw(format!("{:.4}", c.exp_sum)),
        Span::styled(
            format!(" · weight = {:.4} / {:.4} = ", c.exp, c.exp_sum),
            theme.dim(),
        ),
        Span::styled(format!("{:.4}", c.weight), theme.accent()),
    ]));
    l
}

/// The lines of "what the head writes": every key's value, weighted, summed to z; with `through_wo`, z through
/// the head's slice of W_O and every head's ‖W_O^h z_h‖ (`head_norms`, this head marked).
pub fn writes_lines(
    c: &WeightComputation,
    labels: Labels,
    through_wo: bool,
    head_norms: &[f32],
    p: Pane,
) -> Vec<Line<'static>> {
    let Pane { width, pan, theme } = p;
    let mut l = p.title(format!(
        "head {} · query {}: z = Σ_j α_ij · v_j",
        c.head,
        tok(labels.query, c.query)
    ));
    let d = c.z.len();
    if fits(d, width) {
        l.push(dim_header(0, d, d, theme));
        for (j, v) in c.row_values.iter().enumerate() {
            let w = c.row_weights[j];
            let name = format!("v{j}");
            l.push(number_row(&name, v, 0, d, &[], theme));
            let wv: Vec<f32> = v.iter().map(|x| x * w).collect();
            let mut row = number_row(&format!("×{}", w3(w)), &wv, 0, d, &[], theme);
            if j == c.key {
                row = row.patch_style(Style::default().add_modifier(Modifier::BOLD));
            }
            l.push(row);
        }
    } else {
        l.push(Line::styled(
            format!("{:<14}{:>8}{:>9}{:>10}", "key", "α", "‖v_j‖", "‖α·v_j‖"),
            theme.dim(),
        ));
        let max = c
            .v_norms
            .iter()
            .zip(&c.row_weights)
            .map(|(n, w)| n * w)
            .fold(0.0f32, f32::max)
            .max(1e-12);
        let bw = (width as usize).saturating_sub(44).min(24) as u16;
        for (j, n) in c.v_norms.iter().enumerate() {
            let w = c.row_weights[j];
            let st = if j == c.key {
                theme.selected()
            } else {
                theme.text()
            };
            l.push(Line::from(vec![
                Span::styled(
                    format!(
                        "{} {:>8}{:>9.3}{:>10.3}  ",
                        crate::show::fit(&tok(labels.key, j), 13),
                        w3(w),
                        n,
                        n * w
                    ),
                    st,
                ),
                Span::styled(hbar(n * w / max, bw), theme.bar()),
            ]));
        }
    }
    l.extend(vectors(&[("z", &c.z, &[])], pan, width, theme));
    l.push(Line::styled(
        format!("‖z‖ = {:.4}", norm(&c.z)),
        theme.dim(),
    ));
    match (&c.head_out, through_wo) {
        (Some(o), true) => {
            l.push(Line::styled(
                format!(
                    "through W_O (head {}'s {d} columns): what the head adds to the residual stream",
                    c.head
                ),
                theme.title(),
            ));
            l.extend(vectors(&[("W_O z", o, &[])], pan, width, theme));
            l.push(Line::styled(
                "‖W_O^h z_h‖ of every head for this query:",
                theme.dim(),
            ));
            let max = head_norms.iter().fold(0.0f32, |m, v| m.max(*v)).max(1e-12);
            let bw = (width as usize).saturating_sub(16).min(30) as u16;
            for (h, n) in head_norms.iter().enumerate() {
                let st = if h == c.head {
                    theme.selected()
                } else {
                    theme.text()
                };
                l.push(Line::from(vec![
                    Span::styled(format!("h{h:<3}"), st),
                    Span::styled(hbar(n / max, bw), theme.bar()),
                    Span::raw(format!(" {n:.3}")),
                ]));
            }
        }
        (Some(_), false) => l.push(Line::styled(
            "o: through this head's slice of W_O",
            theme.dim(),
        )),
        (None, _) => {}
    }
    l
}

/// Draw a view's lines (made for the box's inner width and the dimensions panned by `scroll.1`) in a framed box
/// scrolled by `scroll.0` rows.
pub fn boxed_lines(
    buf: &mut Buffer,
    area: Rect,
    title: String,
    lines: impl FnOnce(Pane) -> Vec<Line<'static>>,
    scroll: (usize, usize),
    theme: &Theme,
) {
    let width = area.width.saturating_sub(2);
    let ls = lines(Pane {
        width,
        pan: scroll.1,
        theme,
    });
    boxed(buf, area, title, ls, scroll.0, theme);
}

/// A view drawn as lines in a box: the embedding and the block walk-through.
pub trait Boxed {
    /// The box's title.
    fn title(&self) -> String;
    /// The lines, over the token `labels`.
    fn lines(&self, labels: &[String], p: Pane) -> Vec<Line<'static>>;
}

/// Draw a [`Boxed`] view, scrolled by `scroll` (rows, dimensions).
pub fn render_boxed(
    buf: &mut Buffer,
    area: Rect,
    view: &dyn Boxed,
    labels: &[String],
    scroll: (usize, usize),
    theme: &Theme,
) {
    let lines = |p: Pane| view.lines(labels, p);
    boxed_lines(buf, area, view.title(), lines, scroll, theme);
}

/// The rows of a [`Boxed`] view drawn in monochrome on a `size` (width, height) buffer (for tests).
#[cfg(test)]
pub fn boxed_rows(
    view: &dyn Boxed,
    labels: &[String],
    size: (u16, u16),
    scroll: (usize, usize),
) -> Vec<String> {
    let mut buf = Buffer::empty(Rect::new(0, 0, size.0, size.1));
    let theme = Theme::new(crate::tui::app::Palette::Mono);
    let area = buf.area;
    render_boxed(&mut buf, area, view, labels, scroll, &theme);
    crate::tui::ui::buffer_rows(&buf)
}

/// Where a computation view's lines go: the box's inner width, the first dimension shown (`[ ]` pans) and the theme.
#[derive(Clone, Copy)]
pub struct Pane<'t> {
    pub width: u16,
    pub pan: usize,
    pub theme: &'t Theme,
}

impl Pane<'_> {
    /// The view's lines so far: its first line, in the title style.
    pub fn title(&self, text: String) -> Vec<Line<'static>> {
        vec![Line::styled(text, self.theme.title())]
    }
}

/// Draw lines in a framed box, scrolled by `scroll` rows.
pub fn boxed(
    buf: &mut Buffer,
    area: Rect,
    title: String,
    lines: Vec<Line<'static>>,
    scroll: usize,
    theme: &Theme,
) {
    let b = framed(title, theme);
    let inner = b.inner(area);
    b.render(area, buf);
    let max = lines.len().saturating_sub(inner.height as usize);
    Paragraph::new(lines)
        .scroll((scroll.min(max) as u16, 0))
        .render(inner, buf);
}

/// The computation-of-one-weight view.
pub fn render_weight(
    buf: &mut Buffer,
    area: Rect,
    c: &WeightComputation,
    labels: Labels,
    scroll: (usize, usize),
    theme: &Theme,
) {
    let title = format!(
        " How weight ({}, {}) is computed · hjkl cell · J/K scroll · o: what the head writes ",
        c.query, c.key
    );
    boxed_lines(
        buf,
        area,
        title,
        |p| weight_lines(c, labels, p),
        scroll,
        theme,
    );
}

/// The what-the-head-writes view; `through_wo`: every head's ‖W_O^h z_h‖ for the query (the view's `o` toggle).
pub fn render_writes(
    buf: &mut Buffer,
    area: Rect,
    c: &WeightComputation,
    labels: Labels,
    through_wo: Option<&[f32]>,
    scroll: (usize, usize),
    theme: &Theme,
) {
    let title = format!(
        " What head {} writes · t: through W_O {} ",
        c.head,
        if through_wo.is_some() { "on" } else { "off" }
    );
    let norms = through_wo.unwrap_or(&[]);
    let lines = |p: Pane| writes_lines(c, labels, through_wo.is_some(), norms, p);
    boxed_lines(buf, area, title, lines, scroll, theme);
}

#[cfg(test)]
mod tests;
