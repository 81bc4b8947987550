//! The attention grid: rows = query tokens, columns = key tokens, each cell coloured by weight.

use super::widgets::{Theme, half_block_picture, pct, put, put_str};
use crate::colormap::{self, Scale};
use crate::show::fit_right;
use crate::tokenize::TokenInfo;
use crate::tui::app::layout::{self, GridGeom};
use crate::tui::app::{App, Focus};
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, BorderType, Widget};

/// The grid block's title: what is shown.
pub fn title(app: &App) -> String {
    use crate::tui::encdec::AttnKind;
    let what = match app.kind() {
        None => "Attention",
        Some(AttnKind::EncoderSelf) => "Encoder self-attention",
        Some(AttnKind::DecoderSelf) => "Decoder self-attention",
        Some(AttnKind::Cross) => "Cross-attention (target × source)",
    };
    if app.interp.rollout {
        format!(
            " Rollout R_{} · attention followed through layers 0–{} (all heads) ",
            app.sel.layer, app.sel.layer
        )
    } else if app.sel.mean {
        format!(
            " {what} · layer {} · mean of {} heads ",
            app.sel.layer,
            app.n_heads()
        )
    } else {
        format!(" {what} · layer {} · head {} ", app.sel.layer, app.sel.head)
    }
}

/// Which rows/columns are on screen, when not everything is.
pub fn position_note(app: &App, g: &GridGeom) -> Option<String> {
    let (n, nk) = (app.grid.visible.len(), app.grid.cols.len());
    if n == 0 || nk == 0 {
        return None;
    }
    if app.grid.zoom {
        let (by_r, by_c, _, _) = layout::zoom_blocks(
            (n, nk),
            g.cells,
            app.color != crate::colormap::Palette::Mono,
        );
        return Some(format!(
            " zoomed out · {n}×{nk} · {by_r}×{by_c} tokens per dot · z: back "
        ));
    }
    if g.rows >= n && g.cols >= nk {
        return None;
    }
    let compact = g.inner.width < 60;
    // Non-square (cross-attention): rows × columns.
    let size = if n == nk {
        n.to_string()
    } else {
        format!("{n}×{nk}")
    };
    let (r0, c0) = app.grid.scroll;
    let r1 = (r0 + g.rows).min(n);
    let c1 = (c0 + g.cols).min(nk);
    Some(if compact {
        format!(
            " r{r0}–{} c{c0}–{} /{size} ",
            r1.saturating_sub(1),
            c1.saturating_sub(1)
        )
    } else {
        format!(
            " rows {r0}–{} · cols {c0}–{} of {size} · z: zoom out ",
            r1.saturating_sub(1),
            c1.saturating_sub(1)
        )
    })
}

/// Style of a token label on an axis (`toks`: the axis's tokens).
fn label_style(toks: &[TokenInfo], theme: &Theme, tok: usize, selected: bool) -> Style {
    if selected {
        return theme.selected();
    }
    match toks.get(tok) {
        Some(t) if t.special => theme.special(),
        Some(t) if t.type_id == 1 => theme.segment_b(),
        _ => theme.label(),
    }
}

fn label(toks: &[TokenInfo], tok: usize) -> &str {
    toks.get(tok).map(|t| t.label.as_str()).unwrap_or("")
}

/// Draw the grid block into `area`.
pub fn render(app: &App, area: Rect, buf: &mut Buffer) {
    let theme = Theme::new(app.color);
    let g = layout::grid_geom(app, area);
    let mut block = Block::bordered()
        .border_type(BorderType::Rounded)
        .border_style(theme.border(app.focus == Focus::Explorer))
        .title(Line::styled(title(app), theme.title()));
    if let Some(note) = position_note(app, &g) {
        block = block.title_bottom(Line::styled(note, theme.accent()).right_aligned());
    }
    block.render(area, buf);
    let inner = g.inner;
    if inner.width == 0 || inner.height == 0 {
        return;
    }
    if app.data.is_none() {
        let msg = if app.busy() {
            "running the model…"
        } else {
            "no trace yet: type a sentence and press Enter"
        };
        put(
            buf,
            inner.x + 1,
            inner.y,
            inner.width.saturating_sub(1),
            msg,
            theme.dim(),
        );
        return;
    }
    if app.grid.visible.is_empty() {
        put(
            buf,
            inner.x + 1,
            inner.y,
            inner.width.saturating_sub(1),
            "every token is special: x shows them again",
            theme.dim(),
        );
        return;
    }
    let lazy = app.data.as_ref().is_some_and(|d| d.lazy);
    if lazy && app.grid.matrix.nrows() != app.grid.visible.len() {
        // A long input: the head on screen is on its way from the worker.
        let msg = format!(
            "computing layer {} head {}… (a long input: attention is computed one head at a time)",
            app.sel.layer, app.sel.head
        );
        put(
            buf,
            inner.x + 1,
            inner.y,
            inner.width.saturating_sub(1),
            &msg,
            theme.dim(),
        );
        return;
    }
    if app.grid.zoom {
        render_zoom(app, &g, buf, &theme);
    } else {
        render_cells(app, &g, buf, &theme);
    }
    render_legend(app, g.legend, buf, &theme);
}

fn row_max(m: &ndarray::Array2<f32>, i: usize) -> f32 {
    m.row(i).iter().copied().fold(0.0f32, f32::max)
}

fn render_cells(app: &App, g: &GridGeom, buf: &mut Buffer, theme: &Theme) {
    let inner = g.inner;
    let cw = g.cell_w;
    let (r0, c0) = app.grid.scroll;
    let (n, nk) = (app.grid.visible.len(), app.grid.cols.len());
    let m = &app.grid.matrix;
    if m.nrows() != n || m.ncols() != nk {
        return;
    }
    let rows_t = app.trace().map(|t| t.tokens.as_slice()).unwrap_or(&[]);
    let cols_t = app.key_tokens();
    // Corner caption.
    put(
        buf,
        inner.x,
        inner.y + g.header_rows - 1,
        g.label_w,
        if app.is_cross() { "t╲s" } else { "q╲k" },
        theme.dim(),
    );
    // Column labels (staggered over two rows when they do not fit one cell).
    for vc in 0..g.cols {
        let j = c0 + vc;
        let Some(&tok) = app.grid.cols.get(j) else {
            break;
        };
        let x = g.cells.x + vc as u16 * cw;
        let style = label_style(cols_t, theme, tok, j == app.grid.cur.1);
        if g.header_rows == 1 {
            put(
                buf,
                x,
                inner.y,
                cw.saturating_sub(1).max(1),
                label(cols_t, tok),
                style,
            );
        } else {
            let y = if vc % 2 == 0 { inner.y + 1 } else { inner.y };
            let room = (inner.x + inner.width).saturating_sub(x);
            let w = (2 * cw - 1).min(room);
            let text = label(cols_t, tok);
            let shown = unicode_width::UnicodeWidthStr::width(text).min(w as usize) as u16;
            put(buf, x, y, shown.max(1), text, style);
        }
    }
    let idx_w = n
        .saturating_sub(1)
        .max(app.grid.visible.last().copied().unwrap_or(0))
        .to_string()
        .len();
    for vr in 0..g.rows {
        let i = r0 + vr;
        if i >= n {
            break;
        }
        let y = g.cells.y + vr as u16 * g.row_h;
        let tok = app.grid.visible[i];
        let row_label = format!("{:>idx_w$} {}", tok, label(rows_t, tok));
        put(
            buf,
            inner.x,
            y,
            g.label_w,
            &row_label,
            label_style(rows_t, theme, tok, i == app.grid.cur.0),
        );
        let rmax = row_max(m, i);
        for vc in 0..g.cols {
            let j = c0 + vc;
            if j >= nk {
                break;
            }
            let w = m[[i, j]];
            let t = app.grid.scale.apply(w, rmax);
            let x = g.cells.x + vc as u16 * cw;
            let cursor = (i, j) == app.grid.cur;
            if !w.is_finite() {
                // Not a weight: drawn as `NaN`/`∞` in the error colour, never as a 0 cell.
                let mark = if w.is_nan() { "NaN" } else { "∞" };
                let body = format!("{} ", fit_right(mark, cw.saturating_sub(1).max(1) as usize));
                let mut st = theme.error();
                if cursor {
                    st = st.add_modifier(Modifier::REVERSED | Modifier::BOLD);
                }
                for row in 0..g.row_h {
                    buf.set_stringn(x, y + row, &body, cw as usize, st);
                }
                continue;
            }
            let (text, style) = if theme.mono() {
                let shade = colormap::shade(t).to_string();
                let body = if cursor {
                    if cw >= 3 {
                        format!("[{}]", shade.repeat(cw as usize - 2))
                    } else {
                        "◆ ".to_string()
                    }
                } else {
                    format!("{} ", shade.repeat(cw as usize - 1))
                };
                (
                    body,
                    if cursor {
                        Style::default().add_modifier(Modifier::BOLD)
                    } else {
                        Style::default()
                    },
                )
            } else {
                let body = if app.grid.numbers && cw >= 3 {
                    format!("{} ", fit_right(&pct(w), cw as usize - 1))
                } else {
                    " ".repeat(cw as usize)
                };
                let mut st = theme.heat(t);
                if cursor {
                    st = st.add_modifier(Modifier::REVERSED | Modifier::BOLD);
                }
                (body, st)
            };
            buf.set_stringn(x, y, &text, cw as usize, style);
            for extra in 1..g.row_h {
                let fill = if theme.mono() && !cursor {
                    text.clone()
                } else if theme.mono() {
                    format!(
                        "{} ",
                        colormap::shade(t).to_string().repeat(cw as usize - 1)
                    )
                } else {
                    " ".repeat(cw as usize)
                };
                buf.set_stringn(x, y + extra, &fill, cw as usize, style);
            }
        }
    }
}

fn render_zoom(app: &App, g: &GridGeom, buf: &mut Buffer, theme: &Theme) {
    let (n, nk) = (app.grid.visible.len(), app.grid.cols.len());
    let m = &app.grid.matrix;
    if m.nrows() != n || m.ncols() != nk {
        return;
    }
    let halves = !theme.mono();
    let (by_r, by_c, pic_w, pic_h) = layout::zoom_blocks((n, nk), g.cells, halves);
    let maxes: Vec<f32> = (0..n).map(|i| row_max(m, i)).collect();
    let scale = app.grid.scale;
    let value = |r: usize, c: usize| scale.apply(m[[r, c]], maxes[r]);
    let pic = Rect::new(
        g.cells.x,
        g.cells.y,
        pic_w.min(g.cells.width),
        pic_h.min(g.cells.height),
    );
    half_block_picture(buf, pic, n, nk, (by_r, by_c), &value, theme);
    // Mark the cursor's dot.
    let cy = (app.grid.cur.0 / by_r) as u16 / if halves { 2 } else { 1 };
    let cx = (app.grid.cur.1 / by_c) as u16;
    if cx < pic.width && cy < pic.height {
        let cell = &mut buf[(pic.x + cx, pic.y + cy)];
        cell.set_symbol("◆");
        cell.modifier.insert(Modifier::BOLD);
        if !theme.mono() {
            cell.fg = ratatui::style::Color::White;
        }
    }
}

/// The colour legend: a gradient (or the shade steps) with the scale's end labels.
pub fn render_legend(app: &App, area: Rect, buf: &mut Buffer, theme: &Theme) {
    if area.width < 10 || area.height == 0 {
        return;
    }
    let (lo, hi) = match app.grid.scale {
        Scale::Linear => ("0", "1"),
        Scale::Log => ("1e-4", "1"),
        Scale::RowMax => ("0", "row max"),
    };
    let mut x = area.x;
    let end = area.x + area.width;
    if theme.mono() {
        let steps = format!("{lo} ' '·░·▒·▓·█ {hi}");
        x = put_str(buf, x, area.y, end - x, &steps, Style::default());
    } else {
        x = put_str(buf, x, area.y, end - x, &format!("{lo} "), theme.dim());
        let gw = (area.width / 4).clamp(8, 24);
        for k in 0..gw {
            if x >= end {
                break;
            }
            let t = k as f32 / (gw - 1) as f32;
            buf.set_string(x, area.y, " ", theme.heat(t));
            x += 1;
        }
        x = put_str(
            buf,
            x,
            area.y,
            end.saturating_sub(x),
            &format!(" {hi}"),
            theme.dim(),
        );
    }
    let what = format!("  {} scale (s)", app.grid.scale.name());
    x = put_str(buf, x, area.y, end.saturating_sub(x), &what, theme.dim());
    if app.grid.hide_special {
        put_str(
            buf,
            x,
            area.y,
            end.saturating_sub(x),
            " · specials hidden (x)",
            theme.accent(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tui::app::{App, Focus, Palette, Summary};
    use crate::tui::synthetic::{self, Kind};
    use ratatui::style::Color;

    fn app(color: Palette, size: (u16, u16)) -> App {
        let mut app = App::new(synthetic::info(Kind::Gpt2), "a b c", None, color, size);
        app.data = Some(Summary::new(synthetic::trace(Kind::Gpt2, &["a", "b", "c"])).unwrap());
        app.focus = Focus::Explorer;
        app.grid.cur = (1, 0);
        app.refresh();
        app
    }

    #[test]
    fn mono_grid_is_exact() {
        // Layer 0 head 0 of the synthetic GPT-2 trace is a previous-token head.
        let app = app(Palette::Mono, (80, 24));
        let area = Rect::new(0, 0, 30, 7);
        let mut buf = Buffer::empty(area);
        render(&app, area, &mut buf);
        let expected = Buffer::with_lines([
            "╭ Attention · layer 0 · head ╮",
            "│q╲k  a     b     c          │",
            "│0 a  █████                  │",
            "│1 b  [████]                 │",
            "│2 c        █████            │",
            "│0 ' '·░·▒·▓·█ 1  linear sca…│",
            "╰────────────────────────────╯",
        ]);
        for y in 0..7 {
            for x in 0..30 {
                assert_eq!(
                    buf[(x, y)].symbol(),
                    expected[(x, y)].symbol(),
                    "({x}, {y})\n{buf:?}"
                );
            }
        }
        // The cursor's row and column labels are highlighted, the cursor cell is bold; no colour anywhere.
        assert!(buf[(3, 3)].modifier.contains(Modifier::REVERSED));
        assert!(buf[(6, 1)].modifier.contains(Modifier::REVERSED));
        assert!(buf[(6, 3)].modifier.contains(Modifier::BOLD));
        assert!(buf.content.iter().all(|c| c.bg == Color::Reset));
    }

    #[test]
    fn colour_cells_carry_the_heat_colour_and_numbers() {
        let app = app(Palette::TrueColor, (80, 24));
        let area = Rect::new(0, 0, 30, 7);
        let mut buf = Buffer::empty(area);
        render(&app, area, &mut buf);
        let hot = colormap::rgb(1.0);
        let cold = colormap::rgb(0.0);
        // Row 0 attends to token 0 with weight 1: "100" on the hottest colour; its neighbour is cold.
        assert_eq!(buf[(6, 2)].bg, Color::Rgb(hot[0], hot[1], hot[2]));
        let cell: String = (6..11).map(|x| buf[(x, 2)].symbol()).collect();
        assert_eq!(cell, "  100");
        assert_eq!(buf[(12, 2)].bg, Color::Rgb(cold[0], cold[1], cold[2]));
        // The cursor cell (1, 0) is reversed.
        assert!(buf[(6, 3)].modifier.contains(Modifier::REVERSED));
        // 256-colour mode uses palette indices.
        let app = app_256();
        let mut buf = Buffer::empty(area);
        render(&app, area, &mut buf);
        assert_eq!(buf[(6, 2)].bg, Color::Indexed(colormap::ansi256(hot)));
    }

    fn app_256() -> App {
        app(Palette::Ansi256, (80, 24))
    }

    #[test]
    fn scale_changes_colours_but_not_weights() {
        let mut a = app(Palette::TrueColor, (80, 24));
        a.sel.layer = 1; // layer 1 head 0 is a sink head; head 2 is uniform
        a.sel.head = 2;
        a.refresh();
        let area = Rect::new(0, 0, 30, 7);
        let mut lin = Buffer::empty(area);
        render(&a, area, &mut lin);
        a.grid.scale = Scale::RowMax;
        let mut rm = Buffer::empty(area);
        render(&a, area, &mut rm);
        // Row 2 sees 3 tokens at 1/3 each: dim in linear, full in row-max.
        let third = colormap::rgb(1.0 / 3.0);
        let full = colormap::rgb(1.0);
        assert_eq!(lin[(6, 4)].bg, Color::Rgb(third[0], third[1], third[2]));
        assert_eq!(rm[(6, 4)].bg, Color::Rgb(full[0], full[1], full[2]));
        let text = |b: &Buffer| (6..11).map(|x| b[(x, 4)].symbol()).collect::<String>();
        assert_eq!(text(&lin), "   33");
        assert_eq!(text(&rm), "   33");
    }
}
