//! The update function: events in, state changed, effects out. Keys go through the one keymap
//! ([`crate::tui::keymap`]); this file only says what each [`Action`] does.

use super::layout;
use super::{App, DEBOUNCE, Effect, Focus, JUMP_TIMEOUT, Jump, Lens, LineEdit, View};
use crate::tui::event::{Event, Job};
use crate::tui::keymap::{self, Action, Ctx};
use crossterm::event::{
    KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseButton, MouseEvent, MouseEventKind,
};
use std::time::Instant;

impl App {
    fn edited(&mut self) {
        self.target_typed();
        self.runs.run_at = Some(self.now + DEBOUNCE);
    }

    /// Handle one event.
    pub fn update(&mut self, ev: Event, now: Instant) -> Vec<Effect> {
        self.now = now;
        let mut fx = vec![];
        match ev {
            Event::Key(k) => {
                if k.kind != KeyEventKind::Release {
                    fx.extend(self.key(k));
                }
            }
            Event::Paste(s) => {
                self.set_focus(Focus::Input);
                self.replace_sample();
                self.input.lines[self.input.field].insert(&s);
                self.edited();
            }
            Event::Mouse(m) => fx.extend(self.mouse(m)),
            Event::Resize(w, h) => {
                self.size = (w, h);
                self.ensure_visible();
            }
            Event::Progress {
                generation,
                done,
                total,
            } => {
                if generation == self.runs.generation && self.busy() {
                    self.runs.progress = Some((done, total));
                }
            }
            Event::Traced(o) => {
                if o.generation == self.runs.generation {
                    match o.result {
                        Ok(p) => {
                            self.interp_text_run();
                            fx.extend(self.accept_run(p, o.generation, o.total));
                        }
                        Err(e) => {
                            self.runs.busy_since = None;
                            self.runs.progress = None;
                            self.fail(format!("error: {e}"))
                        }
                    }
                }
            }
            Event::EncDecTraced(o) => fx.extend(self.encdec_traced(*o)),
            Event::Head(o) => self.head_outcome(*o),
            Event::Interp(o) => fx.extend(self.interp_outcome(*o)),
            Event::Lens(o) => {
                if let Some(l) = &mut self.lens
                    && l.generation == o.generation
                    && l.pos == o.pos
                {
                    l.rows = Some(o.rows);
                }
            }
            Event::Explained(e) => {
                if self.explain.receive(*e) {
                    self.refresh();
                }
            }
            Event::Tick => {}
            Event::Quit => self.quit = true,
        }
        if self.runs.run_at.is_some_and(|t| t <= now) {
            fx.extend(self.run_now());
        }
        fx.extend(self.want_explain());
        fx.extend(self.want_heads());
        if self
            .jump
            .as_ref()
            .is_some_and(|j| now >= j.since + JUMP_TIMEOUT)
        {
            self.jump = None;
        }
        fx
    }

    fn set_focus(&mut self, f: Focus) {
        if f == Focus::Input && self.jump.take().is_some() {
            self.say("go to cancelled");
        }
        self.focus = f;
    }

    /// The sample sentence is a placeholder: the first edit replaces it.
    fn replace_sample(&mut self) {
        if self.input.fresh && self.input.field == 0 {
            self.input.lines[0] = LineEdit::default();
        }
        self.input.fresh = false;
    }

    fn key(&mut self, k: KeyEvent) -> Vec<Effect> {
        let ctrl = k.modifiers.contains(KeyModifiers::CONTROL);
        if ctrl && matches!(k.code, KeyCode::Char('c') | KeyCode::Char('q')) {
            self.quit = true;
            return vec![];
        }
        if self.help.open {
            match k.code {
                KeyCode::Down | KeyCode::Char('j') => self.help.scroll += 1,
                KeyCode::Up | KeyCode::Char('k') => {
                    self.help.scroll = self.help.scroll.saturating_sub(1)
                }
                KeyCode::PageDown => self.help.scroll += 10,
                KeyCode::PageUp => self.help.scroll = self.help.scroll.saturating_sub(10),
                _ => self.help.open = false,
            }
            self.help.scroll = self
                .help
                .scroll
                .min(2 * (keymap::rows().count() + keymap::ORDER.len()) + 8);
            return vec![];
        }
        if k.code == KeyCode::F(1) {
            self.help = super::Help {
                open: true,
                scroll: 0,
            };
            return vec![];
        }
        match self.focus {
            Focus::Input => self.input_key(k),
            Focus::Explorer => self.explorer_key(k),
        }
    }

    fn input_key(&mut self, k: KeyEvent) -> Vec<Effect> {
        let alt = k.modifiers.contains(KeyModifiers::ALT);
        let f = self.input.field;
        let Some(a) = keymap::action(Ctx::Input, &k) else {
            if let KeyCode::Char(c) = k.code
                && !alt
                && !k.modifiers.contains(KeyModifiers::CONTROL)
            {
                self.replace_sample();
                let mut b = [0u8; 4];
                self.input.lines[f].insert(c.encode_utf8(&mut b));
                self.edited();
            }
            return vec![];
        };
        let edits = matches!(
            a,
            Action::Backspace
                | Action::Delete
                | Action::KillStart
                | Action::KillEnd
                | Action::DeleteWord
        );
        if edits {
            self.replace_sample();
        } else if !matches!(a, Action::ToExplorer | Action::Run) {
            self.input.fresh = false;
        }
        let e = &mut self.input.lines[f];
        match a {
            Action::Run => {
                self.focus = Focus::Explorer;
                return self.run_now().into_iter().collect();
            }
            Action::Decode => return self.decode_now(),
            Action::ToExplorer => self.focus = Focus::Explorer,
            Action::FieldB => {
                if self.pairs() {
                    self.input.field = 1;
                } else {
                    self.say(format!(
                        "{} reads one sentence: sentence B is for models with sentence pairs (BERT)",
                        self.info.name
                    ));
                }
            }
            Action::FieldA => self.input.field = 0,
            Action::TextLeft => e.left(),
            Action::TextRight => e.right(),
            Action::TextHome => e.home(),
            Action::TextEnd => e.end(),
            Action::Backspace => e.backspace(),
            Action::Delete => e.delete(),
            Action::KillStart => e.kill_to_start(),
            Action::KillEnd => e.kill_to_end(),
            Action::DeleteWord => e.delete_word(),
            _ => {}
        }
        if edits {
            self.edited();
        }
        vec![]
    }

    fn view_ctx(&self) -> Ctx {
        match self.view {
            View::Grid => Ctx::Grid,
            View::Overview => Ctx::Overview,
            View::Positional => Ctx::Positions,
            View::Norms => Ctx::Norms,
            View::Lens => Ctx::Lens,
            View::Weight | View::Writes | View::Embedding | View::Walk => Ctx::Explain,
            View::Sweep | View::Attribution => Ctx::Overview,
        }
    }

    fn explorer_key(&mut self, k: KeyEvent) -> Vec<Effect> {
        let mut fx = vec![];
        let action = keymap::action(self.view_ctx(), &k);
        if action == Some(Action::Digit)
            && let KeyCode::Char(c) = k.code
        {
            self.digit(c);
            return fx;
        }
        if let Some(j) = self.jump.take() {
            // A pending jump ends with any other key, visibly; Esc and Enter do nothing else.
            if k.code != KeyCode::Enter || j.digits.is_empty() {
                self.say(format!(
                    "go to {} cancelled",
                    if j.layer { "layer" } else { "head" }
                ));
            } else {
                self.status = None;
            }
            if matches!(k.code, KeyCode::Esc | KeyCode::Enter) {
                return fx;
            }
        }
        let Some(a) = action else { return fx };
        if let Some(why) = self
            .encdec_refuses(a)
            .map(str::to_string)
            .or_else(|| self.long_refuses(a))
        {
            self.say(why);
            return fx;
        }
        if a == Action::Back && self.interp.cancel_sweep() {
            self.say("sweep cancelled");
            return fx;
        }
        if let Some(more) = self.interp_key(a) {
            return more;
        }
        let nl = self.n_layers().max(1);
        let nh = self.n_heads().max(1);
        match a {
            Action::GoLayer => {
                self.jump = Some(Jump {
                    layer: true,
                    digits: String::new(),
                    since: self.now,
                });
            }
            Action::Quit => self.quit = true,
            Action::Help => {
                self.help = super::Help {
                    open: true,
                    scroll: 0,
                }
            }
            Action::EditInput => self.set_focus(Focus::Input),
            Action::Back => {
                if self.view == View::Grid {
                    self.set_focus(Focus::Input);
                } else {
                    self.view = View::Grid;
                    self.ensure_visible();
                }
            }
            Action::Overview => self.toggle_view(View::Overview),
            Action::Positions => self.toggle_view(View::Positional),
            Action::Norms => self.toggle_view(View::Norms),
            Action::Lens => {
                if self.info.causal
                    || self.encdec.is_some()
                    || self.trace().is_some_and(|t| t.next_tokens.is_some())
                {
                    self.toggle_view(View::Lens);
                    if self.view == View::Lens {
                        fx.extend(self.want_lens());
                    }
                } else {
                    self.say("the logit lens needs a decoder with an LM head (GPT-2, Llama); this model is an encoder");
                }
            }
            Action::Weight => self.toggle_view(View::Weight),
            Action::Writes => self.toggle_view(View::Writes),
            Action::Embedding => self.toggle_view(View::Embedding),
            Action::Walk => self.toggle_view(View::Walk),
            Action::ValueWeighted => self.toggle_value_weighted(),
            Action::ScrollDown
            | Action::ScrollUp
            | Action::DimsLeft
            | Action::DimsRight
            | Action::ThroughWo => self.explain_key(a),
            Action::Scale => {
                self.grid.scale = self.grid.scale.next();
                self.say(format!("colour scale: {}", self.grid.scale.name()));
            }
            Action::HideSpecial => {
                self.grid.hide_special = !self.grid.hide_special;
                self.refresh();
                let what = if self.has_specials() {
                    "special tokens"
                } else {
                    "the first token (no special tokens here; the first is often a sink)"
                };
                self.say(if self.grid.hide_special {
                    format!("{what} hidden; rows renormalised, statistics of what is shown")
                } else {
                    format!("{what} shown")
                });
            }
            Action::Mean => {
                self.sel.mean = !self.sel.mean;
                self.refresh();
            }
            Action::Zoom => {
                self.grid.zoom = !self.grid.zoom;
                self.ensure_visible();
            }
            Action::Numbers => self.grid.numbers = !self.grid.numbers,
            Action::Colors => {
                self.color = self.color.next();
                self.say(format!("colours: {}", self.color.name()));
            }
            Action::DumpView => fx.extend(self.dump_view()),
            Action::Kind => self.cycle_kind(),
            Action::Decode => fx.extend(self.decode_now()),
            Action::DumpAll if self.encdec.is_some() => fx.extend(self.encdec_dump()),
            Action::DumpAll => match &self.data {
                Some(d) => fx.push(Effect::DumpAll {
                    trace: d.trace.clone(),
                }),
                None => self.fail("nothing to dump yet"),
            },
            Action::NextHead => self.set_head((self.sel.head + 1) % nh),
            Action::PrevHead => self.set_head((self.sel.head + nh - 1) % nh),
            Action::NextLayer => self.set_layer((self.sel.layer + 1) % nl),
            Action::PrevLayer => self.set_layer((self.sel.layer + nl - 1) % nl),
            Action::Open => {
                self.view = View::Grid;
                self.ensure_visible();
            }
            Action::NormStat => {
                self.panes.norm_stat = self.panes.norm_stat.next();
                self.say(format!("all tokens: {}", self.panes.norm_stat.name()));
            }
            Action::LogBars => {
                self.panes.log_bars = !self.panes.log_bars;
                self.say(if self.panes.log_bars {
                    "bars: log scale"
                } else {
                    "bars: linear"
                });
            }
            a => self.move_key(a, &mut fx),
        }
        fx
    }

    /// Movement: the meaning depends on the view.
    fn move_key(&mut self, a: Action, fx: &mut Vec<Effect>) {
        let nl = self.n_layers().max(1);
        let nh = self.n_heads().max(1);
        let n = self.grid.visible.len().max(self.grid.cols.len()) as isize;
        if matches!(self.view, View::Overview | View::Sweep | View::Attribution) {
            match a {
                Action::Right => self.set_head((self.sel.head + 1) % nh),
                Action::Left => self.set_head((self.sel.head + nh - 1) % nh),
                Action::Down => self.set_layer((self.sel.layer + 1) % nl),
                Action::Up => self.set_layer((self.sel.layer + nl - 1) % nl),
                _ => {}
            }
            return;
        }
        self.positions_head_key(a);
        let (page_r, page_c) = layout::grid_capacity(self);
        let dims = self
            .trace()
            .map(|t| t.positional.matrix().ncols())
            .unwrap_or(0);
        let page_d = layout::positional_page(self).max(1);
        match a {
            Action::Left => self.move_cur(0, -1),
            Action::Right => self.move_cur(0, 1),
            Action::Up => self.move_cur(-1, 0),
            Action::Down => self.move_cur(1, 0),
            Action::PageDown => self.move_cur(page_r.max(1) as isize, 0),
            Action::PageUp => self.move_cur(-(page_r.max(1) as isize), 0),
            Action::PageRight => self.move_cur(0, page_c.max(1) as isize),
            Action::PageLeft => self.move_cur(0, -(page_c.max(1) as isize)),
            Action::First => self.move_cur(-n, -n),
            Action::Last => self.move_cur(n, n),
            Action::PanRight => self.panes.pos_scroll += 8,
            Action::PanLeft => self.panes.pos_scroll = self.panes.pos_scroll.saturating_sub(8),
            Action::FastPanRight => self.panes.pos_scroll += page_d,
            Action::FastPanLeft => {
                self.panes.pos_scroll = self.panes.pos_scroll.saturating_sub(page_d)
            }
            _ => {}
        }
        self.panes.pos_scroll = self.panes.pos_scroll.min(dims.saturating_sub(1));
        if self.view == View::Lens {
            fx.extend(self.want_lens());
        }
        fx.extend(self.interp_cursor_moved());
    }

    fn toggle_view(&mut self, v: View) {
        self.view = if self.view == v { View::Grid } else { v };
        self.ensure_visible();
    }

    fn digit(&mut self, c: char) {
        let layer = self.jump.as_ref().is_some_and(|j| j.layer);
        let mut digits = self
            .jump
            .as_ref()
            .map(|j| j.digits.clone())
            .unwrap_or_default();
        digits.push(c);
        let limit = if layer {
            self.n_layers()
        } else {
            self.n_heads()
        };
        let mut v: usize = digits.parse().unwrap_or(usize::MAX);
        if v >= limit {
            // Start over with this digit (e.g. "1" "5" with 12 heads → 15 is out of range → head 5).
            digits = c.to_string();
            v = digits.parse().unwrap_or(0);
        }
        if v >= limit {
            self.fail(format!(
                "{} {v} does not exist: numbers run 0–{}",
                if layer { "layer" } else { "head" },
                limit.saturating_sub(1)
            ));
            self.jump = None;
            return;
        }
        if layer {
            self.set_layer(v);
        } else {
            self.set_head(v);
        }
        // Keep waiting for another digit only if one could still make a valid number.
        self.jump = (v * 10 < limit).then_some(Jump {
            layer,
            digits,
            since: self.now,
        });
        self.status = None;
    }

    fn set_layer(&mut self, l: usize) {
        self.sel.layer = l;
        self.refresh();
    }
    pub(super) fn set_head(&mut self, h: usize) {
        self.sel.head = h;
        self.sel.mean = false;
        self.refresh();
    }

    /// Move the cell cursor by (rows, cols), clamped.
    pub fn move_cur(&mut self, dr: isize, dc: isize) {
        let (n, nk) = (self.grid.visible.len(), self.grid.cols.len());
        if n == 0 || nk == 0 {
            return;
        }
        let mv = |v: usize, d: isize, n: usize| -> usize {
            (v as isize + d).clamp(0, n as isize - 1) as usize
        };
        let old_row = self.grid.cur.0;
        self.grid.cur = (mv(self.grid.cur.0, dr, n), mv(self.grid.cur.1, dc, nk));
        if self.grid.cur.0 != old_row
            && let (Some(d), Some(t)) = (&self.data, self.query_token())
        {
            self.grid.norms_tok = crate::analysis::layer_norms(&d.trace, Some(t));
        }
        self.ensure_visible();
    }

    pub(super) fn want_lens(&mut self) -> Option<Effect> {
        let d = self.data.as_ref()?;
        let pos = self.query_token()?;
        if self
            .lens
            .as_ref()
            .is_some_and(|l| l.generation == self.runs.shown && l.pos == pos)
        {
            return None;
        }
        self.lens = Some(Lens {
            generation: self.runs.shown,
            pos,
            rows: None,
        });
        Some(Effect::Job(Job::Lens {
            generation: self.runs.shown,
            pos,
            trace: d.trace.clone(),
        }))
    }

    fn mouse(&mut self, m: MouseEvent) -> Vec<Effect> {
        if self.help.open {
            if matches!(m.kind, MouseEventKind::Down(_)) {
                self.help.open = false;
            }
            return vec![];
        }
        let mut fx = vec![];
        match m.kind {
            MouseEventKind::Down(MouseButton::Left) | MouseEventKind::Drag(MouseButton::Left) => {
                if let Some(f) = layout::input_field_at(self, m.column, m.row) {
                    self.set_focus(Focus::Input);
                    self.input.field = f;
                    return fx;
                }
                match self.view {
                    View::Grid => {
                        if let Some((r, c)) = layout::grid_cell_at(self, m.column, m.row) {
                            self.focus = Focus::Explorer;
                            let (dr, dc) = (
                                r as isize - self.grid.cur.0 as isize,
                                c as isize - self.grid.cur.1 as isize,
                            );
                            self.move_cur(dr, dc);
                        }
                    }
                    View::Overview => {
                        if let Some((l, h)) = layout::overview_cell_at(self, m.column, m.row) {
                            self.focus = Focus::Explorer;
                            let again = (self.sel.layer, self.sel.head) == (l, h) && !self.sel.mean;
                            if again && matches!(m.kind, MouseEventKind::Down(_)) {
                                // A second click on the selected thumbnail opens it.
                                self.view = View::Grid;
                                self.ensure_visible();
                                return fx;
                            }
                            self.sel.layer = l;
                            self.set_head(h);
                        }
                    }
                    _ => {}
                }
            }
            MouseEventKind::ScrollDown => self.move_key(Action::Down, &mut fx),
            MouseEventKind::ScrollUp => self.move_key(Action::Up, &mut fx),
            _ => {}
        }
        fx
    }
}
