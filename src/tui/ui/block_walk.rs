//! The block walk-through: one token through one block, each arrow with the vector's norm (the same numbers as the
//! residual-norm view), the heads' contributions, and the MLP (activation, zeros or gate, top neurons).

use super::explain::{Boxed, Pane, tok, vectors};
use super::widgets::hbar;
use crate::explain::block_walk::BlockWalk;
use ratatui::text::{Line, Span};

impl Boxed for BlockWalk {
    fn title(&self) -> String {
        format!(
            " Block {} walk-through · token {} · j/k token · J/K scroll ",
            self.layer, self.token
        )
    }

    fn lines(&self, labels: &[String], p: Pane) -> Vec<Line<'static>> {
        let Pane { width, pan, theme } = p;
        let w = self;
        let mut l = p.title(format!(
            "layer {} · token {} · {}",
            w.layer,
            tok(labels, w.token),
            if w.post_ln {
                "post-LN: norm after each residual sum"
            } else {
                "pre-LN: norm before each sub-layer"
            }
        ));
        let small = super::explain::fits(w.steps.first().map_or(0, |s| s.values.len()), width);
        let max = w
            .steps
            .iter()
            .map(|s| s.norm)
            .fold(0.0f32, f32::max)
            .max(1e-12);
        let bw = (width as usize).saturating_sub(50).min(30) as u16;
        for (i, s) in w.steps.iter().enumerate() {
            let arrow = if i == 0 { "  " } else { "↓ " };
            l.push(Line::from(vec![
                Span::styled(arrow, theme.dim()),
                Span::styled(
                    format!("{:<34}", crate::show::fit(&s.label, 34)),
                    theme.accent(),
                ),
                Span::raw(format!("‖·‖ {:>8.3} ", s.norm)),
                Span::styled(hbar(s.norm / max, bw), theme.bar()),
            ]));
            if small {
                l.extend(vectors(&[("", &s.values, &[])], pan, width, theme));
            }
            if s.label == "attention output" {
                let hs: Vec<String> = w
                    .head_norms
                    .iter()
                    .enumerate()
                    .map(|(h, n)| format!("h{h} {n:.2}"))
                    .collect();
                l.push(Line::from(vec![
                    Span::styled("    heads ‖W_O^h z_h‖: ", theme.dim()),
                    Span::raw(hs.join(" · ")),
                    Span::styled(format!(" · bias {:.2}", w.heads_residual), theme.dim()),
                ]));
            }
            if s.label == "MLP output" {
                let m = &w.mlp;
                let act = if m.gated {
                    format!("{}(gate) · up", m.activation)
                } else {
                    m.activation.clone()
                };
                let zeros = m
                    .zero_share
                    .map(|z| format!(" · {:.0}% of neurons exactly 0", z * 100.0))
                    .unwrap_or_default();
                l.push(Line::styled(
                    format!(
                        "    MLP: {} neurons · {act} · ‖pre‖ {:.3} → ‖act‖ {:.3}{zeros}",
                        m.d_ff, m.pre_norm, m.post_norm
                    ),
                    theme.dim(),
                ));
                let top: Vec<String> = m
                    .top
                    .iter()
                    .map(|n| match n.up {
                        Some(u) => {
                            format!("#{} g {:.2} u {:.2} → {:.2}", n.index, n.pre, u, n.post)
                        }
                        None => format!("#{} {:.2} → {:.2}", n.index, n.pre, n.post),
                    })
                    .collect();
                l.push(Line::from(vec![
                    Span::styled("    top neurons: ", theme.dim()),
                    Span::raw(top.join(" · ")),
                ]));
            }
        }
        l
    }
}

#[cfg(test)]
mod tests {
    use crate::tui::ui::explain::boxed_rows;

    #[test]
    fn a_post_ln_block_step_by_step() {
        let w = crate::explain::examples::post_ln_walk();
        let r = boxed_rows(&w, &[], (64, 12), (0, 0));
        assert_eq!(
            r[1],
            "│layer 2 · token #1 · post-LN: norm after each residual sum    │"
        );
        assert_eq!(
            r[2],
            "│  resid_pre                         ‖·‖    1.000 █▊           │"
        );
        assert_eq!(
            r[3],
            "│dim           0      1                                        │"
        );
        assert_eq!(
            r[4],
            "│          1.000  0.000                                        │"
        );
        assert_eq!(
            r[5],
            "│↓ attention output                  ‖·‖    6.403 ██████████▉  │"
        );
        assert_eq!(
            r[8],
            "│    heads ‖W_O^h z_h‖: h0 3.00 · h1 4.00 · bias 1.41          │"
        );
        assert_eq!(
            r[9],
            "│↓ resid_pre + attention             ‖·‖    7.071 ████████████ │"
        );
        // Scrolled to the MLP: the zero share of the ReLU and the top neurons.
        let r = boxed_rows(&w, &[], (64, 12), (10, 0));
        assert!(
            r.iter()
                .any(|s| s.contains("MLP: 4 neurons · relu · ‖pre‖ 3.775 → ‖act‖ 2.062 · 50% of")),
            "{r:#?}"
        );
        assert!(
            r.iter()
                .any(|s| s.contains("top neurons: #1 2.00 → 2.00 · #3 0.50 → 0.50")),
            "{r:#?}"
        );
    }
}
