//! The worker's answers for ablation, the sweep, attribution and generation ([`InterpOutcome`]), taken into the
//! app; stale ones (another text, other heads) are dropped.

use super::{App, Effect};
use crate::tui::interp::{Ablated, Head, InterpOutcome};

impl App {
    /// An outcome from the worker.
    pub(super) fn interp_outcome(&mut self, o: InterpOutcome) -> Vec<Effect> {
        let mut fx = vec![];
        match o {
            InterpOutcome::Ablated {
                generation,
                heads,
                mean,
                result,
            } => {
                let a = &self.interp.ablation;
                let now: Vec<Head> = a.heads.iter().copied().collect();
                if generation != self.runs.shown || heads != now || mean != a.mean {
                    return fx;
                }
                self.interp.ablation.since = None;
                match result {
                    Ok(Ablated { summary, effect }) => {
                        if self.interp.ablation.showing_ablated {
                            self.data = Some(summary);
                        } else {
                            self.interp.ablation.other = Some(summary);
                            self.interp.ablation.showing_ablated = false;
                            self.show_ablated(true);
                        }
                        self.interp.ablation.effect = Some((heads, mean, effect));
                        self.lens = None;
                        self.explain.reset();
                        self.refresh();
                    }
                    Err(e) => self.fail(format!("ablation failed: {e}")),
                }
            }
            InterpOutcome::SweepProgress {
                generation,
                done,
                total,
            } => {
                if let Some(s) = &mut self.interp.sweep
                    && s.generation == generation
                    && s.result.is_none()
                {
                    s.progress = (done.max(s.progress.0), total);
                }
            }
            InterpOutcome::Swept {
                generation,
                mean,
                result,
                labels,
                elapsed,
            } => {
                let Some(s) = &mut self.interp.sweep else {
                    return fx;
                };
                if s.generation != generation || s.mean != mean || s.result.is_some() {
                    return fx;
                }
                s.elapsed = elapsed;
                s.labels = labels;
                match result {
                    Ok(Some(sw)) => {
                        s.progress.0 = s.progress.1;
                        s.result = Some(Ok(sw));
                    }
                    Ok(None) => self.interp.sweep = None,
                    Err(e) => s.result = Some(Err(e)),
                }
            }
            InterpOutcome::Attributed {
                generation,
                position,
                result,
            } => {
                if let Some(d) = &mut self.interp.dla
                    && d.generation == generation
                    && d.position == position
                {
                    d.result = Some(result);
                }
            }
            InterpOutcome::Generated {
                generation,
                result,
                total,
            } => {
                if generation != self.runs.generation {
                    return fx;
                }
                self.runs.busy_since = None;
                match result {
                    Ok(g) => {
                        if let Some(prev) = self.take_clean() {
                            self.interp.generation.history.push(prev);
                        }
                        let cands: Vec<String> = g
                            .candidates
                            .iter()
                            .map(|c| format!("{} {:.3}", c.text, c.prob))
                            .collect();
                        self.say(format!(
                            "+ {} (p {:.3}) · {} · candidates: {} · - removes",
                            g.token.text,
                            g.token.prob,
                            self.interp.generation.describe(),
                            cands.join(" · ")
                        ));
                        self.interp.generation.tokens.push(g.token);
                        self.interp.generation.candidates = g.candidates;
                        self.interp.generation.cache = g.cache;
                        fx.extend(self.accept_run(g.summary, generation, total));
                        // The new token's row, highlighted by the cursor.
                        let last = self.grid.visible.len().saturating_sub(1);
                        self.move_cur(last as isize, 0);
                    }
                    Err(e) => self.fail(format!("generation failed: {e}")),
                }
            }
        }
        fx
    }
}
