//! The explanation views (`E o b B`) and the value-weighted grid (`v`): what they ask the worker for and their own
//! keys. The state itself is [`crate::tui::explained::ExplainState`].

use super::{App, Effect};
use crate::tui::event::Job;
use crate::tui::explained::ExplainRequest;
use crate::tui::keymap::Action;

impl App {
    /// The explanation request for the cursor's cell, when an explanation view or the value-weighted mode needs one.
    pub fn explain_request(&self) -> Option<ExplainRequest> {
        let needed = self.view.explains() || self.explain.value_weighted;
        (needed && self.data.is_some()).then_some(())?;
        Some(ExplainRequest {
            generation: self.runs.shown,
            layer: self.sel.layer,
            head: self.sel.head,
            query: self.query_token()?,
            key: self.key_token()?,
        })
    }

    /// The job for the explanation wanted now, unless it is computed or on its way.
    pub(super) fn want_explain(&mut self) -> Option<Effect> {
        let want = self.explain_request()?;
        let trace = &self.data.as_ref()?.trace;
        let (req, trace, w_o) = self.explain.next(want, trace)?;
        Some(Effect::Job(Job::Explain {
            req,
            trace,
            w_o,
            side: self.encdec_side(),
        }))
    }

    /// `v`: the grid shows ‖α·v W_O‖ per key instead of α.
    pub(super) fn toggle_value_weighted(&mut self) {
        self.explain.value_weighted = !self.explain.value_weighted;
        self.refresh();
        self.say(if self.explain.value_weighted {
            "value-weighted: ‖α·v W_O‖ per key (Kobayashi et al. 2020), rows normalised"
        } else {
            "attention weights α"
        });
    }

    /// Keys of the explanation views: J/K scroll rows, [ ] pan dimensions, t: through W_O.
    pub(super) fn explain_key(&mut self, a: Action) {
        let s = &mut self.explain.scroll;
        match a {
            Action::ScrollDown => s.0 += 1,
            Action::ScrollUp => s.0 = s.0.saturating_sub(1),
            Action::DimsRight => s.1 += 16,
            Action::DimsLeft => s.1 = s.1.saturating_sub(16),
            Action::ThroughWo => self.explain.through_wo = !self.explain.through_wo,
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tui::app::View;
    use crate::tui::event::Event;
    use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

    #[test]
    fn explain_keys_open_views_and_scroll() {
        let info = crate::tui::synthetic::info(crate::tui::synthetic::Kind::Encoder);
        let mut app = App::new(
            info,
            "a b c",
            None,
            crate::colormap::Palette::Mono,
            (120, 40),
        );
        let now = std::time::Instant::now();
        let shift = |c| Event::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::SHIFT));
        app.update(Event::key(KeyCode::Tab), now);
        app.update(shift('E'), now);
        assert_eq!(app.view, View::Weight);
        app.update(shift('J'), now);
        app.update(Event::key(KeyCode::Char(']')), now);
        assert_eq!(app.explain.scroll, (1, 16));
        app.update(Event::key(KeyCode::Char('t')), now);
        assert!(app.explain.through_wo);
        app.update(Event::key(KeyCode::Char('o')), now);
        assert_eq!(app.view, View::Writes);
        app.update(shift('B'), now);
        assert_eq!(app.view, View::Walk);
        app.update(Event::key(KeyCode::Char('b')), now);
        assert_eq!(app.view, View::Embedding);
        app.update(Event::key(KeyCode::Char('b')), now);
        assert_eq!(app.view, View::Grid);
        app.update(Event::key(KeyCode::Char('v')), now);
        assert!(app.explain.value_weighted);
    }
}
