//! The help screen's lines and README's key table, both generated from the keymap.

use super::{ORDER, keys_label, rows};

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
