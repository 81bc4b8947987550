//! Drawing: pure functions of the app state. `draw(&mut Frame, &App)` is all the run loop calls.

pub mod block_walk;
pub mod embedding;
pub mod explain;
pub mod explain_views;
pub mod grid;
pub mod layout;
pub mod lens;
pub mod norms;
pub mod overview;
pub mod panels;
pub mod positional;
pub mod widgets;

use crate::show::fit;
use crate::tui::app::{App, Focus, View};
use layout::{MIN_H, MIN_W};
use ratatui::Frame;
use ratatui::buffer::Buffer;
use ratatui::layout::{Alignment, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Clear, Paragraph, Widget, Wrap};
use unicode_segmentation::UnicodeSegmentation;
use unicode_width::UnicodeWidthStr;
use widgets::Theme;

/// Draw the whole screen.
pub fn draw(f: &mut Frame, app: &App) {
    let area = f.area();
    let buf = f.buffer_mut();
    render(app, area, buf);
    if let Some((x, y)) = input_cursor(app)
        && x < area.width
        && y < area.height
    {
        f.set_cursor_position((x, y));
    }
}

/// Draw into a buffer (what `draw` does, without the terminal cursor).
pub fn render(app: &App, area: Rect, buf: &mut Buffer) {
    if (area.width, area.height) != app.size {
        // The run loop syncs the size before drawing; a mismatch only lasts until the next event.
        return;
    }
    if layout::too_small(app) {
        too_small(app, area, buf);
        return;
    }
    let s = layout::screen(app);
    header(app, s.header, buf);
    input(app, s, buf);
    match app.view {
        View::Grid => {
            let p = layout::grid_panes(app);
            grid::render(app, p.grid, buf);
            if let Some(r) = p.side {
                panels::render_side(app, r, buf);
            }
            if let Some(r) = p.info {
                panels::render_info(app, r, buf);
            }
            if let Some(r) = p.bottom {
                let lw = r.width * 11 / 20;
                positional::render_bars(app, Rect::new(r.x, r.y, lw, r.height), buf);
                norms::render_compact(app, Rect::new(r.x + lw, r.y, r.width - lw, r.height), buf);
            }
        }
        View::Overview => overview::render(app, buf),
        View::Positional => positional::render_view(app, s.body, buf),
        View::Norms => norms::render_view(app, s.body, buf),
        View::Lens => lens::render(app, s.body, buf),
        View::Weight | View::Writes | View::Embedding | View::Walk => {
            explain_views::render(app, s.body, buf)
        }
    }
    status(app, s.status, buf);
    if app.help {
        help(app, area, buf);
    }
}

fn too_small(app: &App, area: Rect, buf: &mut Buffer) {
    let theme = Theme::new(app.color);
    let text = vec![
        Line::styled("terminal too small", theme.error()),
        Line::raw(format!(
            "{}×{}, needs {MIN_W}×{MIN_H}",
            app.size.0, app.size.1
        )),
        Line::styled("q quits", theme.dim()),
    ];
    let h = (text.len() as u16).min(area.height);
    let y = area.y + area.height.saturating_sub(h) / 2;
    Paragraph::new(text)
        .alignment(Alignment::Center)
        .wrap(Wrap { trim: true })
        .render(
            Rect::new(area.x, y, area.width, area.height - (y - area.y)),
            buf,
        );
}

/// `Layer 2/5 · Head 3/7`: index, then the last index (layers and heads count from 0).
pub fn position_text(app: &App) -> String {
    let last_l = app.n_layers().saturating_sub(1);
    let last_h = app.n_heads().saturating_sub(1);
    if app.mean {
        format!("Layer {}/{last_l} · Head mean of 0–{last_h}", app.layer)
    } else {
        format!("Layer {}/{last_l} · Head {}/{last_h}", app.layer, app.head)
    }
}

fn view_name(v: View) -> &'static str {
    match v {
        View::Grid => "attention",
        View::Overview => "overview",
        View::Positional => "positions",
        View::Norms => "residual norms",
        View::Lens => "logit lens",
        View::Weight => "one weight",
        View::Writes => "head output",
        View::Embedding => "embedding",
        View::Walk => "block walk",
    }
}

fn header(app: &App, area: Rect, buf: &mut Buffer) {
    let theme = Theme::new(app.color);
    let bar = if theme.mono() {
        Style::default().add_modifier(Modifier::REVERSED)
    } else {
        Style::default()
            .bg(ratatui::style::Color::Rgb(30, 34, 48))
            .pipe(app)
    };
    buf.set_style(area, bar);
    let name = if app.view == View::Grid && app.explain.value_weighted {
        "value-weighted"
    } else {
        view_name(app.view)
    };
    let right = format!(" {name} · ? help ");
    let pos = format!(" {} ", position_text(app));
    let w = area.width as usize;
    let name_w = w.saturating_sub(6 + pos.width() + right.width() + 2);
    let name = fit(&app.info.name, name_w.min(app.info.name.width() + 1));
    let spans = vec![
        Span::styled(" attn ", theme.accent().add_modifier(Modifier::REVERSED)),
        Span::styled(
            format!(" {}", name.trim_end()),
            bar.add_modifier(Modifier::BOLD),
        ),
        Span::styled(" │", bar),
        Span::styled(pos.clone(), bar.patch(theme.title())),
    ];
    let used: usize = spans.iter().map(|s| s.width()).sum();
    Line::from(spans).render(area, buf);
    if used + right.width() <= w {
        buf.set_stringn(
            area.x + (w - right.width()) as u16,
            area.y,
            &right,
            right.width(),
            bar.patch(theme.dim()),
        );
    }
}

trait PipeBar {
    fn pipe(self, app: &App) -> Self;
}

impl PipeBar for Style {
    fn pipe(self, app: &App) -> Self {
        match (app.color, self.bg) {
            (crate::tui::app::ColorMode::Ansi256, Some(ratatui::style::Color::Rgb(r, g, b))) => {
                self.bg(ratatui::style::Color::Indexed(crate::colormap::ansi256([
                    r, g, b,
                ])))
            }
            _ => self,
        }
    }
}

/// One grapheme of the input as shown: control characters escaped.
pub fn shown(g: &str) -> (String, bool) {
    let bad = |c: char| {
        c.is_control()
            || matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{feff}')
    };
    if g.chars().any(bad) {
        let mut s = String::new();
        for c in g.chars() {
            match c {
                '\t' => s.push_str("\\t"),
                c if bad(c) => s.push_str(&format!("\\u{{{:x}}}", c as u32)),
                c => s.push(c),
            }
        }
        (s, true)
    } else {
        (g.to_string(), false)
    }
}

const PREFIX_W: u16 = 4;

/// The visible part of an input line: spans, and the cursor's column within the text area.
pub fn input_spans(
    text: &str,
    cursor: usize,
    width: u16,
    base: Style,
    esc: Style,
) -> (Vec<Span<'static>>, u16) {
    let segs: Vec<(usize, String, bool)> = text
        .grapheme_indices(true)
        .map(|(i, g)| {
            let (s, e) = shown(g);
            (i, s, e)
        })
        .collect();
    let cursor_col: usize = segs
        .iter()
        .filter(|(i, _, _)| *i < cursor)
        .map(|(_, s, _)| s.width())
        .sum();
    let width = width.max(1) as usize;
    let offset = cursor_col.saturating_sub(width - 1);
    let mut spans = vec![];
    let mut col = 0usize;
    for (_, s, e) in segs {
        let w = s.width();
        let (start, end) = (col, col + w);
        col = end;
        if end <= offset {
            continue;
        }
        if start >= offset + width {
            break;
        }
        let style = if e { esc } else { base };
        if start < offset || end > offset + width {
            // A wide grapheme cut by an edge: pad instead of splitting it.
            let vis = end.min(offset + width) - start.max(offset);
            spans.push(Span::styled(" ".repeat(vis), style));
        } else {
            spans.push(Span::styled(s, style));
        }
    }
    (spans, (cursor_col - offset) as u16)
}

fn input(app: &App, s: layout::Screen, buf: &mut Buffer) {
    let theme = Theme::new(app.color);
    let focused = app.focus == Focus::Input;
    let mut inner = s.input;
    if s.input_border {
        let hint = if focused {
            " Sentence · Enter runs · Tab: explorer · ↓/↑: sentence B/A · Ctrl-U clears "
        } else {
            " Sentence · Tab or i to edit "
        };
        let b = Block::bordered()
            .border_type(BorderType::Rounded)
            .border_style(theme.border(focused))
            .title(Line::styled(
                hint,
                if focused { theme.accent() } else { theme.dim() },
            ));
        inner = b.inner(s.input);
        b.render(s.input, buf);
    }
    let lines = 1 + usize::from(layout::show_b(app));
    for f in 0..lines.min(inner.height as usize) {
        let y = inner.y + f as u16;
        let active = focused && app.field == f;
        let tag = if f == 0 { "A ❯ " } else { "B ❯ " };
        let tag_style = if active { theme.accent() } else { theme.dim() };
        buf.set_stringn(inner.x, y, tag, PREFIX_W as usize, tag_style);
        let tw = inner.width.saturating_sub(PREFIX_W + 1);
        let e = &app.inputs[f];
        let x = inner.x + PREFIX_W;
        if e.text.is_empty() {
            let ph = if f == 0 {
                "type a sentence, Enter runs it"
            } else {
                "optional second sentence (BERT sentence pairs: token type 1)"
            };
            widgets::put(buf, x, y, tw, ph, theme.dim());
            continue;
        }
        let base = if focused && app.fresh && f == 0 {
            theme.text().add_modifier(Modifier::UNDERLINED)
        } else {
            theme.text()
        };
        let (spans, _) = input_spans(&e.text, e.cursor, tw, base, theme.error());
        Line::from(spans).render(Rect::new(x, y, tw, 1), buf);
    }
}

/// Where the terminal cursor goes when the input has focus.
pub fn input_cursor(app: &App) -> Option<(u16, u16)> {
    if app.focus != Focus::Input || app.help || layout::too_small(app) {
        return None;
    }
    let s = layout::screen(app);
    let (x0, y0) = if s.input_border {
        (s.input.x + 1, s.input.y + 1)
    } else {
        (s.input.x, s.input.y)
    };
    let tw = s
        .input
        .width
        .saturating_sub(PREFIX_W + 1 + if s.input_border { 2 } else { 0 });
    let e = &app.inputs[app.field];
    let (_, col) = input_spans(&e.text, e.cursor, tw, Style::default(), Style::default());
    Some((x0 + PREFIX_W + col, y0 + app.field as u16))
}

const SPINNER: [&str; 10] = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];

/// The right part of the status line: model, tokens, timing.
pub fn status_facts(app: &App) -> String {
    let mut s = if app.size.0 >= 120 {
        format!(" {} · ", app.info.spec)
    } else {
        " ".to_string()
    };
    if let Some(t) = app.trace() {
        s.push_str(&format!(
            "{} tokens · forward {:.1} ms ",
            t.n_tokens(),
            t.elapsed.as_secs_f64() * 1e3
        ));
    }
    s
}

fn status(app: &App, area: Rect, buf: &mut Buffer) {
    let theme = Theme::new(app.color);
    let facts = status_facts(app);
    let w = area.width as usize;
    let facts_w = facts.width().min(w / 2);
    let left_w = w.saturating_sub(facts_w);
    let (msg, style) = if let Some(since) = app.busy_since {
        let el = app.now.saturating_duration_since(since);
        let frame = SPINNER[(el.as_millis() / 80) as usize % SPINNER.len()];
        (
            format!(
                "{frame} running {}… {:.1} s",
                app.info.spec,
                el.as_secs_f64()
            ),
            theme.accent(),
        )
    } else if let Some(j) = &app.jump {
        (
            format!(
                "go to {}: {}▏",
                if j.layer { "layer" } else { "head" },
                j.digits
            ),
            theme.accent(),
        )
    } else if let Some(st) = &app.status {
        (
            st.text.clone(),
            if st.error { theme.error() } else { theme.ok() },
        )
    } else if let Some(nf) = app.data.as_ref().and_then(|p| p.non_finite) {
        (format!("⚠ {nf}"), theme.error())
    } else if let Some(h) = &app.hint {
        (h.clone(), theme.bar_alt())
    } else if app.focus == Focus::Input {
        (
            "type a sentence · Enter runs · Tab: explorer keys · F1 help".to_string(),
            theme.dim(),
        )
    } else {
        (
            "←→ head · ↑↓ layer · hjkl cell · m overview · p positions · n norms · d dump · ? help"
                .to_string(),
            theme.dim(),
        )
    };
    widgets::put(
        buf,
        area.x,
        area.y,
        left_w as u16,
        &format!(" {msg}"),
        style,
    );
    widgets::put(
        buf,
        area.x + left_w as u16,
        area.y,
        facts_w as u16,
        &facts,
        theme.dim().add_modifier(Modifier::REVERSED),
    );
}

/// Every key, for the help popup (and the README tour).
pub const KEYS: &[(&str, &str)] = &[
    ("", "Input (the sentence line)"),
    (
        "type / paste",
        "edit the sentence; the model re-runs as you pause",
    ),
    ("Enter", "run now and go to the explorer"),
    ("← → Home End", "move the text cursor"),
    ("Backspace Del", "delete before / after the cursor"),
    ("Ctrl-U Ctrl-K", "delete to the start / end of the line"),
    ("Ctrl-W", "delete the word before the cursor"),
    ("↓ ↑", "edit sentence B (BERT pairs) / back to A"),
    ("Tab Esc", "go to the explorer"),
    ("", "Explorer"),
    ("← →", "previous / next head (wraps)"),
    ("↑ ↓", "previous / next layer (wraps)"),
    ("0-9", "jump to head N (type two digits for 10+)"),
    ("g 0-9", "jump to layer N"),
    ("h j k l", "move the cell cursor (also: click a cell)"),
    ("PgUp PgDn [ ]", "page rows / columns of a long grid"),
    ("Home End", "first / last cell"),
    ("a", "mean over the layer's heads on/off"),
    ("s", "colour scale: linear → log → row max"),
    (
        "x",
        "hide special tokens ([CLS], [SEP], BOS) and renormalise",
    ),
    ("z", "zoom out: the whole matrix in blocks"),
    ("w", "weights as numbers in the cells on/off"),
    ("c", "colours: true colour → 256 → none (shades)"),
    ("m", "model overview: every layer × head; Enter opens one"),
    ("p", "positional encodings (j/k position, ←/→ dimensions)"),
    ("n", "residual-stream norms per layer (j/k token)"),
    ("e", "logit lens at the cursor's position (decoders)"),
    ("E", "how the weight under the cursor is computed"),
    ("o", "what the head writes (t: through W_O)"),
    ("v", "value-weighted grid ‖α·v W_O‖ (Kobayashi 2020)"),
    ("b", "the cursor's token embedding, part by part"),
    ("B", "the cursor's token through the block"),
    ("J K [ ]", "explanation views: scroll rows / dimensions"),
    ("d", "dump the matrix on screen (.npy + .csv)"),
    ("D", "dump the whole trace (attn dump format)"),
    ("Tab i /", "edit the sentence"),
    ("Esc", "back to the grid / to the input"),
    ("? F1", "this help (F1 also from the input)"),
    (
        "Shift-drag",
        "select text with the terminal (the mouse is the explorer's)",
    ),
    ("q Ctrl-C", "quit"),
];

fn help(app: &App, area: Rect, buf: &mut Buffer) {
    let theme = Theme::new(app.color);
    let mut lines: Vec<Line> = KEYS
        .iter()
        .map(|(k, d)| {
            if k.is_empty() {
                Line::styled(d.to_string(), theme.title())
            } else {
                Line::from(vec![
                    Span::styled(format!("  {k:<15}"), theme.accent()),
                    Span::raw(*d),
                ])
            }
        })
        .collect();
    lines.push(Line::styled(
        format!(
            "Layers and heads count from 0: `Layer 2/5` is layer 2 of 0–5. Dumps go to {}/<time>/.",
            app.dump_root.display()
        ),
        theme.dim(),
    ));
    let two_cols = area.width >= 150 && (lines.len() as u16 + 2) > area.height.saturating_sub(2);
    let (w, h) = if two_cols {
        (
            area.width.saturating_sub(4).min(150),
            (lines.len() as u16).div_ceil(2) + 2,
        )
    } else {
        (area.width.saturating_sub(4).min(80), lines.len() as u16 + 2)
    };
    let h = h.min(area.height.saturating_sub(2));
    let r = Rect::new(
        area.x + (area.width - w) / 2,
        area.y + (area.height - h) / 2,
        w,
        h,
    );
    Clear.render(r, buf);
    let scrolls = !two_cols && lines.len() as u16 > h.saturating_sub(2);
    let title = if scrolls {
        " attn · keys · ↓↑ scroll · any other key closes "
    } else {
        " attn · keys · any key closes "
    };
    let mut b = Block::bordered()
        .border_type(BorderType::Double)
        .border_style(theme.accent())
        .title(Line::styled(title, theme.title()));
    let max_scroll = lines.len().saturating_sub(h.saturating_sub(2) as usize);
    let scroll = app.help_scroll.min(max_scroll);
    if scrolls {
        let more = if scroll < max_scroll {
            " more ↓ "
        } else {
            " end "
        };
        b = b.title_bottom(Line::styled(more, theme.accent()).right_aligned());
        lines.drain(..scroll);
    }
    let inner = b.inner(r);
    b.render(r, buf);
    if two_cols {
        let half = lines.len().div_ceil(2);
        let right = lines.split_off(half);
        let cw = inner.width / 2;
        Paragraph::new(lines).render(Rect::new(inner.x, inner.y, cw, inner.height), buf);
        Paragraph::new(right).render(
            Rect::new(inner.x + cw, inner.y, inner.width - cw, inner.height),
            buf,
        );
    } else {
        Paragraph::new(lines).render(inner, buf);
    }
}
