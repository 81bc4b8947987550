//! Encoder–decoder runs for the explorer: the source line is encoded, the target line (or, when it is empty, the
//! greedy output) is the decoder input, and one forward pass yields the three kinds of attention the explorer pages
//! through — encoder self-attention, decoder (masked) self-attention and cross-attention — each as a [`Summary`].

use super::explained::{EncDecSide, ExplainRequest};
use crate::analysis::{Summary, cross};
use crate::explain::subject::{Part, Subject};
use crate::model::encdec::{EncDecTrace, EncoderDecoder};
use crate::trace::{ForwardOptions, Progress, Trace};
use ndarray::Array2;
use std::sync::Arc;
use std::time::Duration;

/// The date the explorer starts with on `textbook-dates`.
pub const DEFAULT_SOURCE: &str = "22 November 2026";

/// Greedy decoding in the explorer stops after this many tokens (and at the model's length limit).
pub const MAX_NEW: usize = 64;

/// Which attention of an encoder–decoder is on screen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AttnKind {
    /// The encoder reading the source (bidirectional): source × source.
    #[default]
    EncoderSelf,
    /// The decoder reading its own prefix (masked): target × target.
    DecoderSelf,
    /// The decoder looking at the encoder output: target rows × source columns.
    Cross,
}

impl AttnKind {
    pub const ALL: [AttnKind; 3] = [
        AttnKind::EncoderSelf,
        AttnKind::DecoderSelf,
        AttnKind::Cross,
    ];

    pub fn name(self) -> &'static str {
        match self {
            AttnKind::EncoderSelf => "encoder self",
            AttnKind::DecoderSelf => "decoder self",
            AttnKind::Cross => "cross",
        }
    }

    /// The next kind (wraps).
    pub fn next(self) -> AttnKind {
        Self::ALL[(self.index() + 1) % Self::ALL.len()]
    }

    pub fn index(self) -> usize {
        match self {
            AttnKind::EncoderSelf => 0,
            AttnKind::DecoderSelf => 1,
            AttnKind::Cross => 2,
        }
    }

    /// The file stem's prefix of a `d` dump of this kind.
    pub fn stem(self) -> &'static str {
        match self {
            AttnKind::EncoderSelf => "encoder",
            AttnKind::DecoderSelf => "decoder",
            AttnKind::Cross => "cross",
        }
    }
}

/// The explanation views on one attention of an encoder–decoder (the worker's side, see [`super::explained`]).
pub fn explain(
    model: &EncoderDecoder,
    trace: Arc<Trace>,
    w_o: Option<Arc<Array2<f32>>>,
    req: ExplainRequest,
    side: &EncDecSide,
) -> super::explained::Explained {
    let subject = Subject::EncDec {
        model,
        part: side.part,
        memory: side.memory.as_deref(),
    };
    super::explained::compute(subject, trace, w_o, req)
}

/// The attention of `kind` as an explanation subject's part.
pub fn part(kind: AttnKind) -> Part {
    match kind {
        AttnKind::EncoderSelf => Part::Encoder,
        AttnKind::DecoderSelf => Part::Decoder,
        AttnKind::Cross => Part::Cross,
    }
}

/// One encoder–decoder run, analysed.
#[derive(Debug)]
pub struct EncDecRun {
    /// In [`AttnKind::ALL`] order: the encoder trace, the decoder trace, the decoder trace with its cross-attention.
    pub kinds: [Summary; 3],
    /// `[n_target, target_vocab]`, for the `D` dump.
    pub logits: Arc<Array2<f32>>,
    /// What cross-attention read (the encoder's last stream through its final norm), for the explanation views.
    pub memory: Arc<Array2<f32>>,
    /// The target text the decoder input was made from; `None` when it is the greedy output.
    pub target: Option<String>,
    /// The greedy output as text (special tokens skipped), when the target line was empty.
    pub decoded: Option<String>,
}

/// What `D` writes on an encoder–decoder: the run in the `attn dump` contract.
pub struct EncDecDump {
    pub trace: EncDecTrace,
    pub source: String,
    /// The target text the decoder input was made from; `None`: the greedy output.
    pub target: Option<String>,
}

impl std::fmt::Debug for EncDecDump {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EncDecDump")
            .field("source", &self.source)
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

/// The result of an encoder–decoder run job.
#[derive(Debug)]
pub struct EncDecOutcome {
    pub generation: u64,
    pub result: Result<EncDecRun, String>,
    /// Greedy decoding + forward + analysis, wall time.
    pub total: Duration,
}

/// Decode greedily when `target` is empty, run the whole model keeping every attention, and analyse the three
/// kinds. `progress` hears (blocks done, blocks in all) over both stacks.
pub fn prepare(
    model: &EncoderDecoder,
    source: &str,
    target: Option<&str>,
    budget: u64,
    progress: Option<Progress>,
) -> Result<EncDecRun, String> {
    let run = || -> crate::Result<EncDecRun> {
        let src = model.encode_source(source)?;
        let target = target.filter(|t| !t.trim().is_empty());
        let (tgt, decoded) = match target {
            Some(t) => (model.decoder_input(t)?, None),
            None => {
                let ids = model.greedy(&src, MAX_NEW)?;
                let text = model
                    .target_tokenizer
                    .inner()
                    .decode(&ids, true)
                    .map_err(|e| crate::Error::Tokenizer(e.to_string()))?;
                let mut input = vec![model.decoder_start];
                input.extend(ids);
                input.truncate(model.info.max_len);
                (model.target_ids(&input), Some(text))
            }
        };
        let n_enc = model.encoder.blocks.len();
        let all = n_enc + model.decoder.blocks.len();
        crate::model::budget::check_encdec(
            &model.info,
            (n_enc, model.decoder.blocks.len()),
            (src.ids.len(), tgt.ids.len()),
            budget,
            "the explorer",
        )?;
        // One progress over both stacks: the decoder's blocks count after the encoder's.
        let shifted = |offset: usize| {
            progress.as_ref().map(|p| {
                let f = p.0.clone();
                Progress(Arc::new(move |done, _| f(offset + done, all)))
            })
        };
        let enc_opts = ForwardOptions {
            keep_attention: true,
            progress: shifted(0),
            ..Default::default()
        };
        let source_trace = model.encode(&src, &enc_opts)?;
        // What the decoder reads: the encoder's last stream through its final norm where it has one (T5).
        let memory = model.memory(&source_trace)?;
        let dec_opts = ForwardOptions {
            keep_attention: true,
            progress: shifted(n_enc),
            ..Default::default()
        };
        let (target_trace, logits) = model.decode(&tgt, &memory, &dec_opts)?;
        let n_source = source_trace.n_tokens();
        let cross = cross::cross_summary(&target_trace, n_source).map_err(crate::Error::Input)?;
        let enc = Summary::new(source_trace).map_err(crate::Error::Input)?;
        let dec = Summary::new(target_trace).map_err(crate::Error::Input)?;
        Ok(EncDecRun {
            kinds: [enc, dec, cross],
            logits: Arc::new(logits),
            memory: Arc::new(memory),
            target: target.map(str::to_string),
            decoded,
        })
    };
    // Errors reach the status line: escape what came from files or the input.
    run().map_err(|e| crate::tokenize::escape_text(&e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_over_the_memory_budget_is_refused_with_the_figures() {
        let m = crate::model::arch::textbook_dates::load().expect("built-in model");
        let e = prepare(&m, DEFAULT_SOURCE, Some("2026년 11월 22일"), 1 << 10, None).unwrap_err();
        assert!(e.contains("over the memory budget of 1 MiB"), "{e}");
    }

    #[test]
    fn t5_cross_attention_reads_the_normed_encoder_output_as_the_model_does() {
        let loaded = crate::model::load_any(
            "fixtures/tiny-t5",
            &crate::model::TextbookConfig::default(),
            None,
        )
        .expect("tiny T5 fixture");
        let crate::model::Loaded::EncoderDecoder(m) = loaded else {
            panic!("T5 is an encoder–decoder")
        };
        let run = prepare(&m, "the cat sat", Some("a cat"), u64::MAX, None).unwrap();
        let src = m.encode_source("the cat sat").unwrap();
        let tgt = m.decoder_input("a cat").unwrap();
        let opts = ForwardOptions {
            keep_attention: true,
            ..Default::default()
        };
        let want = m.forward(&src, &tgt, &opts).unwrap();
        let got = run.kinds[2].att(0).unwrap();
        let expected = want.target.layers[0].cross_attention.as_ref().unwrap();
        let diff = (got - expected).mapv(f32::abs).fold(0f32, |a, &b| a.max(b));
        assert!(diff < 1e-6, "cross-attention differs by {diff}");
    }

    #[test]
    fn textbook_dates_decodes_an_empty_target_and_gives_three_kinds() {
        let m = crate::model::arch::textbook_dates::load().expect("built-in model");
        let run = prepare(&m, DEFAULT_SOURCE, None, u64::MAX, None).expect("run");
        assert_eq!(run.decoded.as_deref(), Some("2026년 11월 22일"));
        let [enc, dec, cross] = &run.kinds;
        let (ns, nt) = (enc.trace.n_tokens(), dec.trace.n_tokens());
        assert_eq!(cross.trace.n_tokens(), nt);
        let a = cross.att(0).expect("cross-attention kept");
        assert_eq!((a.dim().1, a.dim().2), (nt, ns));
        assert_ne!(ns, nt, "the example is not square");
        // A typed target is the decoder input (shifted right), with no greedy decoding.
        let typed =
            prepare(&m, DEFAULT_SOURCE, Some("2026년 11월 22일"), u64::MAX, None).expect("run");
        assert_eq!(typed.decoded, None);
        assert!(typed.kinds[1].trace.n_tokens() >= nt - 1);
    }
}
