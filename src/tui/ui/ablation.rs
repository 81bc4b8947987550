//! The ablation's effect beside the clean run: in the grid's side panel (or its info lines on narrow screens), in
//! the overview's summary, and as a note in the header.

use super::widgets::{Theme, hbar, put};
use crate::tui::app::App;
use crate::tui::interp::{Effect, NextEffect};
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::Line;
use ratatui::widgets::{Block, BorderType, Widget};

/// Whether any head is ablated.
pub fn active(app: &App) -> bool {
    !app.interp.ablation.heads.is_empty()
}

/// `L23.H4, L0.H6` (at most `max` listed).
pub fn heads_list(app: &App, max: usize) -> String {
    let h = &app.interp.ablation.heads;
    let mut s: Vec<String> = h
        .iter()
        .take(max)
        .map(|(l, h)| format!("L{l}.H{h}"))
        .collect();
    if h.len() > max {
        s.push(format!("+{}", h.len() - max));
    }
    s.join(", ")
}

/// The header's note: `2 heads ablated` (and which run is shown), `rollout`.
pub fn header_note(app: &App) -> String {
    let mut parts = vec![];
    let a = &app.interp.ablation;
    if !a.heads.is_empty() {
        let n = a.heads.len();
        let kind = if a.mean { "mean" } else { "zero" };
        let shown = if a.since.is_some() {
            "running"
        } else if a.showing_ablated {
            "shown"
        } else {
            "clean shown"
        };
        parts.push(format!(
            "{n} head{} ablated ({kind}, {shown})",
            if n == 1 { "" } else { "s" }
        ));
    }
    if app.interp.rollout {
        parts.push("rollout".into());
    }
    parts.join(" · ")
}

fn next_at(app: &App, pos: usize) -> Option<&NextEffect> {
    match app.ablation_effect()? {
        Effect::Next(v) => v.iter().find(|e| e.pos == pos),
        Effect::Cosine(_) => None,
    }
}

/// One line: the effect at the watched position.
pub fn effect_line(app: &App) -> String {
    let pos = app.watched_position();
    if app.interp.ablation.since.is_some() {
        return format!("ablating {}…", heads_list(app, 4));
    }
    match app.ablation_effect() {
        None => "no ablated run yet".into(),
        Some(Effect::Next(_)) => match next_at(app, pos) {
            Some(e) => {
                let after: Vec<String> = e
                    .after
                    .iter()
                    .take(3)
                    .map(|t| format!("{} {:.3}", t.text, t.prob))
                    .collect();
                format!(
                    "pos {pos}: {} {:.3} → {:.3}, logit {:.2} → {:.2} (Δ {:+.2}) · now: {}",
                    e.token.text,
                    e.token.prob,
                    e.prob,
                    e.clean_logit,
                    e.logit,
                    e.delta(),
                    after.join(" · ")
                )
            }
            None => format!(
                "pos {pos}: not computed (long input: the cursor at ablation time and the last)"
            ),
        },
        Some(Effect::Cosine(c)) => {
            let here = c.get(pos).copied().unwrap_or(f32::NAN);
            let (imin, min) =
                c.iter()
                    .copied()
                    .enumerate()
                    .fold(
                        (0, f32::INFINITY),
                        |a, (i, v)| if v < a.1 { (i, v) } else { a },
                    );
            format!(
                "cosine of the final state to the clean one: pos {pos} {here:.4} · lowest {min:.4} at {}",
                app.token_label(imin)
            )
        }
    }
}

/// The compact form for the grid's info lines (narrow screens).
pub fn render_compact(app: &App, area: Rect, buf: &mut Buffer) {
    let theme = Theme::new(app.color);
    let top = format!("{} · f flips clean/ablated · U restores", header_note(app));
    put(buf, area.x, area.y, area.width, &top, theme.accent());
    if area.height > 1 {
        put(
            buf,
            area.x,
            area.y + 1,
            area.width,
            &effect_line(app),
            theme.text(),
        );
    }
}

/// The effect panel: the top of the grid's side panel. Returns the rows it used.
pub fn render_panel(app: &App, area: Rect, buf: &mut Buffer) -> u16 {
    let theme = Theme::new(app.color);
    let w = area.width.saturating_sub(2) as usize;
    let mut lines: Vec<(String, Style)> = vec![(
        format!(
            "{} · {}",
            heads_list(app, 6),
            if app.interp.ablation.mean {
                "mean"
            } else {
                "zero"
            }
        ),
        theme.accent(),
    )];
    let pos = app.watched_position();
    if app.interp.ablation.since.is_some() {
        lines.push(("running the ablated model…".into(), theme.dim()));
    } else {
        match app.ablation_effect() {
            None => lines.push(("no ablated run yet".into(), theme.dim())),
            Some(Effect::Next(_)) => match next_at(app, pos) {
                Some(e) => {
                    lines.push((
                        format!("next token after {} (pos {pos})", app.token_label(pos)),
                        theme.title(),
                    ));
                    let cw = (w / 2).max(8);
                    lines.push((format!("{:<cw$}{}", "clean", "ablated"), theme.dim()));
                    for i in 0..e.before.len().max(e.after.len()) {
                        let cell = |v: &[crate::trace::TopToken]| {
                            v.get(i)
                                .map(|t| format!("{} {:.3}", t.text, t.prob))
                                .unwrap_or_default()
                        };
                        let l = crate::show::fit(&cell(&e.before), cw.saturating_sub(1));
                        lines.push((format!("{l} {}", cell(&e.after)), theme.text()));
                    }
                    lines.push((
                        format!(
                            "{}: logit {:.2} → {:.2}, Δ {:+.2}",
                            e.token.text,
                            e.clean_logit,
                            e.logit,
                            e.delta()
                        ),
                        if e.delta() < 0.0 {
                            theme.error()
                        } else {
                            theme.ok()
                        },
                    ));
                }
                None => lines.push(("not computed at this position".into(), theme.dim())),
            },
            Some(Effect::Cosine(c)) => {
                lines.push((
                    "cosine of each final state to the clean one".into(),
                    theme.title(),
                ));
                let lw = 12usize.min(w / 3);
                for (i, v) in c.iter().enumerate() {
                    let label = crate::show::fit(&app.token_label(i), lw);
                    let bar = hbar(*v, (w.saturating_sub(lw + 8)) as u16);
                    let st = if i == pos {
                        theme.selected()
                    } else {
                        theme.text()
                    };
                    lines.push((format!("{label} {v:.4} {bar}"), st));
                }
            }
        }
    }
    lines.push((
        if app.interp.ablation.showing_ablated {
            "views show the ablated run · f: clean".into()
        } else {
            "views show the clean run · f: ablated".into()
        },
        theme.dim(),
    ));
    let h = (lines.len() as u16 + 2).min(area.height);
    let r = Rect::new(area.x, area.y, area.width, h);
    Block::bordered()
        .border_type(BorderType::Rounded)
        .border_style(theme.border(false))
        .title(Line::styled(" Ablation effect ", theme.title()))
        .render(r, buf);
    for (i, (s, st)) in lines.iter().take(h.saturating_sub(2) as usize).enumerate() {
        put(
            buf,
            r.x + 1,
            r.y + 1 + i as u16,
            r.width.saturating_sub(2),
            s,
            *st,
        );
    }
    h
}
