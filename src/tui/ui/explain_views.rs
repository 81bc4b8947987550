//! The explorer's explanation views: pick the widget for the view and feed it the worker's result for the cursor.

use super::explain;
use super::widgets::Theme;
use crate::tui::app::{App, View};
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::Line;

/// Draw `app.view` (one of the explanation views) into `area`.
pub fn render(app: &App, area: Rect, buf: &mut Buffer) {
    let theme = Theme::new(app.color);
    let labels: Vec<String> = app
        .trace()
        .map(|t| t.tokens.iter().map(|x| x.label.clone()).collect())
        .unwrap_or_default();
    let keys: Vec<String> = app.key_tokens().iter().map(|x| x.label.clone()).collect();
    let both = explain::Labels {
        query: &labels,
        key: &keys,
    };
    let scroll = app.explain.scroll;
    let Some(r) = app.explain.current(app.explain_request()) else {
        let msg = if app.data.is_some() {
            "computing…"
        } else {
            "no trace yet"
        };
        explain::boxed(
            buf,
            area,
            " Explain ".into(),
            vec![Line::raw(msg)],
            0,
            &theme,
        );
        return;
    };
    let fail = |buf: &mut Buffer, e: &str| {
        explain::boxed(
            buf,
            area,
            " Explain ".into(),
            vec![Line::styled(e.to_string(), theme.error())],
            0,
            &theme,
        )
    };
    match app.view {
        View::Weight => match &r.weight {
            Ok(c) => explain::render_weight(buf, area, c, both, scroll, &theme),
            Err(e) => fail(buf, e),
        },
        View::Writes => match &r.weight {
            Ok(c) => explain::render_writes(
                buf,
                area,
                c,
                both,
                app.explain.through_wo.then_some(r.head_norms.as_slice()),
                scroll,
                &theme,
            ),
            Err(e) => fail(buf, e),
        },
        View::Embedding => match &r.embedding {
            Ok(e) => explain::render_boxed(buf, area, e, &labels, scroll, &theme),
            Err(e) => fail(buf, e),
        },
        View::Walk => match &r.walk {
            Ok(w) => explain::render_boxed(buf, area, w, &labels, scroll, &theme),
            Err(e) => fail(buf, e),
        },
        _ => {}
    }
}
