//! The logit lens (`e`, decoders): what the residual stream after each layer would predict as the next token at the
//! cursor's position, if it went straight through the final norm and the LM head.

use super::widgets::{Theme, hbar, put, w3};
use crate::show::fit;
use crate::tokenize::escape_label;
use crate::tui::app::App;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Paragraph, Widget};

pub fn render(app: &App, area: Rect, buf: &mut Buffer) {
    let theme = Theme::new(app.color);
    let q = app.query_token();
    let label = q
        .and_then(|q| {
            app.trace()?
                .tokens
                .get(q)
                .map(|t| format!("{q} «{}»", t.label))
        })
        .unwrap_or_default();
    let b = Block::bordered()
        .border_type(BorderType::Rounded)
        .border_style(theme.border(true))
        .title(Line::styled(
            format!(" Logit lens at position {label} · j/k: position · e: back "),
            theme.title(),
        ));
    let inner = b.inner(area);
    b.render(area, buf);
    if inner.height < 3 || inner.width < 20 {
        return;
    }
    let Some(lens) = &app.lens else {
        put(
            buf,
            inner.x,
            inner.y,
            inner.width,
            "no lens yet",
            theme.dim(),
        );
        return;
    };
    let rows = match &lens.rows {
        None => {
            put(
                buf,
                inner.x,
                inner.y,
                inner.width,
                "computing the logit lens…",
                theme.dim(),
            );
            return;
        }
        Some(None) => {
            put(
                buf,
                inner.x,
                inner.y,
                inner.width,
                "this model has no LM head (the textbook model predicts nothing): the logit lens needs GPT-2 or Llama",
                theme.dim(),
            );
            return;
        }
        Some(Some(r)) => r,
    };
    let mut lines = vec![Line::styled(
        fit(
            "after layer · top next tokens if the stream stopped here (final norm + LM head) · the last row is the model's own",
            inner.width as usize,
        ),
        theme.dim(),
    )];
    let k = rows.iter().map(Vec::len).max().unwrap_or(0).max(1);
    let col_w = (inner.width.saturating_sub(6) / k as u16).max(8);
    let bw = (col_w / 3).clamp(2, 8);
    let avail = (inner.height as usize).saturating_sub(1);
    let first = rows.len().saturating_sub(avail);
    for (l, top) in rows.iter().enumerate().skip(first) {
        let mut spans = vec![Span::styled(
            format!("{:<6}", format!("L{l}")),
            if l == app.sel.layer {
                theme.selected()
            } else {
                theme.dim()
            },
        )];
        for (i, t) in top.iter().enumerate() {
            let text = fit(&escape_label(&t.text), (col_w - bw - 6) as usize);
            spans.push(Span::styled(
                hbar(t.prob, bw),
                if i == 0 { theme.bar_alt() } else { theme.bar() },
            ));
            spans.push(Span::raw(format!("{:>5} ", w3(t.prob))));
            spans.push(Span::styled(
                text,
                if i == 0 {
                    theme.accent()
                } else {
                    theme.label()
                },
            ));
            spans.push(Span::raw(" "));
        }
        lines.push(Line::from(spans));
    }
    Paragraph::new(lines).render(inner, buf);
}
