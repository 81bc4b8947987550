//! The keys of "what a head does" (ablation, sweep, rollout, attribution, generation; `app/interp.rs`), kept
//! apart from the main table so both grow without touching each other. [`super::rows`] chains them after it.

use super::{Action as A, Ctx, Row, ch, row};

pub const ROWS: &[Row] = &[
    row(
        Ctx::Explorer,
        &[(ch('A'), A::Ablate)],
        "ablate / restore the selected head (several can be off); every view then shows the ablated run",
    ),
    row(
        Ctx::Explorer,
        &[(ch('M'), A::AblateMode)],
        "ablation: zero ↔ mean (the head's z replaced by its mean over positions)",
    ),
    row(
        Ctx::Explorer,
        &[(ch('f'), A::FlipAblated)],
        "flip between the ablated and the clean run",
    ),
    row(
        Ctx::Explorer,
        &[(ch('U'), A::ClearAblation)],
        "restore every ablated head",
    ),
    row(
        Ctx::Explorer,
        &[(ch('S'), A::Sweep)],
        "sweep: ablate every head in turn, ranked by Δ logit at the cursor's position (decoders; S or Esc cancels)",
    ),
    row(
        Ctx::Explorer,
        &[(ch('R'), A::Rollout)],
        "rollout: the grid shows R_l, attention followed through layers 0..l (on/off)",
    ),
    row(
        Ctx::Explorer,
        &[(ch('C'), A::Attribution)],
        "direct logit attribution of the top prediction at the cursor's position (decoders; toggles)",
    ),
    row(
        Ctx::Explorer,
        &[(ch('+'), A::GenNext), (ch('-'), A::GenBack)],
        "generate: append the next token / remove the last generated one (decoders)",
    ),
    row(
        Ctx::Explorer,
        &[(ch('{'), A::TempDown), (ch('}'), A::TempUp)],
        "generation temperature down / up (0 = greedy)",
    ),
    row(
        Ctx::Explorer,
        &[(ch('<'), A::TopKDown), (ch('>'), A::TopKUp)],
        "generation top-k down / up (0 = every token)",
    ),
];
