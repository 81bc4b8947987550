//! The explorer on an encoder–decoder: two input lines (source, target), the attention-kind selector (encoder self
//! · decoder self · cross) and greedy decoding into the target line.
//!
//! A run yields one [`Summary`] per kind. The one on screen lives in [`App::data`] like any other model's, so every
//! view reads it unchanged; the other two wait in [`EncDec::kinds`]. Cross-attention is the one non-square kind:
//! its rows are target tokens ([`App::trace`], the decoder's) and its columns are source tokens
//! ([`App::key_tokens`]).

use super::{App, Effect, LineEdit, View};
use crate::analysis::Summary;
use crate::tokenize::TokenInfo;
use crate::tui::encdec::{AttnKind, EncDecDump, EncDecOutcome};
use crate::tui::explained::EncDecSide;
use crate::tui::keymap::Action;
use ndarray::Array2;
use std::sync::Arc;

/// What the explorer keeps of an encoder–decoder.
#[derive(Debug, Default)]
pub struct EncDec {
    /// The attention kind on screen.
    pub kind: AttnKind,
    /// The summaries of the last run in [`AttnKind::ALL`] order; the one on screen is in `App::data` (`None` here).
    pub kinds: [Option<Summary>; 3],
    /// The last run's logits, for `D`.
    pub logits: Option<Arc<Array2<f32>>>,
    /// The last run's encoder memory (what cross-attention read), for the explanation views.
    pub memory: Option<Arc<Array2<f32>>>,
    /// The source text of the last run.
    pub source: String,
    /// The target text the last run's decoder input was made from (`None`: the greedy output).
    pub target: Option<String>,
    /// The target line holds greedy output, not typed text: a new source decodes again.
    pub target_auto: bool,
}

impl App {
    /// An explorer for an encoder–decoder: line A is the source, line B the target (empty: decode greedily).
    pub fn enable_encdec(&mut self) {
        self.encdec = Some(EncDec {
            target_auto: true,
            ..Default::default()
        });
    }

    /// The attention kind on screen, for encoder–decoders.
    pub fn kind(&self) -> Option<AttnKind> {
        self.encdec.as_ref().map(|e| e.kind)
    }

    /// Whether the grid shows cross-attention (target rows, source columns).
    pub fn is_cross(&self) -> bool {
        self.kind() == Some(AttnKind::Cross)
    }

    /// The tokens along the grid's columns: the source tokens for cross-attention, else the trace's own.
    pub fn key_tokens(&self) -> &[TokenInfo] {
        if self.is_cross()
            && let Some(Some(enc)) = self.encdec.as_ref().map(|e| &e.kinds[0])
        {
            return &enc.trace.tokens;
        }
        self.trace().map(|t| t.tokens.as_slice()).unwrap_or(&[])
    }

    /// Which columns `x` hides (see [`App::hidden_mask`] for the rows).
    pub fn key_hidden_mask(&self) -> Vec<bool> {
        if !self.is_cross() {
            return self.hidden_mask();
        }
        let toks = self.key_tokens();
        let specials = toks.iter().any(|t| t.special);
        toks.iter()
            .enumerate()
            .map(|(i, t)| if specials { t.special } else { i == 0 })
            .collect()
    }

    /// The label of column token `j` (`#position` added where two are alike).
    pub fn key_label(&self, j: usize) -> String {
        if !self.is_cross() {
            return self.token_label(j);
        }
        super::position_tagged(self.key_tokens(), j)
    }

    /// The labels of the visible columns.
    pub fn visible_key_labels(&self) -> Vec<String> {
        if !self.is_cross() {
            return self.visible_labels();
        }
        super::tagged_subset(self.key_tokens(), &self.grid.cols)
    }

    /// Show the next attention kind (wraps).
    pub(super) fn cycle_kind(&mut self) {
        let Some(next) = self.kind().map(AttnKind::next) else {
            self.say(format!(
                "{} has one kind of attention: the kinds (encoder self · decoder self · cross) are for encoder–decoders",
                self.info.name
            ));
            return;
        };
        self.set_kind(next);
        self.say(match next {
            AttnKind::EncoderSelf => "encoder self-attention: source × source (bidirectional)",
            AttnKind::DecoderSelf => {
                "decoder self-attention: target × target (masked: no looking ahead)"
            }
            AttnKind::Cross => "cross-attention: rows = target tokens, columns = source tokens",
        });
    }

    /// Put the summary of `kind` on screen.
    pub fn set_kind(&mut self, kind: AttnKind) {
        let Some(e) = &mut self.encdec else { return };
        if e.kind == kind {
            return;
        }
        e.kinds[e.kind.index()] = self.data.take();
        self.data = e.kinds[kind.index()].take();
        e.kind = kind;
        self.lens = None;
        self.explain.reset();
        self.refresh();
    }

    /// Empty the target line and run: the decoder input becomes the greedy output, which fills the line.
    pub(super) fn decode_now(&mut self) -> Vec<Effect> {
        let Some(e) = &mut self.encdec else {
            self.say(format!(
                "{} is not an encoder–decoder: greedy decoding of a target is for textbook-dates, BART, T5, Marian",
                self.info.name
            ));
            return vec![];
        };
        e.target_auto = true;
        self.input.lines[1] = LineEdit::default();
        self.input.fresh = false;
        self.say("decoding greedily…");
        self.run_now().into_iter().collect()
    }

    /// Before a run: greedy output in the target line belongs to the old source and is decoded again.
    pub(super) fn drop_stale_target(&mut self) {
        if let Some(e) = &self.encdec
            && e.target_auto
            && e.source != self.input.lines[0].text
        {
            self.input.lines[1] = LineEdit::default();
        }
    }

    /// Typing in the target line makes it the user's own.
    pub(super) fn target_typed(&mut self) {
        if self.input.field == 1
            && let Some(e) = &mut self.encdec
        {
            e.target_auto = false;
        }
    }

    /// A finished encoder–decoder run.
    pub(super) fn encdec_traced(&mut self, o: EncDecOutcome) -> Vec<Effect> {
        if o.generation != self.runs.generation || self.encdec.is_none() {
            return vec![];
        }
        let run = match o.result {
            Ok(run) => run,
            Err(err) => {
                self.runs.busy_since = None;
                self.runs.progress = None;
                self.fail(format!("error: {err}"));
                return vec![];
            }
        };
        let decoded = run.decoded.clone();
        let [enc, dec, cross] = run.kinds;
        let mut kinds = [Some(enc), Some(dec), Some(cross)];
        let source = self.input.lines[0].text.clone();
        let Some(e) = &mut self.encdec else {
            return vec![];
        };
        let active = kinds[e.kind.index()].take();
        e.kinds = kinds;
        e.logits = Some(run.logits);
        e.memory = Some(run.memory);
        e.source = source;
        e.target = run.target;
        if let Some(text) = &decoded {
            e.target_auto = true;
            self.input.lines[1] = LineEdit::new(text);
        }
        let fx = match active {
            Some(s) => self.accept_run(s, o.generation, o.total),
            None => vec![],
        };
        if let Some(text) = decoded {
            self.say(format!(
                "greedy output: {}",
                crate::tokenize::escape_text(&text)
            ));
        }
        fx
    }

    /// Why an action does not apply to an encoder–decoder, if it does not.
    pub(super) fn encdec_refuses(&self, a: Action) -> Option<&'static str> {
        match (a, self.kind()?) {
            (Action::Lens, AttnKind::EncoderSelf) => Some(
                "the logit lens reads the decoder's stream through its LM head: t to decoder self or cross (rows = target tokens)",
            ),
            _ => None,
        }
    }

    /// Encoder–decoders: which attention the explanation views are for, with the encoder memory.
    pub fn encdec_side(&self) -> Option<EncDecSide> {
        let e = self.encdec.as_ref()?;
        Some(EncDecSide {
            part: crate::tui::encdec::part(e.kind),
            memory: e.memory.clone(),
        })
    }

    /// What `D` writes for an encoder–decoder: the `attn dump` encoder–decoder contract.
    pub(super) fn encdec_dump(&mut self) -> Option<Effect> {
        let e = self.encdec.as_ref()?;
        let kind = e.kind;
        let pick = |k: AttnKind| -> Option<&Summary> {
            if k == kind {
                self.data.as_ref()
            } else {
                e.kinds[k.index()].as_ref()
            }
        };
        let (Some(enc), Some(dec), Some(logits)) = (
            pick(AttnKind::EncoderSelf),
            pick(AttnKind::DecoderSelf),
            e.logits.as_ref(),
        ) else {
            self.fail("nothing to dump yet");
            return None;
        };
        Some(Effect::DumpEncDec(Box::new(EncDecDump {
            trace: crate::model::encdec::EncDecTrace {
                source: enc.trace.as_ref().clone(),
                target: dec.trace.as_ref().clone(),
                logits: logits.as_ref().clone(),
            },
            source: e.source.clone(),
            target: e.target.clone(),
        })))
    }

    /// The hint under the grid for the view on screen, with the kind keys on an encoder–decoder.
    pub fn encdec_view_note(&self) -> Option<String> {
        let kind = self.kind()?;
        (self.view == View::Grid).then(|| {
            format!(
                "{} · t: next kind · T: decode",
                match kind {
                    AttnKind::Cross => "rows: target · columns: source",
                    AttnKind::EncoderSelf => "source × source",
                    AttnKind::DecoderSelf => "target × target",
                }
            )
        })
    }
}
