//! The panels beside the grid: the cell under the cursor, where its query looks (this head and every head of the
//! layer), and the head's statistics.

use super::widgets::{Theme, hbar, w3};
use crate::analysis::{self, HeadStats};
use crate::show::fit;
use crate::tui::app::App;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Paragraph, Widget};

fn tok_label(app: &App, i: usize) -> String {
    app.token_label(i)
}

/// The label of a key (column) token: a source token in cross-attention.
fn key_label(app: &App, j: usize) -> String {
    app.key_label(j)
}

fn quoted(s: &str) -> String {
    format!("«{s}»")
}

fn boxed<'a>(title: String, theme: &Theme) -> Block<'a> {
    Block::bordered()
        .border_type(BorderType::Rounded)
        .border_style(theme.dim())
        .title(Line::styled(title, theme.title()))
}

/// The weight under the cursor and its rank in the row.
pub fn cell_facts(app: &App) -> Option<(usize, usize, f32, usize)> {
    let (qi, kj) = app.grid.cur;
    let q = app.query_token()?;
    let k = app.key_token()?;
    // A long input's head may still be on its way: no rows yet.
    let row = app.grid.matrix.rows().into_iter().nth(qi)?;
    let w = *row.get(kj)?;
    let rank = 1 + row.iter().filter(|v| **v > w).count();
    Some((q, k, w, rank))
}

/// Lines of the "Cell" box.
pub fn cell_lines(app: &App, width: u16) -> Vec<Line<'static>> {
    let theme = Theme::new(app.color);
    let Some((q, k, w, rank)) = cell_facts(app) else {
        return vec![Line::styled("no cell", theme.dim())];
    };
    let lw = width.saturating_sub(10) as usize;
    let mut weight = vec![
        Span::styled("weight ", theme.dim()),
        Span::styled(format!("{w:.4}"), theme.accent()),
        Span::styled(
            format!("  rank {rank} of {}", app.grid.cols.len()),
            theme.dim(),
        ),
    ];
    if app.grid.hide_special
        && let Some(full) = app.full_matrix()
        && let Some(raw) = full.get([q, k])
    {
        weight.push(Span::styled(format!(" · raw {raw:.4}"), theme.dim()));
    }
    vec![
        Line::from(vec![
            Span::styled("query  ", theme.dim()),
            Span::raw(fit(&format!("{q} {}", quoted(&tok_label(app, q))), lw)),
        ]),
        Line::from(vec![
            Span::styled("key    ", theme.dim()),
            Span::raw(fit(&format!("{k} {}", quoted(&key_label(app, k))), lw)),
        ]),
        Line::from(weight),
    ]
}

/// The top keys of one row: (token index, weight), heaviest first.
pub fn top_keys(row: &[f32], visible: &[usize], k: usize) -> Vec<(usize, f32)> {
    let mut v: Vec<(usize, f32)> = row
        .iter()
        .enumerate()
        .filter_map(|(j, w)| visible.get(j).map(|&t| (t, *w)))
        .collect();
    v.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    v.truncate(k);
    v
}

/// Bars of where the cursor's query looks in the matrix on screen.
pub fn focus_lines(app: &App, width: u16, k: usize) -> Vec<Line<'static>> {
    let theme = Theme::new(app.color);
    let Some(row) = app.grid.matrix.rows().into_iter().nth(app.grid.cur.0) else {
        return vec![];
    };
    let row: Vec<f32> = row.to_vec();
    // A causal query cannot see later tokens: list only what it can see.
    let q = app.query_token().unwrap_or(0);
    let seen: Vec<usize> = app
        .grid
        .cols
        .iter()
        .map(|&t| {
            if app.info.causal && t > q {
                usize::MAX
            } else {
                t
            }
        })
        .collect();
    let top: Vec<(usize, f32)> = top_keys(&row, &seen, k + row.len())
        .into_iter()
        .filter(|(t, _)| *t != usize::MAX)
        .take(k)
        .collect();
    let lw = (width / 3).clamp(4, 14);
    let bw = width.saturating_sub(lw + 7).max(1);
    top.iter()
        .map(|&(t, w)| {
            let sel = Some(t) == app.key_token();
            Line::from(vec![
                Span::styled(
                    fit(&key_label(app, t), lw as usize),
                    if sel { theme.selected() } else { theme.label() },
                ),
                Span::raw(" "),
                Span::styled(hbar(w, bw), theme.bar()),
                Span::raw(" "),
                Span::styled(format!("{:>5}", w3(w)), theme.text()),
            ])
        })
        .collect()
}

/// One line per head of the layer: the head's heaviest key for the cursor's query and its weight.
pub fn heads_lines(app: &App, width: u16, max_lines: usize) -> Vec<Line<'static>> {
    let theme = Theme::new(app.color);
    let (Some(d), Some(q)) = (&app.data, app.query_token()) else {
        return vec![];
    };
    let Some(a) = d.att(app.sel.layer) else {
        return vec![];
    };
    let nh = a.dim().0;
    let mask: Vec<bool> = app
        .key_hidden_mask()
        .into_iter()
        .map(|m| app.grid.hide_special && m)
        .collect();
    let hw = nh.saturating_sub(1).to_string().len();
    let lw = (width / 4).clamp(4, 12);
    let bw = width.saturating_sub(lw + hw as u16 + 9).max(1);
    // A window of heads around the current one when they do not all fit.
    let max_lines = max_lines.max(1);
    let first = if nh <= max_lines {
        0
    } else {
        app.sel
            .head
            .saturating_sub(max_lines / 2)
            .min(nh - max_lines)
    };
    (first..nh.min(first + max_lines))
        .map(|h| {
            let raw = a.slice(ndarray::s![h, q, ..]).to_vec();
            let s: f32 = raw
                .iter()
                .zip(&mask)
                .filter(|(_, m)| !**m)
                .map(|(v, _)| *v)
                .sum();
            let (best, w) = raw
                .iter()
                .enumerate()
                .filter(|(j, _)| !mask.get(*j).copied().unwrap_or(false))
                .map(|(j, v)| (j, if s > 0.0 { v / s } else { 0.0 }))
                .fold(
                    (0usize, -1.0f32),
                    |acc, (j, v)| if v > acc.1 { (j, v) } else { acc },
                );
            let name = format!("h{h:<hw$}");
            let st = if h == app.sel.head && !app.sel.mean {
                theme.selected()
            } else {
                theme.dim()
            };
            Line::from(vec![
                Span::styled(name, st),
                Span::raw(" "),
                Span::styled(hbar(w.max(0.0), bw), theme.bar_alt()),
                Span::raw(" "),
                Span::raw(format!("{:>5} ", w3(w.max(0.0)))),
                Span::styled(fit(&key_label(app, best), lw as usize), theme.label()),
            ])
        })
        .collect()
}

/// The statistics of the head (or the mean) on screen: of what is shown.
pub fn current_stats(app: &App) -> Option<HeadStats> {
    app.current_stats()
}

/// Which query heads share head `h`'s key/value head (grouped-query attention).
pub fn kv_sharing(app: &App, h: usize) -> Option<(usize, Vec<usize>)> {
    analysis::kv_sharing(&app.trace()?.kv_group, h)
}

fn join(v: &[usize]) -> String {
    v.iter()
        .map(|h| h.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The top next tokens at the cursor's query position (decoders).
pub fn next_line(app: &App, width: u16) -> Option<Line<'static>> {
    let theme = Theme::new(app.color);
    let q = app.query_token()?;
    let next = app.trace()?.next_tokens.as_ref()?.get(q)?;
    let mut spans = vec![Span::styled(
        format!("next after {} ", quoted(&tok_label(app, q))),
        theme.dim(),
    )];
    let mut used: usize = spans.iter().map(|s| s.width()).sum();
    for t in next {
        let piece = format!(
            "{} {} ",
            quoted(&crate::tokenize::escape_label(&t.text)),
            w3(t.prob)
        );
        let pw = unicode_width::UnicodeWidthStr::width(piece.as_str());
        if used + pw > width as usize {
            break;
        }
        used += pw;
        spans.push(Span::raw(piece));
    }
    Some(Line::from(spans))
}

/// Lines of the statistics box.
pub fn stats_lines(app: &App, width: u16) -> Vec<Line<'static>> {
    let theme = Theme::new(app.color);
    let Some(s) = current_stats(app) else {
        return vec![];
    };
    let kv = |k: &str, v: String| vec![Span::styled(format!("{k:<9}"), theme.dim()), Span::raw(v)];
    let _ = width;
    let mut lines = vec![
        Line::from(kv(
            "entropy",
            format!(
                "{:.2} nats, {:.0}% of uniform",
                s.entropy,
                s.entropy_norm * 100.0
            ),
        )),
        Line::from(
            [
                kv("row max", format!("{:<7}", w3(s.max_weight))),
                kv("sink", format!("{} on 1st", w3(s.sink))),
            ]
            .concat(),
        ),
        Line::from(
            [
                kv("previous", format!("{:<7}", w3(s.prev))),
                kv("self", w3(s.self_)),
            ]
            .concat(),
        ),
        Line::from(kv("distance", format!("{:.2} tokens (mean)", s.distance))),
    ];
    if app.is_cross() {
        // Rows and columns are different sentences: the positional scores mean nothing here.
        lines.truncate(1);
        lines.push(Line::from(kv("row max", w3(s.max_weight))));
        lines.push(Line::styled(
            "sink, previous, self, distance: — (cross)",
            theme.dim(),
        ));
    }
    let tag = analysis::head_tag(&s);
    lines.push(Line::from(vec![
        Span::styled(format!("{:<9}", "kind"), theme.dim()),
        match tag {
            Some(t) => Span::styled(format!("{t} head"), theme.accent()),
            None => Span::styled("mixed (no single pattern)", theme.dim()),
        },
    ]));
    if !app.sel.mean
        && let Some((g, heads)) = kv_sharing(app, app.sel.head)
    {
        lines.push(Line::from(vec![
            Span::styled(format!("{:<9}", "KV head"), theme.dim()),
            Span::raw(fit(
                &format!("{g}, shared by query heads {}", join(&heads)),
                width.saturating_sub(9) as usize,
            )),
        ]));
    }
    if let Some(l) = next_line(app, width) {
        lines.push(l);
    }
    lines
}

/// The side panel: Cell, Where it looks, All heads, Statistics.
pub fn render_side(app: &App, area: Rect, buf: &mut Buffer) {
    let theme = Theme::new(app.color);
    if app.data.is_none() || area.height < 6 {
        boxed(" Details ".into(), &theme).render(area, buf);
        return;
    }
    let inner_w = area.width.saturating_sub(2);
    let stats = stats_lines(app, inner_w);
    let cell_h = 5u16;
    let stats_h = (stats.len() as u16 + 2).min(area.height.saturating_sub(cell_h));
    let rest = area.height.saturating_sub(cell_h + stats_h);
    let nh = app.n_heads() as u16;
    let n = app.grid.cols.len() as u16;
    let focus_h = (n + 2).min((rest / 2).max(rest.saturating_sub(nh + 2)));
    let heads_h = rest.saturating_sub(focus_h);
    let mut y = area.y;
    let mut section = |h: u16, title: String, lines: Vec<Line<'static>>, buf: &mut Buffer| {
        if h < 3 {
            y += h;
            return;
        }
        let r = Rect::new(area.x, y, area.width, h);
        Paragraph::new(lines)
            .block(boxed(title, &theme))
            .render(r, buf);
        y += h;
    };
    let ql = app
        .query_token()
        .map(|q| quoted(&tok_label(app, q)))
        .unwrap_or_default();
    section(
        cell_h,
        " Cell under the cursor ".into(),
        cell_lines(app, inner_w),
        buf,
    );
    let what = if app.sel.mean {
        "mean of heads".to_string()
    } else {
        format!("head {}", app.sel.head)
    };
    section(
        focus_h,
        fit(&format!(" Where {ql} looks · {what} "), inner_w as usize)
            .trim_end()
            .to_string()
            + " ",
        focus_lines(app, inner_w, focus_h.saturating_sub(2) as usize),
        buf,
    );
    section(
        heads_h,
        fit(
            &format!(" {ql} in every head of layer {} ", app.sel.layer),
            inner_w as usize,
        )
        .trim_end()
        .to_string()
            + " ",
        heads_lines(app, inner_w, heads_h.saturating_sub(2) as usize),
        buf,
    );
    let st = if app.sel.mean {
        "Mean of heads".to_string()
    } else {
        format!("Head {}", app.sel.head)
    };
    section(stats_h, format!(" {st} · statistics "), stats, buf);
}

/// Narrow terminals: the cell and the statistics in two or three lines under the grid.
pub fn render_info(app: &App, area: Rect, buf: &mut Buffer) {
    let theme = Theme::new(app.color);
    let w = area.width;
    let mut lines: Vec<Line<'static>> = vec![];
    if let Some((q, k, wt, rank)) = cell_facts(app) {
        lines.push(Line::from(vec![
            Span::styled(
                fit(
                    &format!(
                        "{q} {} → {k} {} ",
                        quoted(&tok_label(app, q)),
                        quoted(&key_label(app, k))
                    ),
                    (w as usize).saturating_sub(22).min(50),
                ),
                theme.label(),
            ),
            Span::styled(format!("{wt:.4}"), theme.accent()),
            Span::styled(format!(" rank {rank}/{}", app.grid.cols.len()), theme.dim()),
        ]));
    }
    if let Some(s) = current_stats(app) {
        let tag = analysis::head_tag(&s)
            .map(|t| format!(" [{t}]"))
            .unwrap_or_default();
        let mut text = format!(
            "H {:.2} ({:.0}%) · row max {} · sink {} · prev {} · self {} · dist {:.1}{tag}",
            s.entropy,
            s.entropy_norm * 100.0,
            w3(s.max_weight),
            w3(s.sink),
            w3(s.prev),
            w3(s.self_),
            s.distance
        )
        .replace(
            " · sink — · prev — · self — · dist NaN",
            " · cross: no positional scores",
        );
        if !app.sel.mean
            && let Some((g, heads)) = kv_sharing(app, app.sel.head)
        {
            text.push_str(&format!(" · KV {g}: {}", join(&heads)));
        }
        lines.push(Line::styled(text, theme.dim()));
    }
    if area.height >= 3 {
        if let Some(l) = next_line(app, w) {
            lines.push(l);
        } else if let Some(row) = app.grid.matrix.rows().into_iter().nth(app.grid.cur.0) {
            let top = top_keys(&row.to_vec(), &app.grid.cols, 4);
            let mut spans = vec![Span::styled("looks at ", theme.dim())];
            for (t, wt) in top {
                spans.push(Span::raw(format!(
                    "{} {} ",
                    quoted(&key_label(app, t)),
                    w3(wt)
                )));
            }
            lines.push(Line::from(spans));
        }
    }
    for (i, l) in lines.into_iter().take(area.height as usize).enumerate() {
        let r = Rect::new(area.x, area.y + i as u16, w, 1);
        Paragraph::new(l).render(r, buf);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tui::app::{App, Focus, Palette, Summary};
    use crate::tui::synthetic::{self, Kind};
    use ratatui::buffer::Buffer;

    fn app(kind: Kind) -> App {
        let mut app = App::new(synthetic::info(kind), "", None, Palette::Mono, (120, 40));
        app.data = Some(Summary::new(synthetic::trace(kind, &["a", "b", "c"])).unwrap());
        app.focus = Focus::Explorer;
        app.grid.cur = (2, 1);
        app.refresh();
        app
    }

    fn lines_of(lines: Vec<Line<'static>>, w: u16) -> Vec<String> {
        let area = Rect::new(0, 0, w, lines.len() as u16);
        let mut buf = Buffer::empty(area);
        Paragraph::new(lines).render(area, &mut buf);
        (0..area.height)
            .map(|y| (0..w).map(|x| buf[(x, y)].symbol()).collect::<String>())
            .collect()
    }

    #[test]
    fn focus_bars_are_exact() {
        // Llama layer 0 head 0 is previous-token: query 2 «b» (after <s>, a) looks only at 1 «a».
        let a = app(Kind::Llama);
        assert_eq!(
            lines_of(focus_lines(&a, 24, 3), 24),
            [
                "a        █████████ 1.000",
                "<s>                 .000",
                "b                   .000",
            ]
        );
    }

    #[test]
    fn every_head_line_shows_its_heaviest_key() {
        let a = app(Kind::Llama);
        // Heads 0..3 of layer 0: previous-token, sink, self, uniform over 3 visible tokens.
        assert_eq!(
            lines_of(heads_lines(&a, 30, 8), 30),
            [
                "h0 █████████████ 1.000 a      ",
                "h1 █████████████ 1.000 <s>    ",
                "h2 █████████████ 1.000 b      ",
                "h3 ████▍          .333 <s>    ",
            ]
        );
    }

    #[test]
    fn statistics_name_the_kind_the_kv_group_and_next_tokens() {
        let a = app(Kind::Llama);
        let text = lines_of(stats_lines(&a, 60), 60).join("\n");
        assert!(text.contains("previous-token head"), "{text}");
        assert!(text.contains("0, shared by query heads 0, 1"), "{text}");
        assert!(text.contains("next after «b» «␣next2_0» .500"), "{text}");
        // An encoder has neither.
        let e = app(Kind::Encoder);
        let text = lines_of(stats_lines(&e, 60), 60).join("\n");
        assert!(
            !text.contains("KV head") && !text.contains("next after"),
            "{text}"
        );
    }
}
