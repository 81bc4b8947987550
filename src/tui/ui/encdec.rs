//! What the screen adds for an encoder–decoder: the attention-kind selector in the header and the names of the two
//! input lines (source, target).

use super::widgets::Theme;
use crate::tui::app::App;
use crate::tui::encdec::AttnKind;
use ratatui::style::{Modifier, Style};
use ratatui::text::Span;

/// `encoder self · decoder self · cross` (`short`: `enc · dec · cross`), the kind on screen highlighted and
/// bracketed; nothing for other models.
pub fn selector(app: &App, bar: Style, theme: &Theme, short: bool) -> Vec<Span<'static>> {
    let Some(kind) = app.kind() else {
        return vec![];
    };
    let mut spans = vec![Span::styled(" │ ", bar)];
    for (i, k) in AttnKind::ALL.into_iter().enumerate() {
        if i > 0 {
            spans.push(Span::styled(" · ", bar.patch(theme.dim())));
        }
        let st = if k == kind {
            theme
                .accent()
                .add_modifier(Modifier::REVERSED | Modifier::BOLD)
        } else {
            bar.patch(theme.dim())
        };
        // The active kind is also bracketed, so it reads without colour.
        let name = match (short, k) {
            (true, AttnKind::EncoderSelf) => "enc",
            (true, AttnKind::DecoderSelf) => "dec",
            _ => k.name(),
        };
        let text = if k == kind {
            format!("[{name}]")
        } else {
            name.to_string()
        };
        spans.push(Span::styled(text, st));
    }
    spans
}

/// The tag before input line `f` and the placeholder of an empty line, for an encoder–decoder.
pub fn line_names(app: &App, f: usize) -> Option<(&'static str, &'static str)> {
    app.encdec.as_ref()?;
    Some(if f == 0 {
        ("S ❯ ", "type the source, Enter runs it")
    } else {
        (
            "T ❯ ",
            "target: empty = greedy decoding (Ctrl-T / T fills it)",
        )
    })
}

/// The input box's title for an encoder–decoder.
pub fn input_title(app: &App, focused: bool) -> Option<&'static str> {
    app.encdec.as_ref()?;
    Some(if focused {
        " Source / target · Enter runs · ↓/↑: target/source · Ctrl-T decodes · Tab: explorer "
    } else {
        " Source / target · Tab or i to edit · T decodes · t: attention kind "
    })
}
