//! The help screen and README's key table, generated from the keymap ([`super::rows`]).

use super::{Action, C, Ctx, K, Key, Row, rows};

fn key_name(k: &Key) -> String {
    match k.0 {
        K::Left => "←".into(),
        K::Right => "→".into(),
        K::Up => "↑".into(),
        K::Down => "↓".into(),
        K::PageUp => "PgUp".into(),
        K::PageDown => "PgDn".into(),
        K::Home => "Home".into(),
        K::End => "End".into(),
        K::Enter => "Enter".into(),
        K::Esc => "Esc".into(),
        K::Tab => "Tab".into(),
        K::BackTab => "Shift-Tab".into(),
        K::Backspace => "Backspace".into(),
        K::Delete => "Del".into(),
        K::F(n) => format!("F{n}"),
        K::Char(c) if k.1.contains(C) => format!("Ctrl-{}", c.to_ascii_uppercase()),
        K::Char(c) => c.to_string(),
        _ => String::new(),
    }
}

/// The keys of a row as shown: `← →`, `0-9`, `Ctrl-U Ctrl-K`.
pub fn keys_label(r: &Row) -> String {
    if r.keys.is_empty() {
        return "type / paste".into();
    }
    if r.keys.iter().all(|(_, a)| *a == Action::Digit) {
        return "0-9".into();
    }
    if r.keys.iter().all(|(_, a)| *a == Action::Select) {
        return "Shift-drag".into();
    }
    let mut names: Vec<String> = vec![];
    for (k, _) in r.keys {
        let n = key_name(k);
        if !n.is_empty() && !names.contains(&n) {
            names.push(n);
        }
    }
    names.join(" ")
}

/// The contexts in the order the help shows them.
pub const ORDER: [Ctx; 8] = [
    Ctx::Input,
    Ctx::Explorer,
    Ctx::Grid,
    Ctx::Overview,
    Ctx::Positions,
    Ctx::Norms,
    Ctx::Lens,
    Ctx::Explain,
];

/// The help: per context, a heading (`None` keys) and its rows.
pub fn help_lines() -> Vec<(Option<String>, String)> {
    let mut out = vec![];
    for c in ORDER {
        out.push((None, c.title().to_string()));
        for r in rows().filter(|r| r.ctx == c) {
            out.push((Some(keys_label(r)), r.help.to_string()));
        }
    }
    out
}

/// README's key table, generated.
pub fn markdown() -> String {
    let mut s = String::new();
    for (k, h) in help_lines() {
        match k {
            None => {
                if !s.is_empty() {
                    s.push('\n');
                }
                s.push_str(&format!("**{h}**\n\n| keys | what |\n|---|---|\n"));
            }
            Some(k) => s.push_str(&format!("| `{k}` | {} |\n", h.replace('|', "\\|"))),
        }
    }
    s
}
