//! The keys of "what a head does" (ablation, sweep, rollout, attribution, generation; `app/interp.rs`), kept
//! apart from the main table so both grow without touching each other. [`super::rows`] chains them after it.

use super::{Action as A, Ctx::Explorer, Row, ch, row};

#[rustfmt::skip]
pub const ROWS: &[Row] = &[
    row(Explorer, &[(ch('A'), A::Ablate)],
        "ablate / restore the selected head (several can be off); every view then shows the ablated run"),
    row(Explorer, &[(ch('M'), A::AblateMode)],
        "ablation: zero ↔ mean (the head's z replaced by its mean over positions)"),
    row(Explorer, &[(ch('f'), A::FlipAblated)], "flip between the ablated and the clean run"),
    row(Explorer, &[(ch('U'), A::ClearAblation)], "restore every ablated head"),
    row(Explorer, &[(ch('S'), A::Sweep)],
        "sweep: ablate every head in turn, ranked by Δ logit at the cursor's position (decoders; S or Esc cancels)"),
    row(Explorer, &[(ch('R'), A::Rollout)],
        "rollout: the grid shows R_l, attention followed through layers 0..l (on/off)"),
    row(Explorer, &[(ch('C'), A::Attribution)],
        "direct logit attribution of the top prediction at the cursor's position (decoders; toggles)"),
    row(Explorer, &[(ch('+'), A::GenNext), (ch('-'), A::GenBack)],
        "generate: append the next token / remove the last generated one (decoders)"),
    row(Explorer, &[(ch('{'), A::TempDown), (ch('}'), A::TempUp)],
        "generation temperature down / up (0 = greedy)"),
    row(Explorer, &[(ch('<'), A::TopKDown), (ch('>'), A::TopKUp)],
        "generation top-k down / up (0 = every token)"),
];
