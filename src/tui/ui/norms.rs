//! Residual-stream statistics per layer: ‖stream‖ for the selected token and the mean over tokens, the norms of the
//! attention and feed-forward updates, and their ratio to the stream, as bars plus numbers.

use super::widgets::{Theme, hbar};
use crate::analysis::LayerNorms;
use crate::show::fit;
use crate::tui::app::App;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Paragraph, Widget};

fn block<'a>(title: String, theme: &Theme) -> Block<'a> {
    Block::bordered()
        .border_type(BorderType::Rounded)
        .border_style(theme.dim())
        .title(Line::styled(title, theme.title()))
}

fn token(app: &App) -> String {
    app.query_token()
        .and_then(|q| {
            app.trace()?
                .tokens
                .get(q)
                .map(|t| format!("{q} «{}»", t.label))
        })
        .unwrap_or_default()
}

/// A short number: 3 significant digits.
pub fn num(v: f32) -> String {
    let a = v.abs();
    if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// The first layer of a window of `rows` layers that keeps `sel` visible.
fn window(n: usize, rows: usize, sel: usize) -> usize {
    if n <= rows {
        0
    } else {
        sel.saturating_sub(rows / 2).min(n - rows)
    }
}

/// The compact table in the grid view's bottom strip.
pub fn render_compact(app: &App, area: Rect, buf: &mut Buffer) {
    let theme = Theme::new(app.color);
    let b = block(
        format!(
            " Residual stream norms · token {} ({}) ",
            token(app),
            app.panes.norm_stat.name()
        ),
        &theme,
    );
    let inner = b.inner(area);
    b.render(area, buf);
    let (tok, mean) = (
        &app.grid.norms_tok,
        app.data.as_ref().map(|d| d.norms(app.panes.norm_stat)),
    );
    let Some(mean) = mean else { return };
    if inner.height < 2 || tok.len() != mean.len() {
        return;
    }
    let max = tok
        .iter()
        .chain(mean.iter())
        .map(|r| r.resid_out)
        .fold(0.0f32, f32::max)
        .max(1e-6);
    let lw = app.n_layers().saturating_sub(1).to_string().len() + 1;
    let bw = inner.width.saturating_sub((lw + 40) as u16).clamp(4, 40);
    let mut lines = vec![Line::from(vec![Span::styled(
        fit(
            &format!(
                "{:<lw$} {:<w$} ‖x_out‖ (mean)    attn Δ/x   ffn Δ/x",
                "L",
                "",
                w = bw as usize
            ),
            inner.width as usize,
        ),
        theme.dim(),
    )])];
    let rows = inner.height as usize - 1;
    let first = window(tok.len(), rows, app.sel.layer);
    for (t, m) in tok.iter().zip(mean).skip(first).take(rows) {
        let sel = t.layer == app.sel.layer;
        lines.push(Line::from(vec![
            Span::styled(
                format!("{:<lw$}", format!("L{}", t.layer)),
                if sel { theme.selected() } else { theme.dim() },
            ),
            Span::raw(" "),
            Span::styled(hbar(t.resid_out / max, bw), theme.bar()),
            Span::raw(format!(
                " {:>6} ({:>6})",
                num(t.resid_out),
                num(m.resid_out)
            )),
            Span::styled(format!("  {:>6}", num(t.attn_ratio())), theme.bar_alt()),
            Span::styled(format!("   {:>6}", num(t.ffn_ratio())), theme.positive()),
        ]));
    }
    Paragraph::new(lines).render(inner, buf);
}

/// A bar's fill: linear, or log10 over four decades below the maximum.
fn fill(v: f32, max: f32, log: bool) -> f32 {
    if !log {
        return v / max;
    }
    if v <= 0.0 {
        return 0.0;
    }
    ((v / max).log10() / 4.0 + 1.0).clamp(0.0, 1.0)
}

fn cell(v: f32, max: f32, w: u16, style: ratatui::style::Style, log: bool) -> [Span<'static>; 2] {
    [
        Span::styled(hbar(fill(v, max, log), w), style),
        Span::raw(format!(" {:>7}  ", num(v))),
    ]
}

/// The full norms view (`n`).
pub fn render_view(app: &App, area: Rect, buf: &mut Buffer) {
    let theme = Theme::new(app.color);
    let b = block(
        format!(
            " Residual stream, layer by layer · token {} · bars {} ",
            token(app),
            if app.panes.log_bars {
                "log (4 decades)"
            } else {
                "linear"
            }
        ),
        &theme,
    );
    let inner = b.inner(area);
    b.render(area, buf);
    let Some(d) = &app.data else { return };
    let tok: &[LayerNorms] = &app.grid.norms_tok;
    let mean: &[LayerNorms] = d.norms(app.panes.norm_stat);
    if inner.height < 4 || inner.width < 30 || tok.len() != mean.len() {
        return;
    }
    let lw = 4u16;
    // Four columns: ‖x_out‖ token, ‖x_out‖ mean, attn Δ/‖x_in‖, ffn Δ/‖x_in‖; each a bar + a number.
    let col_w = (inner.width.saturating_sub(lw)) / 4;
    let bw = col_w.saturating_sub(10).max(2);
    let max_x = tok
        .iter()
        .chain(mean)
        .map(|r| r.resid_out.max(r.resid_in))
        .fold(0.0f32, f32::max)
        .max(1e-6);
    let max_r = tok
        .iter()
        .chain(mean)
        .map(|r| r.attn_ratio().max(r.ffn_ratio()))
        .fold(0.0f32, f32::max)
        .max(1e-6);
    let head = |s: &str| {
        Span::styled(
            fit(s, col_w.saturating_sub(1) as usize) + " ",
            theme.accent(),
        )
    };
    let mut lines = vec![Line::from(vec![
        Span::styled(fit("L", lw as usize), theme.accent()),
        head("‖x_out‖ this token"),
        head(&format!("‖x_out‖ {}", app.panes.norm_stat.name())),
        head("‖attn Δ‖ / ‖x_in‖"),
        head("‖ffn Δ‖ / ‖x_in‖"),
    ])];
    let notes = [
        "x_in/x_out: residual stream entering/leaving the block; Δ: what the sub-layer added (L2 norms).",
        "A ratio near 0: the block barely changes the token; above 1: it rewrites it.",
    ];
    let rows = (inner.height as usize).saturating_sub(1 + notes.len());
    let first = window(tok.len(), rows, app.sel.layer);
    for (t, m) in tok.iter().zip(mean).skip(first).take(rows) {
        let sel = t.layer == app.sel.layer;
        let mut spans = vec![Span::styled(
            fit(&format!("L{}", t.layer), lw as usize),
            if sel { theme.selected() } else { theme.dim() },
        )];
        let log = app.panes.log_bars;
        spans.extend(cell(t.resid_out, max_x, bw, theme.bar(), log));
        spans.extend(cell(m.resid_out, max_x, bw, theme.bar(), log));
        spans.extend(cell(t.attn_ratio(), max_r, bw, theme.bar_alt(), log));
        spans.extend(cell(t.ffn_ratio(), max_r, bw, theme.positive(), log));
        lines.push(Line::from(spans));
    }
    for n in notes {
        lines.push(Line::styled(n, theme.dim()));
    }
    Paragraph::new(lines).render(inner, buf);
}
