//! Small drawing helpers: the theme (colour or none), heat colours, horizontal bars, signed bars, text that is cut by
//! display width.

use crate::colormap;
use crate::colormap::Palette;
use crate::show::fit;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use unicode_width::UnicodeWidthStr;

/// Styles for everything that is not a heat colour. In `Mono` mode nothing has a colour; emphasis is bold/reverse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Theme {
    pub mode: Palette,
}

impl Theme {
    pub fn new(mode: Palette) -> Self {
        Theme { mode }
    }
    pub fn mono(&self) -> bool {
        self.mode == Palette::Mono
    }
    fn fg(&self, c: Color) -> Style {
        if self.mono() {
            Style::default()
        } else {
            Style::default().fg(c)
        }
    }
    pub fn text(&self) -> Style {
        Style::default()
    }
    pub fn accent(&self) -> Style {
        self.fg(Color::Cyan).add_modifier(Modifier::BOLD)
    }
    pub fn title(&self) -> Style {
        self.fg(Color::Yellow).add_modifier(Modifier::BOLD)
    }
    pub fn dim(&self) -> Style {
        if self.mono() {
            Style::default()
        } else {
            Style::default().fg(Color::DarkGray)
        }
    }
    pub fn label(&self) -> Style {
        self.fg(Color::Gray)
    }
    pub fn special(&self) -> Style {
        self.fg(Color::DarkGray).add_modifier(Modifier::ITALIC)
    }
    pub fn segment_b(&self) -> Style {
        self.fg(Color::Magenta)
    }
    pub fn selected(&self) -> Style {
        Style::default().add_modifier(Modifier::REVERSED | Modifier::BOLD)
    }
    pub fn error(&self) -> Style {
        if self.mono() {
            Style::default().add_modifier(Modifier::BOLD | Modifier::REVERSED)
        } else {
            Style::default()
                .fg(Color::LightRed)
                .add_modifier(Modifier::BOLD)
        }
    }
    pub fn ok(&self) -> Style {
        self.fg(Color::Green)
    }
    pub fn border(&self, focused: bool) -> Style {
        if focused { self.accent() } else { self.dim() }
    }
    pub fn bar(&self) -> Style {
        self.fg(Color::Cyan)
    }
    pub fn bar_alt(&self) -> Style {
        self.fg(Color::Yellow)
    }
    pub fn positive(&self) -> Style {
        self.fg(Color::Rgb(240, 190, 70)).pipe_256(self.mode)
    }
    pub fn negative(&self) -> Style {
        self.fg(Color::Rgb(80, 150, 230)).pipe_256(self.mode)
    }

    /// A colour from the heat scale, as this terminal can show it.
    pub fn color(&self, rgb: [u8; 3]) -> Color {
        match self.mode {
            Palette::TrueColor => Color::Rgb(rgb[0], rgb[1], rgb[2]),
            Palette::Ansi256 => Color::Indexed(colormap::ansi256(rgb)),
            Palette::Mono => Color::Reset,
        }
    }

    /// Background heat colour for `t` in [0, 1] with readable text on it (no colour in Mono).
    pub fn heat(&self, t: f32) -> Style {
        if self.mono() {
            return Style::default();
        }
        let bg = colormap::rgb(t);
        Style::default()
            .bg(self.color(bg))
            .fg(self.color(colormap::text_on(bg)))
    }

    /// Foreground heat colour (half-block pictures).
    pub fn heat_fg(&self, t: f32) -> Color {
        self.color(colormap::rgb(t))
    }
}

trait Pipe256 {
    fn pipe_256(self, mode: Palette) -> Self;
}

impl Pipe256 for Style {
    /// Map an RGB foreground onto the 256-colour cube when the terminal has no true colour.
    fn pipe_256(self, mode: Palette) -> Self {
        match (mode, self.fg) {
            (Palette::Ansi256, Some(Color::Rgb(r, g, b))) => {
                self.fg(Color::Indexed(colormap::ansi256([r, g, b])))
            }
            _ => self,
        }
    }
}

/// Write `s` cut/padded to exactly `w` columns at (x, y), clipped to the buffer.
pub fn put(buf: &mut Buffer, x: u16, y: u16, w: u16, s: &str, style: Style) {
    let area = buf.area;
    if w == 0 || y >= area.y + area.height || x >= area.x + area.width || y < area.y || x < area.x {
        return;
    }
    let w = w.min(area.x + area.width - x);
    buf.set_stringn(x, y, fit(s, w as usize), w as usize, style);
}

/// Write `s` (not padded) at (x, y), at most `max` columns; returns the x after it.
pub fn put_str(buf: &mut Buffer, x: u16, y: u16, max: u16, s: &str, style: Style) -> u16 {
    let area = buf.area;
    if max == 0 || y >= area.y + area.height || x >= area.x + area.width || y < area.y || x < area.x
    {
        return x;
    }
    let max = max.min(area.x + area.width - x);
    let text = if s.width() > max as usize {
        fit(s, max as usize)
    } else {
        s.to_string()
    };
    let (nx, _) = buf.set_stringn(x, y, &text, max as usize, style);
    nx
}

const EIGHTHS: [&str; 9] = [" ", "▏", "▎", "▍", "▌", "▋", "▊", "▉", "█"];
const LOWER: [&str; 9] = [" ", "▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"];

/// A horizontal bar of `frac` ∈ [0, 1] of `w` columns, in eighths.
pub fn hbar(frac: f32, w: u16) -> String {
    let frac = if frac.is_finite() {
        frac.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let eighths = (frac * w as f32 * 8.0).round() as usize;
    let mut s = "█".repeat(eighths / 8);
    if !eighths.is_multiple_of(8) {
        s.push_str(EIGHTHS[eighths % 8]);
    }
    let used = s.chars().count();
    s.push_str(&" ".repeat((w as usize).saturating_sub(used)));
    s
}

/// Vertical bars of signed values around a centre line: one column per value, positive up, negative down, in
/// eighths of a cell. `scale` is the value that fills a half. Writes into `area`.
pub fn signed_bars(buf: &mut Buffer, area: Rect, values: &[f32], scale: f32, theme: &Theme) {
    if area.height == 0 || area.width == 0 {
        return;
    }
    let half_rows = (area.height / 2).max(1);
    let up_rows = half_rows;
    let scale = if scale > 0.0 && scale.is_finite() {
        scale
    } else {
        1.0
    };
    for (i, v) in values.iter().take(area.width as usize).enumerate() {
        let x = area.x + i as u16;
        let v = if v.is_finite() { *v } else { 0.0 };
        let e = ((v.abs() / scale).min(1.0) * half_rows as f32 * 8.0).round() as usize;
        if v >= 0.0 {
            // Grow upwards from the bottom of the top half.
            for r in 0..up_rows {
                let y = area.y + up_rows - 1 - r;
                let fill = e.saturating_sub(r as usize * 8).min(8);
                if fill > 0 {
                    buf.set_string(x, y, LOWER[fill], theme.positive());
                }
            }
        } else {
            // Grow downwards from the top of the bottom half: a lower block drawn reversed fills from the top.
            let down_rows = area.height - up_rows;
            for r in 0..down_rows {
                let y = area.y + up_rows + r;
                let fill = e.saturating_sub(r as usize * 8).min(8);
                if fill == 8 {
                    buf.set_string(x, y, "█", theme.negative());
                } else if fill > 0 {
                    buf.set_string(
                        x,
                        y,
                        LOWER[8 - fill],
                        theme.negative().add_modifier(Modifier::REVERSED),
                    );
                }
            }
        }
    }
}

/// Picture of a matrix in `area` with upper-half blocks: each cell shows two rows (fg = upper, bg = lower), each
/// pixel the mean of a block of `by_r × by_c` entries mapped through `value`. In Mono, one shade character per cell.
pub fn half_block_picture(
    buf: &mut Buffer,
    area: Rect,
    rows: usize,
    cols: usize,
    by: (usize, usize),
    value: &dyn Fn(usize, usize) -> f32,
    theme: &Theme,
) {
    let (by_r, by_c) = (by.0.max(1), by.1.max(1));
    let block = |pr: usize, pc: usize| -> Option<f32> {
        let (r0, c0) = (pr * by_r, pc * by_c);
        if r0 >= rows || c0 >= cols {
            return None;
        }
        let (r1, c1) = ((r0 + by_r).min(rows), (c0 + by_c).min(cols));
        let mut s = 0.0f32;
        for r in r0..r1 {
            for c in c0..c1 {
                s += value(r, c);
            }
        }
        Some(s / ((r1 - r0) * (c1 - c0)) as f32)
    };
    let halves = !theme.mono();
    for cy in 0..area.height {
        for cx in 0..area.width {
            let (x, y) = (area.x + cx, area.y + cy);
            if halves {
                let top = block(cy as usize * 2, cx as usize);
                let bottom = block(cy as usize * 2 + 1, cx as usize);
                match (top, bottom) {
                    (Some(t), Some(b)) => {
                        let st = Style::default().fg(theme.heat_fg(t)).bg(theme.heat_fg(b));
                        buf.set_string(x, y, "▀", st);
                    }
                    (Some(t), None) => {
                        buf.set_string(x, y, "▀", Style::default().fg(theme.heat_fg(t)));
                    }
                    _ => {}
                }
            } else if let Some(t) = block(cy as usize, cx as usize) {
                buf.set_string(x, y, colormap::shade(t).to_string(), Style::default());
            }
        }
    }
}

/// A weight as at most 3 characters: `42`, `100`, `0` (tiny but not zero), `` (exactly zero, e.g. masked).
pub fn pct(w: f32) -> String {
    if w == 0.0 || !w.is_finite() {
        String::new()
    } else {
        let p = (w * 100.0).round() as u32;
        p.to_string()
    }
}

/// A weight with three decimals: `.421`, `1.000`.
pub fn w3(w: f32) -> String {
    if w.is_nan() {
        // A score that does not apply (the positional ones of cross-attention).
        "—".to_string()
    } else if w >= 0.9995 {
        format!("{w:.3}")
    } else {
        format!("{w:.3}").trim_start_matches('0').to_string()
    }
}

/// The text of a drawn buffer, one string per row (for the views' tests).
#[cfg(test)]
pub(crate) fn buffer_rows(buf: &ratatui::buffer::Buffer) -> Vec<String> {
    let a = buf.area;
    (0..a.height)
        .map(|y| {
            (0..a.width)
                .map(|x| buf[(x, y)].symbol())
                .collect::<String>()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_in_eighths() {
        assert_eq!(hbar(0.0, 4), "    ");
        assert_eq!(hbar(1.0, 4), "████");
        assert_eq!(hbar(0.5, 3), "█▌ ");
        assert_eq!(hbar(f32::NAN, 2), "  ");
        assert_eq!(pct(0.421), "42");
        assert_eq!(pct(0.0), "");
        assert_eq!(pct(1.0), "100");
        assert_eq!(w3(0.4213), ".421");
        assert_eq!(w3(1.0), "1.000");
    }

    #[test]
    fn signed_bars_go_up_and_down() {
        let mut buf = Buffer::empty(Rect::new(0, 0, 3, 4));
        let theme = Theme::new(Palette::Mono);
        let area = buf.area;
        signed_bars(&mut buf, area, &[1.0, -1.0, 0.25], 1.0, &theme);
        let rows: Vec<String> = (0..4)
            .map(|y| (0..3).map(|x| buf[(x, y)].symbol().to_string()).collect())
            .collect();
        assert_eq!(rows, ["█  ", "█ ▄", " █ ", " █ "]);
        // The negative partial cell is a reversed lower block (so it fills from the top).
        let mut buf = Buffer::empty(Rect::new(0, 0, 1, 2));
        let area = buf.area;
        signed_bars(&mut buf, area, &[-0.5], 1.0, &theme);
        assert_eq!(buf[(0, 1)].symbol(), "▄");
        assert!(buf[(0, 1)].modifier.contains(Modifier::REVERSED));
    }

    #[test]
    fn put_cuts_by_display_width() {
        let mut buf = Buffer::empty(Rect::new(0, 0, 6, 1));
        put(&mut buf, 0, 0, 5, "안녕하세요", Style::default());
        assert_eq!(buf, Buffer::with_lines(["안녕… "]));
    }
}
