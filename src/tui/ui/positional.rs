//! Positional encodings: the vector added at one position as bars over dimensions (sinusoidal: sin/cos waves of
//! falling frequency; learned: the learned vector), RoPE's rotation angle per frequency pair, and a positions ×
//! dimensions heatmap.

use super::widgets::{Theme, put, put_str, signed_bars};
use crate::colormap;
use crate::trace::Positional;
use crate::tui::app::App;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::Line;
use ratatui::widgets::{Block, BorderType, Widget};
use std::f32::consts::TAU;

const LOWER: [&str; 9] = [" ", "▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"];

fn block<'a>(title: String, theme: &Theme) -> Block<'a> {
    Block::bordered()
        .border_type(BorderType::Rounded)
        .border_style(theme.dim())
        .title(Line::styled(title, theme.title()))
}

/// The position shown: the query token under the cursor (clamped to the positional matrix).
pub fn position(app: &App) -> Option<usize> {
    let t = app.trace()?;
    let rows = t.positional.matrix().nrows();
    // A relative bias has one row per head: the head on screen.
    let q = match t.positional {
        Positional::Relative(_) => app.sel.head,
        _ => app.query_token()?,
    };
    (rows > 0).then(|| q.min(rows - 1))
}

fn label(app: &App, pos: usize) -> String {
    match app.trace().map(|t| &t.positional) {
        Some(Positional::Relative(_)) => format!("head {pos}"),
        _ => app.token_label(pos),
    }
}

/// What one position's bars show, its values, and the value that fills a bar.
pub fn bar_values(p: &Positional, pos: usize) -> (Vec<f32>, f32) {
    match p {
        Positional::Sinusoidal(m) => (m.row(pos).to_vec(), 1.0),
        Positional::Learned(m) => {
            // Learned vectors have a few outlier dimensions: scale by the 95th percentile of |v| so the rest shows
            // (the outliers are drawn as full bars).
            let row = m.row(pos).to_vec();
            let mut abs: Vec<f32> = row
                .iter()
                .map(|v| v.abs())
                .filter(|v| v.is_finite())
                .collect();
            abs.sort_by(f32::total_cmp);
            let p95 = abs.get(abs.len() * 95 / 100).copied().unwrap_or(0.0);
            (row, if p95 > 0.0 { p95 } else { 1.0 })
        }
        Positional::Rotary { angles, .. } => (
            angles.row(pos).iter().map(|a| a.rem_euclid(TAU)).collect(),
            TAU,
        ),
        // Every head on one scale, so heads compare.
        Positional::Relative(m) => (
            m.row(pos).to_vec(),
            m.iter()
                .filter(|v| v.is_finite())
                .fold(0.0f32, |a, v| a.max(v.abs()))
                .max(1e-6),
        ),
    }
}

/// Unsigned vertical bars filling `area` from the bottom (RoPE angles in [0, 2π)); when there are fewer values than
/// columns each bar is widened so the plot takes the whole width.
pub fn up_bars(buf: &mut Buffer, area: Rect, values: &[f32], full: f32, style: Style) {
    let cw = (area.width as usize / values.len().max(1)).max(1);
    for (i, v) in values.iter().take(area.width as usize).enumerate() {
        let e = ((v / full).clamp(0.0, 1.0) * area.height as f32 * 8.0).round() as usize;
        for r in 0..area.height {
            let fill = e.saturating_sub(r as usize * 8).min(8);
            if fill == 0 {
                continue;
            }
            for k in 0..cw {
                let x = i * cw + k;
                if x < area.width as usize {
                    buf.set_string(
                        area.x + x as u16,
                        area.y + area.height - 1 - r,
                        LOWER[fill],
                        style,
                    );
                }
            }
        }
    }
}

fn caption(p: &Positional, d: usize) -> String {
    match p {
        Positional::Sinusoidal(_) => {
            format!(
                "PE(pos,2i)=sin(pos/10000^(2i/d)), PE(pos,2i+1)=cos(…) · d={d} · fast waves left, slow right"
            )
        }
        Positional::Learned(_) => format!("learned absolute position embedding · {d} dimensions"),
        Positional::Rotary {
            freqs, head_dim, ..
        } => format!(
            "RoPE: q,k pairs rotated by pos·θᵢ · {} pairs of head dim {head_dim} · θ₀={:.3} … θ_last={:.2e}",
            freqs.len(),
            freqs.first().copied().unwrap_or(0.0),
            freqs.last().copied().unwrap_or(0.0)
        ),
        Positional::Relative(_) => format!(
            "relative position bias on q·k (T5 buckets) · distance key − query from −{0} (left) to +{0}",
            d / 2
        ),
    }
}

/// The bars of one position into a bordered box.
pub fn render_bars(app: &App, area: Rect, buf: &mut Buffer) {
    let theme = Theme::new(app.color);
    let Some(t) = app.trace() else {
        block(" Positional encoding ".into(), &theme).render(area, buf);
        return;
    };
    let Some(pos) = position(app) else { return };
    let p = &t.positional;
    let (values, full) = bar_values(p, pos);
    let what = match p {
        Positional::Rotary { .. } => "rotation angle per frequency pair (mod 2π)",
        Positional::Relative(_) => "bias added to the scores by distance",
        _ => "vector added to the embedding",
    };
    let at = match p {
        Positional::Relative(_) => label(app, pos),
        _ => format!("position {pos} «{}»", label(app, pos)),
    };
    let title = format!(" Positional ({}) · {at} · {what} ", p.kind());
    let b = block(title, &theme);
    let inner = b.inner(area);
    b.render(area, buf);
    if inner.height < 2 || inner.width < 4 {
        return;
    }
    let start = app.panes.pos_scroll.min(values.len().saturating_sub(1));
    let shown = &values[start.min(values.len())..];
    let bars = Rect::new(inner.x, inner.y, inner.width, inner.height - 1);
    match p {
        Positional::Rotary { .. } => up_bars(buf, bars, shown, full, theme.positive()),
        Positional::Sinusoidal(_) if bars.height >= 4 && bars.width > 8 => {
            // Even dimensions carry sin, odd ones cos: drawn as two waves over the frequency index i.
            // Each wave gets an even number of rows: as many above its centre line as below.
            let half = (bars.height / 2) & !1;
            let lw = 4;
            for (k, name) in [(0usize, "sin"), (1, "cos")] {
                let wave: Vec<f32> = shown
                    .iter()
                    .skip((start + k) % 2)
                    .step_by(2)
                    .copied()
                    .collect();
                let y = bars.y + k as u16 * half;
                let h = half;
                put(
                    buf,
                    bars.x,
                    (y + h / 2).saturating_sub(1).max(y),
                    lw,
                    name,
                    theme.dim(),
                );
                signed_bars(
                    buf,
                    Rect::new(bars.x + lw, y, bars.width - lw, h),
                    &wave,
                    full,
                    &theme,
                );
            }
        }
        _ => signed_bars(buf, bars, shown, full, &theme),
    }
    let per_col = if matches!(p, Positional::Sinusoidal(_)) && bars.height >= 4 && bars.width > 8 {
        2
    } else {
        1
    };
    // Rotary bars widen to the width: every pair from `start` is on screen when they fit.
    let end = (start + inner.width as usize * per_col).min(values.len());
    let unit = match p {
        Positional::Rotary { .. } => "pairs",
        Positional::Relative(_) => "distances",
        _ => "dims",
    };
    let axis = match p {
        Positional::Rotary { .. } => "full bar 2π".to_string(),
        _ => format!("full bar ±{}", short_num(full)),
    };
    let note = format!(
        "{unit} {start}–{} of {} · {axis} · {}",
        end.saturating_sub(1),
        values.len(),
        caption(p, values.len())
    );
    put(
        buf,
        inner.x,
        inner.y + inner.height - 1,
        inner.width,
        &note,
        theme.dim(),
    );
}

/// A value in a few characters: `0.05`, `1.87`, `12.3`.
fn short_num(v: f32) -> String {
    if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// The heatmap value of (position, dimension) mapped into [0, 1]. Learned embeddings span a wide range (a few
/// outlier dimensions, the rest small): a signed square root over the true maximum shows both without saturating.
fn heat_value(p: &Positional, max_abs: f32, r: usize, c: usize) -> f32 {
    match p {
        Positional::Sinusoidal(m) | Positional::Relative(m) => {
            let v = m.get([r, c]).copied().unwrap_or(0.0);
            (0.5 + 0.5 * v / max_abs).clamp(0.0, 1.0)
        }
        Positional::Learned(m) => {
            let v = m.get([r, c]).copied().unwrap_or(0.0) / max_abs;
            (0.5 + 0.5 * v.signum() * v.abs().sqrt()).clamp(0.0, 1.0)
        }
        Positional::Rotary { angles, .. } => {
            0.5 + 0.5 * angles.get([r, c]).copied().unwrap_or(0.0).cos()
        }
    }
}

/// The positions × dimensions heatmap (one row per position, one column per dimension from `pos_scroll`).
pub fn render_heatmap(app: &App, area: Rect, buf: &mut Buffer) {
    let theme = Theme::new(app.color);
    let Some(t) = app.trace() else { return };
    let p = &t.positional;
    let m = p.matrix();
    let (what, rows) = match p {
        Positional::Rotary { .. } => ("cos(angle): positions × frequency pairs", "position"),
        Positional::Relative(_) => ("relative bias: heads × distance key − query", "head"),
        _ => ("positions × dimensions", "position"),
    };
    let b = block(
        format!(" {what} · ←/→ pan · H/L a screen · j/k {rows} "),
        &theme,
    );
    let inner = b.inner(area);
    b.render(area, buf);
    if inner.height < 3 || inner.width < 12 {
        return;
    }
    let (rows, cols) = (m.nrows(), m.ncols());
    // Colour scale: the data's own largest |value| (±1 for sinusoids).
    let max_abs = m
        .iter()
        .filter(|v| v.is_finite())
        .fold(0.0f32, |a, v| a.max(v.abs()))
        .max(1e-6);
    let label_w = 12u16.min(inner.width / 3);
    let map_w = inner.width - label_w - 1;
    let map_h = inner.height - 1;
    let sel = position(app).unwrap_or(0);
    let first_row = if rows <= map_h as usize {
        0
    } else {
        sel.saturating_sub(map_h as usize / 2)
            .min(rows - map_h as usize)
    };
    let c0 = app.panes.pos_scroll.min(cols.saturating_sub(1));
    for vr in 0..(map_h as usize).min(rows - first_row.min(rows)) {
        let r = first_row + vr;
        let y = inner.y + vr as u16;
        let st = if r == sel {
            theme.selected()
        } else {
            theme.label()
        };
        put(
            buf,
            inner.x,
            y,
            label_w,
            &format!("{r:>3} {}", label(app, r)),
            st,
        );
        for vc in 0..map_w as usize {
            let c = c0 + vc;
            if c >= cols {
                break;
            }
            let v = heat_value(p, max_abs, r, c);
            let x = inner.x + label_w + 1 + vc as u16;
            if theme.mono() {
                buf.set_string(x, y, colormap::shade(v).to_string(), Style::default());
            } else {
                buf.set_string(x, y, " ", theme.heat(v));
            }
        }
    }
    let note = match p {
        Positional::Rotary { .. } => "dark: cos −1 · bright: cos +1".to_string(),
        Positional::Learned(_) => format!(
            "dark: −{0} · bright: +{0} (square-root scale)",
            short_num(max_abs)
        ),
        _ => format!("dark: −{0} · bright: +{0}", short_num(max_abs)),
    };
    let y = inner.y + inner.height - 1;
    let x = put_str(
        buf,
        inner.x,
        y,
        inner.width,
        &format!(
            "rows {first_row}–{} of {rows} · cols {c0}–{} of {cols} · ",
            (first_row + map_h as usize).min(rows).saturating_sub(1),
            (c0 + map_w as usize).min(cols).saturating_sub(1)
        ),
        theme.dim(),
    );
    put_str(
        buf,
        x,
        y,
        (inner.x + inner.width).saturating_sub(x),
        &note,
        theme.dim(),
    );
}

/// The full positional view (`p`): bars on top, heatmap below.
pub fn render_view(app: &App, area: Rect, buf: &mut Buffer) {
    if app.trace().is_none() {
        let theme = Theme::new(app.color);
        block(" Positional encoding ".into(), &theme).render(area, buf);
        return;
    }
    let top_h = (area.height * 2 / 5).clamp(5.min(area.height), 18);
    render_bars(app, Rect::new(area.x, area.y, area.width, top_h), buf);
    render_heatmap(
        app,
        Rect::new(area.x, area.y + top_h, area.width, area.height - top_h),
        buf,
    );
}
