//! Drawing: pure functions of the app state. `draw(&mut Frame, &App)` is all the run loop calls.

pub mod ablation;
pub mod attribution;
pub mod block_walk;
pub mod embedding;
pub mod encdec;
pub mod explain;
pub mod explain_views;
pub mod grid;
pub mod lens;
pub mod norms;
pub mod overview;
pub mod panels;
pub mod positional;
pub mod sweep;
pub mod widgets;

#[cfg(test)]
pub(crate) use widgets::buffer_rows;

use crate::show::fit;
use crate::tui::app::layout::{MIN_H, MIN_W};
use crate::tui::app::{App, Focus, View, layout};
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
            if let Some(mut r) = p.side {
                if ablation::active(app) {
                    let used = ablation::render_panel(
                        app,
                        Rect {
                            height: r.height / 2,
                            ..r
                        },
                        buf,
                    );
                    r = Rect::new(r.x, r.y + used, r.width, r.height - used);
                }
                panels::render_side(app, r, buf);
            }
            if let Some(r) = p.info {
                if ablation::active(app) {
                    ablation::render_compact(app, r, buf);
                } else {
                    panels::render_info(app, r, buf);
                }
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
        View::Sweep => sweep::render(app, s.body, buf),
        View::Attribution => attribution::render(app, s.body, buf),
    }
    status(app, s.status, buf);
    if app.help.open {
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

/// `Layer 2 of 0–5 · Head 3 of 0–7`: the index, then the range of indices (layers and heads count from 0). The one
/// form used in the header, `attn show` and the help.
pub fn position_text(app: &App) -> String {
    crate::show::position_text(
        app.sel.layer,
        app.n_layers(),
        (!app.sel.mean).then_some(app.sel.head),
        app.n_heads(),
    )
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
        View::Sweep => "sweep",
        View::Attribution => "logit attribution",
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
    let note = ablation::header_note(app);
    let right = if note.is_empty() {
        format!(" {name} · ? help ")
    } else {
        format!(" {note} · {name} · ? help ")
    };
    let pos = format!(" {} ", position_text(app));
    let w = area.width as usize;
    let selector = encdec::selector(app, bar, &theme, w < 150);
    let sel_w: usize = selector.iter().map(|s| s.width()).sum();
    let name_w = w.saturating_sub(6 + pos.width() + right.width() + 2 + sel_w);
    let name = fit(&app.info.name, name_w.min(app.info.name.width() + 1));
    let mut spans = vec![
        Span::styled(" attn ", theme.accent().add_modifier(Modifier::REVERSED)),
        Span::styled(
            format!(" {}", name.trim_end()),
            bar.add_modifier(Modifier::BOLD),
        ),
        Span::styled(" │", bar),
        Span::styled(pos.clone(), bar.patch(theme.title())),
    ];
    spans.extend(selector);
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
            (crate::colormap::Palette::Ansi256, Some(ratatui::style::Color::Rgb(r, g, b))) => self
                .bg(ratatui::style::Color::Indexed(crate::colormap::ansi256([
                    r, g, b,
                ]))),
            _ => self,
        }
    }
}

/// One grapheme of the input as shown: control characters escaped (the same rule as token labels).
pub fn shown(g: &str) -> (String, bool) {
    crate::tokenize::escape_grapheme(g)
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
        let hint = if let Some(t) = encdec::input_title(app, focused) {
            t
        } else if focused && app.pairs() {
            " Sentence · Enter runs · Tab: explorer · ↓/↑: sentence B/A · Ctrl-U clears "
        } else if focused {
            " Sentence · Enter runs · Tab: explorer · Ctrl-U clears "
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
        let active = focused && app.input.field == f;
        let names = encdec::line_names(app, f);
        let tag = match names {
            Some((t, _)) => t,
            None if f == 0 => "A ❯ ",
            None => "B ❯ ",
        };
        let tag_style = if active { theme.accent() } else { theme.dim() };
        buf.set_stringn(inner.x, y, tag, PREFIX_W as usize, tag_style);
        let tw = inner.width.saturating_sub(PREFIX_W + 1);
        let e = &app.input.lines[f];
        let x = inner.x + PREFIX_W;
        if e.text.is_empty() {
            let ph = if let Some((_, ph)) = names {
                ph
            } else if f == 0 {
                "type a sentence, Enter runs it"
            } else {
                "optional second sentence (BERT sentence pairs: token type 1)"
            };
            widgets::put(buf, x, y, tw, ph, theme.dim());
            continue;
        }
        let sample = app.input.fresh && f == 0;
        let base = if sample { theme.dim() } else { theme.text() };
        let (spans, _) = input_spans(&e.text, e.cursor, tw, base, theme.error());
        let used: usize = spans.iter().map(|s| s.width()).sum();
        Line::from(spans).render(Rect::new(x, y, tw, 1), buf);
        if sample {
            // The sample is a placeholder: say so after it, while there is room.
            let cue = "  (sample · typing replaces it)";
            if used + cue.width() <= tw as usize {
                widgets::put(buf, x + used as u16, y, tw - used as u16, cue, theme.dim());
            }
        }
    }
}

/// Where the terminal cursor goes when the input has focus.
pub fn input_cursor(app: &App) -> Option<(u16, u16)> {
    if app.focus != Focus::Input || app.help.open || layout::too_small(app) {
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
    let e = &app.input.lines[app.input.field];
    let (_, col) = input_spans(&e.text, e.cursor, tw, Style::default(), Style::default());
    Some((x0 + PREFIX_W + col, y0 + app.input.field as u16))
}

const SPINNER: [&str; 10] = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];

/// The bottom hint: the keys of the view on screen.
pub fn view_hint(v: View) -> &'static str {
    match v {
        View::Grid => {
            "←→ head · ↑↓ layer · hjkl cell · m overview · p positions · n norms · d dump · ? help"
        }
        View::Overview => "←→↑↓/hjkl select head · Enter opens it · d dumps it · m back · ? help",
        View::Positional => {
            "j/k position · ←/→ pan dimensions · H/L or PgUp/PgDn pan a screen · d dump · ? help"
        }
        View::Norms => "j/k token · o mean/median/without first · b log bars · d dump · ? help",
        View::Lens => "j/k position · e or Esc back · ? help",
        View::Weight | View::Writes | View::Embedding | View::Walk => {
            "hjkl cell · ←→ head · ↑↓ layer · J/K scroll · [ ] dimensions · t W_O · Esc back · ? help"
        }
        View::Sweep => {
            "←→↑↓/hjkl select head · A ablates it · Enter opens it · S back (cancels) · ? help"
        }
        View::Attribution => "←→↑↓/hjkl select head · Enter opens it · T back · ? help",
    }
}

/// The right part of the status line: model, tokens, timing.
pub fn status_facts(app: &App) -> String {
    let mut s = if app.size.0 >= 120 {
        format!(" {} · ", app.info.spec)
    } else {
        " ".to_string()
    };
    if let Some(t) = app.trace() {
        let n = t.n_tokens();
        s.push_str(&format!(
            "{n} token{} · forward {:.1} ms ",
            if n == 1 { "" } else { "s" },
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
    let (msg, style) = if let Some(since) = app.runs.busy_since {
        let el = app.now.saturating_duration_since(since);
        let frame = SPINNER[(el.as_millis() / 80) as usize % SPINNER.len()];
        let layer = match app.runs.progress {
            Some((done, total)) if done < total => format!(" layer {} of {total}", done + 1),
            _ => String::new(),
        };
        (
            format!(
                "{frame} running {}…{layer} {:.1} s",
                app.info.spec,
                el.as_secs_f64()
            ),
            theme.accent(),
        )
    } else if let Some(sw) = app.interp.sweep.as_ref().filter(|s| s.result.is_none()) {
        (
            format!(
                "sweep: ablated {} of {} heads · S or Esc cancels",
                sw.progress.0, sw.progress.1
            ),
            theme.accent(),
        )
    } else if let Some(since) = app.interp.ablation.since {
        (
            format!(
                "ablating {}… {:.1} s",
                ablation::heads_list(app, 4),
                app.now.saturating_duration_since(since).as_secs_f64()
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
        (view_hint(app.view).to_string(), theme.dim())
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

/// Split text into lines of at most `width` columns at spaces (a longer word stands alone).
fn wrap_words(text: &str, width: usize) -> Vec<String> {
    let mut out: Vec<String> = vec![];
    let mut cur = String::new();
    for w in text.split(' ') {
        if !cur.is_empty() && cur.width() + 1 + w.width() > width {
            out.push(std::mem::take(&mut cur));
        }
        if !cur.is_empty() {
            cur.push(' ');
        }
        cur.push_str(w);
    }
    out.push(cur);
    out
}

fn help(app: &App, area: Rect, buf: &mut Buffer) {
    let theme = Theme::new(app.color);
    let rows = crate::tui::keymap::help_lines();
    let key_w = rows
        .iter()
        .filter_map(|(k, _)| k.as_ref().map(|k| k.width()))
        .max()
        .unwrap_or(0)
        + 3;
    // Help text wraps under itself, after the key column.
    let text_w = (area
        .width
        .saturating_sub(6)
        .min(if area.width >= 150 { 73 } else { 76 }) as usize)
        .saturating_sub(key_w)
        .max(10);
    let mut lines: Vec<Line> = vec![];
    for (k, d) in rows {
        match k {
            None => lines.push(Line::styled(d, theme.title())),
            Some(k) => {
                for (i, part) in wrap_words(&d, text_w).into_iter().enumerate() {
                    let keys = if i == 0 { k.clone() } else { String::new() };
                    lines.push(Line::from(vec![
                        Span::styled(format!("  {}", fit(&keys, key_w - 2)), theme.accent()),
                        Span::raw(part),
                    ]));
                }
            }
        }
    }
    for note in [
        "Layers and heads count from 0: `Layer 2 of 0–5` is layer 2 of layers 0 to 5.".to_string(),
        "max: the mean over query rows of each row's largest weight (not the largest weight).".to_string(),
        "previous: weight on the token before, rows 2 on (the first key, often a sink, is left out).".to_string(),
        format!("Dumps go to {}/<time>/.", app.dump_root.display()),
    ] {
        for part in wrap_words(&note, text_w + key_w) {
            lines.push(Line::styled(part, theme.dim()));
        }
    }
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
    let scroll = app.help.scroll.min(max_scroll);
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
