//! The sweep view (`S`): every head ablated in turn, as a layers × heads heatmap in the overview's shape coloured by
//! |Δ logit| of the clean prediction, and the heads ranked. Also the signed heatmap the attribution view shares.

use super::widgets::{Theme, put};
use crate::tui::app::App;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::widgets::{Block, BorderType, Widget};

/// Columns of one heatmap cell.
const CELL_W: u16 = 7;

/// A signed value in 6 columns: `-4.06`, `+17.4`.
pub fn signed(v: f32) -> String {
    if v.abs() >= 99.95 {
        format!("{v:+6.0}")
    } else if v.abs() >= 9.995 {
        format!("{v:+6.1}")
    } else {
        format!("{v:+6.2}")
    }
}

/// A layers × columns heatmap of signed values: background by |value| / largest |value|, the value written in the
/// cell, the selected (layer, column) bracketed. The rows shown keep the selected layer on screen.
pub struct Heatmap<'a> {
    pub cols: Vec<String>,
    pub layers: usize,
    pub value: &'a dyn Fn(usize, usize) -> Option<f32>,
    pub selected: (usize, usize),
}

impl Heatmap<'_> {
    /// Columns it needs.
    pub fn width(&self) -> u16 {
        5 + self.cols.len() as u16 * CELL_W
    }

    pub fn render(&self, app: &App, area: Rect, buf: &mut Buffer) {
        let theme = Theme::new(app.color);
        if area.height < 2 {
            return;
        }
        let max = (0..self.layers)
            .flat_map(|l| (0..self.cols.len()).filter_map(move |c| (self.value)(l, c)))
            .fold(0.0f32, |m, v| m.max(v.abs()));
        for (c, name) in self.cols.iter().enumerate() {
            let st = if c == self.selected.1 {
                theme.selected()
            } else {
                theme.dim()
            };
            put(
                buf,
                area.x + 5 + c as u16 * CELL_W,
                area.y,
                CELL_W,
                &format!(" {name}"),
                st,
            );
        }
        let cap = (area.height - 1) as usize;
        let first = if self.selected.0 < cap {
            0
        } else {
            self.selected.0 + 1 - cap
        };
        for (row, l) in (first..self.layers).take(cap).enumerate() {
            let y = area.y + 1 + row as u16;
            let st = if l == self.selected.0 {
                theme.selected()
            } else {
                theme.dim()
            };
            put(buf, area.x, y, 5, &format!("L{l}"), st);
            for c in 0..self.cols.len() {
                let x = area.x + 5 + c as u16 * CELL_W;
                if x + CELL_W > area.x + area.width {
                    break;
                }
                let Some(v) = (self.value)(l, c) else {
                    put(buf, x, y, CELL_W, "     ·", theme.dim());
                    continue;
                };
                let t = if max > 0.0 { v.abs() / max } else { 0.0 };
                let sel = (l, c) == self.selected;
                let text = if sel {
                    format!("[{}]", signed(v).trim_start())
                } else {
                    format!(" {}", signed(v))
                };
                let style = if sel {
                    theme.heat(t).patch(theme.selected())
                } else {
                    theme.heat(t)
                };
                put(buf, x, y, CELL_W, &format!("{text:>7}"), style);
            }
        }
    }
}

/// A rounded box titled `title` over `area`; returns its inside.
pub fn boxed(app: &App, title: String, area: Rect, buf: &mut Buffer) -> Rect {
    let theme = Theme::new(app.color);
    let b = Block::bordered()
        .border_type(BorderType::Rounded)
        .border_style(theme.border(true))
        .title(Line::styled(title, theme.title()));
    let inner = b.inner(area);
    b.render(area, buf);
    inner
}

/// Draw the sweep view into the body.
pub fn render(app: &App, area: Rect, buf: &mut Buffer) {
    let theme = Theme::new(app.color);
    let Some(s) = &app.interp.sweep else {
        boxed(app, " Sweep ".into(), area, buf);
        return;
    };
    let kind = if s.mean { "mean" } else { "zero" };
    let Some(result) = &s.result else {
        let inner = boxed(
            app,
            format!(" Sweep · {kind}-ablating every head "),
            area,
            buf,
        );
        let (d, t) = s.progress;
        put(
            buf,
            inner.x,
            inner.y,
            inner.width,
            &format!("ablated {d} of {t} heads · S or Esc cancels"),
            theme.accent(),
        );
        let frac = if t > 0 { d as f32 / t as f32 } else { 0.0 };
        put(
            buf,
            inner.x,
            inner.y + 1,
            inner.width,
            &super::widgets::hbar(frac, inner.width),
            theme.bar(),
        );
        return;
    };
    let sw = match result {
        Ok(sw) => sw,
        Err(e) => {
            let inner = boxed(app, " Sweep ".into(), area, buf);
            put(
                buf,
                inner.x,
                inner.y,
                inner.width,
                &format!("sweep failed: {e}"),
                theme.error(),
            );
            return;
        }
    };
    let title = format!(
        " Sweep · {kind}-ablation · Δ logit of {} ({:.2}) after {} (pos {}) · {} heads in {:.1} s ",
        sw.token_text,
        sw.logit,
        app.token_label(sw.position),
        sw.position,
        sw.heads.len(),
        s.elapsed.as_secs_f64()
    );
    let inner = boxed(app, title, area, buf);
    let nh = app.n_heads();
    let value = |l: usize, h: usize| {
        sw.heads
            .get(l * nh + h)
            .filter(|e| e.layer == l)
            .map(|e| e.delta)
    };
    let map = Heatmap {
        cols: (0..nh).map(|h| format!("h{h}")).collect(),
        layers: app.n_layers(),
        value: &value,
        selected: (app.sel.layer, app.sel.head),
    };
    let mw = map.width().min(inner.width);
    map.render(app, Rect::new(inner.x, inner.y, mw, inner.height), buf);
    let list_x = inner.x + mw + 2;
    let list_w = (inner.x + inner.width).saturating_sub(list_x);
    let (x, y0, w, rows) = if list_w >= 24 {
        (list_x, inner.y, list_w, inner.height as usize)
    } else {
        // No room beside the heatmap: the ranking is the bottom line.
        let top: Vec<String> = sw
            .ranked()
            .iter()
            .take(4)
            .map(|e| format!("L{}.H{} {:+.2}", e.layer, e.head, e.delta))
            .collect();
        let y = inner.y + inner.height.saturating_sub(1);
        put(
            buf,
            inner.x,
            y,
            inner.width,
            &format!("top: {}", top.join(" · ")),
            theme.accent(),
        );
        return;
    };
    put(buf, x, y0, w, "heads by |Δ logit|", theme.title());
    for (i, e) in sw.ranked().iter().take(rows.saturating_sub(1)).enumerate() {
        let top = s
            .labels
            .iter()
            .find(|(id, _)| *id == e.top)
            .map(|(_, t)| t.as_str())
            .unwrap_or("?");
        let st = if (e.layer, e.head) == (app.sel.layer, app.sel.head) {
            theme.selected()
        } else {
            theme.text()
        };
        put(
            buf,
            x,
            y0 + 1 + i as u16,
            w,
            &format!(
                "{:<8}{} → top {top}",
                format!("L{}.H{}", e.layer, e.head),
                signed(e.delta)
            ),
            st,
        );
    }
}
