//! Inference off the UI thread. The worker takes jobs from a queue, always skipping to the newest one waiting, runs
//! the model and sends the outcome into the UI's event channel. Every job carries the generation number the app gave
//! it; the app drops outcomes whose generation is not its latest, so a slow stale result never replaces a newer one.

use super::event::{Event, HeadWant};
pub use super::event::{Job, LensOutcome, Outcome};
use crate::analysis::Summary;
use crate::model::encdec::EncoderDecoder;
use crate::model::{self, Model};
use crate::trace::{Progress, TopToken, Trace};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::time::Instant;

/// The explorer keeps every attention matrix of a trace when the run's estimate ([`crate::model::budget`]) stays
/// within this many bytes; above it the heads are computed one at a time on demand, and a run whose streams alone do
/// not fit is refused (`--mem-budget` changes it).
pub const ATTENTION_BUDGET: u64 = crate::model::budget::DEFAULT_BUDGET;

/// How many top tokens the logit lens keeps per layer.
pub const LENS_K: usize = 5;

/// Run one job synchronously (the worker thread's body; also used by benchmarks). Runs report their progress, block
/// by block, into `progress` when given.
pub fn run_job(model: &dyn Model, job: Job, progress: Option<&Sender<Event>>) -> Event {
    run_job_within(model, job, ATTENTION_BUDGET, progress)
}

/// [`run_job`] with a memory budget in bytes.
pub fn run_job_within(
    model: &dyn Model,
    job: Job,
    budget: u64,
    progress: Option<&Sender<Event>>,
) -> Event {
    match job {
        Job::Run {
            generation,
            text,
            text_b,
        } => {
            let start = Instant::now();
            let progress = progress.and_then(|tx| progress_to(tx, generation));
            let result = prepare_within(model, &text, text_b.as_deref(), budget, progress);
            Event::Traced(Box::new(Outcome {
                generation,
                result,
                total: start.elapsed(),
            }))
        }
        Job::Lens {
            generation,
            pos,
            trace,
        } => {
            let rows = lens(&trace, pos, |one| model.logit_lens(one, LENS_K));
            Event::Lens(Box::new(LensOutcome {
                generation,
                pos,
                rows,
            }))
        }
        Job::Explain {
            req, trace, w_o, ..
        } => Event::Explained(Box::new(super::explained::compute(model, trace, w_o, req))),
        Job::Interp(job) => {
            let tx = progress.map(|tx| std::sync::Mutex::new(tx.clone()));
            let tell = |o: super::interp::InterpOutcome| {
                if let Some(Ok(tx)) = tx.as_ref().map(|t| t.lock()) {
                    let _ = tx.send(Event::Interp(Box::new(o)));
                }
            };
            Event::Interp(Box::new(super::interp::compute(model, job, budget, &tell)))
        }
        Job::Head {
            generation,
            layer,
            head,
            want,
            trace,
        } => Event::Head(Box::new(super::event::HeadOutcome {
            generation,
            layer,
            head,
            result: super::streamed::head_part(model, &trace, layer, head, want)
                .map_err(|e| crate::tokenize::escape_text(&e.to_string())),
        })),
    }
}

/// A [`Progress`] that sends (blocks done, all blocks) of run `generation` into the event channel.
fn progress_to(tx: &Sender<Event>, generation: u64) -> Option<Progress> {
    let tx = std::sync::Mutex::new(tx.clone());
    Some(Progress(Arc::new(move |done, total| {
        if let Ok(tx) = tx.lock() {
            let _ = tx.send(Event::Progress {
                generation,
                done,
                total,
            });
        }
    })))
}

/// Tokenize, check the size, run the model and analyse the trace.
pub fn prepare(
    model: &dyn Model,
    text: &str,
    text_b: Option<&str>,
    progress: Option<Progress>,
) -> Result<Summary, String> {
    prepare_within(model, text, text_b, ATTENTION_BUDGET, progress)
}

/// [`prepare`] within a memory budget in bytes: a text too long by its byte length alone is refused before it is
/// tokenized, then the token count is checked against the budget (every attention matrix is kept).
pub fn prepare_within(
    model: &dyn Model,
    text: &str,
    text_b: Option<&str>,
    budget: u64,
    progress: Option<Progress>,
) -> Result<Summary, String> {
    use crate::model::budget;
    let run = || -> crate::Result<Summary> {
        let info = model.info();
        budget::check_text_bytes(info, text.len() + text_b.map_or(0, str::len))?;
        // Tokenized once: the budget is checked on the tokens that run.
        let enc = model.tokenizer().encode(text, text_b)?;
        let top_k = if info.causal { 5 } else { 0 };
        // Every attention kept when it fits; else (a long input) none, and heads are computed on demand.
        let keep = budget::AttentionUse::KeepIfFits;
        let mut opts = budget::plan(info, enc.ids.len(), keep, top_k, budget, "the explorer")?;
        opts.progress = progress;
        let kept = opts.keep_attention;
        let mut trace = model::run_encoded(model, enc, &opts)?;
        trace.text = text.to_string();
        trace.text_b = text_b.map(str::to_string);
        if kept {
            Summary::new(trace).map_err(crate::Error::Input)
        } else {
            Summary::lazy(trace, info.n_heads).map_err(crate::Error::Input)
        }
    };
    // Errors reach the status line: escape what came from files or the input.
    run().map_err(|e| crate::tokenize::escape_text(&e.to_string()))
}

/// The logit lens at `pos`: every layer's output row through `top` (the final norm and LM head's top tokens).
pub fn lens(
    trace: &Trace,
    pos: usize,
    top: impl Fn(&ndarray::Array2<f32>) -> Option<Vec<Vec<TopToken>>>,
) -> Option<Vec<Vec<TopToken>>> {
    let mut rows = Vec::with_capacity(trace.n_layers());
    for l in 0..trace.n_layers() {
        let h = trace.hidden.get(l + 1)?;
        if pos >= h.nrows() {
            return None;
        }
        let one = h.slice(ndarray::s![pos..pos + 1, ..]).to_owned();
        let mut top = top(&one)?;
        rows.push(top.pop().unwrap_or_default());
    }
    Some(rows)
}

/// Run one job of an encoder–decoder synchronously (the encoder–decoder worker's body): runs decode (when the target
/// is empty) and run both stacks; explanations and the logit lens read the attention kind the job names.
pub fn run_encdec_job(
    model: &EncoderDecoder,
    job: Job,
    budget: u64,
    progress: Option<&Sender<Event>>,
) -> Event {
    let (generation, source, target) = match job {
        Job::Run {
            generation,
            text,
            text_b,
        } => (generation, text, text_b),
        Job::Explain {
            req,
            trace,
            w_o,
            side: Some(side),
        } => {
            return Event::Explained(Box::new(super::encdec::explain(
                model, trace, w_o, req, &side,
            )));
        }
        Job::Lens {
            generation,
            pos,
            trace,
        } => {
            let rows = encdec_lens(model, &trace, pos);
            return Event::Lens(Box::new(LensOutcome {
                generation,
                pos,
                rows,
            }));
        }
        // Interventions are not offered on encoder–decoders.
        _ => return Event::Tick,
    };
    let start = Instant::now();
    let result = super::encdec::prepare(
        model,
        &source,
        target.as_deref(),
        budget,
        progress.and_then(|tx| progress_to(tx, generation)),
    );
    Event::EncDecTraced(Box::new(super::encdec::EncDecOutcome {
        generation,
        result,
        total: start.elapsed(),
    }))
}

/// The logit lens on the decoder of an encoder–decoder at target position `pos` (`trace`: the decoder's): each
/// decoder layer's output through the decoder's final norm and LM head (with its scale and bias).
pub fn encdec_lens(
    model: &EncoderDecoder,
    trace: &Trace,
    pos: usize,
) -> Option<Vec<Vec<TopToken>>> {
    let d = model.head.unembed.dim().1;
    lens(trace, pos, |one| {
        (one.ncols() == d).then(|| model.head.top_tokens(one, LENS_K, &model.target_tokenizer))
    })
}

/// The handle the run loop keeps: send jobs here.
pub struct Worker {
    jobs: Sender<Job>,
}

impl Worker {
    /// Start the worker thread; its outcomes go into `events`.
    pub fn spawn(model: Arc<dyn Model>, events: Sender<Event>) -> Worker {
        Self::spawn_with_budget(model, events, ATTENTION_BUDGET)
    }

    /// [`Worker::spawn`] with a memory budget in bytes for each run.
    pub fn spawn_with_budget(model: Arc<dyn Model>, events: Sender<Event>, budget: u64) -> Worker {
        Self::spawn_runner(events, move |job, tx| {
            run_job_within(model.as_ref(), job, budget, Some(tx))
        })
    }

    /// A worker for an encoder–decoder: run jobs decode (when the target is empty) and run both stacks.
    pub fn spawn_encdec(model: Arc<EncoderDecoder>, events: Sender<Event>, budget: u64) -> Worker {
        Self::spawn_runner(events, move |job, tx| {
            run_encdec_job(&model, job, budget, Some(tx))
        })
    }

    fn spawn_runner(
        events: Sender<Event>,
        run: impl Fn(Job, &Sender<Event>) -> Event + Send + 'static,
    ) -> Worker {
        let (jobs, rx) = channel::<Job>();
        std::thread::Builder::new()
            .name("attn-worker".into())
            .spawn(move || worker_loop(rx, events, run))
            .unwrap_or_else(|e| panic!("cannot start the inference thread: {e}"));
        Worker { jobs }
    }

    pub fn submit(&self, job: Job) {
        // The worker only stops when this handle is dropped, so a send cannot fail while we hold it.
        let _ = self.jobs.send(job);
    }
}

fn worker_loop(
    rx: Receiver<Job>,
    events: Sender<Event>,
    run: impl Fn(Job, &Sender<Event>) -> Event,
) {
    while let Ok(first) = rx.recv() {
        // Skip to the newest run job waiting (typing queues many); lens jobs behind it are kept in order.
        let mut queue = vec![first];
        while let Ok(j) = rx.try_recv() {
            queue.push(j);
        }
        // The head on screen before the streaming pass's thumbnails (a stable sort: the rest keeps its order).
        let matrix = |j: &Job| {
            matches!(
                j,
                Job::Head {
                    want: HeadWant::Matrix,
                    ..
                }
            )
        };
        queue.sort_by_key(|j| !matrix(j));
        let last_run = queue.iter().rposition(|j| matches!(j, Job::Run { .. }));
        let last_explain = queue.iter().rposition(|j| matches!(j, Job::Explain { .. }));
        let last_matrix = queue.iter().rposition(matrix);
        for (i, job) in queue.into_iter().enumerate() {
            if matches!(job, Job::Run { .. }) && Some(i) != last_run {
                continue;
            }
            if matches!(job, Job::Explain { .. }) && Some(i) != last_explain {
                continue;
            }
            // Paging through heads queues many: only the last one asked for is computed.
            if matrix(&job) && Some(i) != last_matrix {
                continue;
            }
            if events.send(run(job, &events)).is_err() {
                return;
            }
        }
    }
}
