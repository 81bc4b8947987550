//! The embedding view: one token's embedding part by part (token embedding, scale, positional vector, segment,
//! sum, embedding norm), each with its norm, ending at the vector that enters block 0. Small models show every
//! number; large ones signed bars over the dimensions (panned with `[`/`]`).

use super::explain::{Boxed, Pane, tok, vectors};
use crate::explain::embedding::EmbeddingParts;
use ratatui::text::{Line, Span};

impl Boxed for EmbeddingParts {
    fn title(&self) -> String {
        format!(" Embedding · token {} · j/k token · [ ] dims ", self.token)
    }

    fn lines(&self, labels: &[String], p: Pane) -> Vec<Line<'static>> {
        let Pane { width, pan, theme } = p;
        let e = self;
        let mut l = p.title(format!(
            "token {} → the vector entering block 0",
            tok(labels, e.token)
        ));
        for (i, p) in e.parts.iter().enumerate() {
            l.push(Line::from(vec![
                Span::styled(p.label.clone(), theme.accent()),
                Span::styled(format!("   ‖·‖ = {:.4}", p.norm), theme.dim()),
            ]));
            let name = if i + 1 == e.parts.len() { "= x₀" } else { "" };
            l.extend(vectors(&[(name, &p.values, &[])], pan, width, theme));
        }
        if let Some(n) = &e.positional_note {
            l.push(Line::styled(n.clone(), theme.bar_alt()));
        }
        l
    }
}

#[cfg(test)]
mod tests {
    use crate::tui::ui::explain::boxed_rows;

    #[test]
    fn the_textbook_embedding_shows_every_number() {
        let e = crate::explain::examples::textbook_embedding(1);
        let labels = vec!["I".to_string(), "love".to_string()];
        assert_eq!(
            boxed_rows(&e, &labels, (42, 15), (0, 0)),
            [
                "╭ Embedding · token 1 · j/k token · [ ] d╮",
                "│token 1 «love» → the vector entering blo│",
                "│token embedding   ‖·‖ = 1.4142          │",
                "│dim           0      1      2      3    │",
                "│          1.000  0.000  0.000  1.000    │",
                "│× 2.0000 (scale)   ‖·‖ = 2.8284         │",
                "│dim           0      1      2      3    │",
                "│          2.000  0.000  0.000  2.000    │",
                "│+ positional (sinusoidal)   ‖·‖ = 1.4142│",
                "│dim           0      1      2      3    │",
                "│          0.000  1.000  0.000  1.000    │",
                "│= sum   ‖·‖ = 3.7417                    │",
                "│dim           0      1      2      3    │",
                "│= x₀      2.000  1.000  0.000  3.000    │",
                "╰────────────────────────────────────────╯",
            ]
        );
    }

    #[test]
    fn a_rotary_model_says_where_positions_go_and_wide_vectors_become_bars() {
        let v: Vec<f32> = (0..64)
            .map(|i| if i % 2 == 0 { 1.0 } else { -0.5 })
            .collect();
        let e = crate::explain::examples::rotary_embedding(v);
        let r = boxed_rows(&e, &[], (30, 8), (0, 0));
        assert_eq!(r[3], "│dims 0–19 of 64 · bars: ± up│");
        assert_eq!(r[4], "│= x₀    █ █ █ █ █ █ █ █ █ █ │");
        assert_eq!(r[5], "│         ▄ ▄ ▄ ▄ ▄ ▄ ▄ ▄ ▄ ▄│");
        assert_eq!(r[6], "│rotary: nothing is added her│");
    }
}
