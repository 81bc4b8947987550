//! Inference off the UI thread. The worker takes jobs from a queue, always skipping to the newest one waiting, runs
//! the model and sends the outcome into the UI's event channel. Every job carries the generation number the app gave
//! it; the app drops outcomes whose generation is not its latest, so a slow stale result never replaces a newer one.

use super::event::Event;
pub use super::event::{Job, LensOutcome, Outcome};
use crate::analysis::Summary;
use crate::model::{self, Model};
use crate::trace::{ForwardOptions, Progress, TopToken, Trace};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::time::Instant;

/// The explorer keeps every attention matrix of a trace; beyond this many bytes it asks for a shorter text.
pub const ATTENTION_BUDGET: usize = 1 << 30;

/// How many top tokens the logit lens keeps per layer.
pub const LENS_K: usize = 5;

/// Run one job synchronously (the worker thread's body; also used by benchmarks). Runs report their progress, block
/// by block, into `progress` when given.
pub fn run_job(model: &dyn Model, job: Job, progress: Option<&Sender<Event>>) -> Event {
    match job {
        Job::Run {
            generation,
            text,
            text_b,
        } => {
            let start = Instant::now();
            let progress = progress.map(|tx| {
                let tx = std::sync::Mutex::new(tx.clone());
                Progress(Arc::new(move |done, total| {
                    if let Ok(tx) = tx.lock() {
                        let _ = tx.send(Event::Progress {
                            generation,
                            done,
                            total,
                        });
                    }
                }))
            });
            let result = prepare(model, &text, text_b.as_deref(), progress);
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
            let rows = lens(model, &trace, pos);
            Event::Lens(Box::new(LensOutcome {
                generation,
                pos,
                rows,
            }))
        }
    }
}

/// Tokenize, check the size, run the model and analyse the trace.
pub fn prepare(
    model: &dyn Model,
    text: &str,
    text_b: Option<&str>,
    progress: Option<Progress>,
) -> Result<Summary, String> {
    let info = model.info();
    let n = model
        .tokenizer()
        .encode(text, text_b)
        .map_err(|e| e.to_string())?
        .ids
        .len();
    let mut opts = ForwardOptions::for_size(info.n_layers, info.n_heads, n, ATTENTION_BUDGET);
    opts.progress = progress;
    if !opts.keep_attention {
        return Err(format!(
            "{n} tokens is too long for the explorer (every attention matrix would need more than {} MiB); \
             shorten the text, or use `attn dump`, which streams long inputs",
            ATTENTION_BUDGET >> 20
        ));
    }
    let trace = model::run(model, text, text_b, &opts).map_err(|e| e.to_string())?;
    Summary::new(trace)
}

fn lens(model: &dyn Model, trace: &Trace, pos: usize) -> Option<Vec<Vec<TopToken>>> {
    let mut rows = Vec::with_capacity(trace.n_layers());
    for l in 0..trace.n_layers() {
        let h = trace.hidden.get(l + 1)?;
        if pos >= h.nrows() {
            return None;
        }
        let one = h.slice(ndarray::s![pos..pos + 1, ..]).to_owned();
        let mut top = model.logit_lens(&one, LENS_K)?;
        rows.push(top.pop().unwrap_or_default());
    }
    Some(rows)
}

/// The handle the run loop keeps: send jobs here.
pub struct Worker {
    jobs: Sender<Job>,
}

impl Worker {
    /// Start the worker thread; its outcomes go into `events`.
    pub fn spawn(model: Arc<dyn Model>, events: Sender<Event>) -> Worker {
        let (jobs, rx) = channel::<Job>();
        std::thread::Builder::new()
            .name("attn-worker".into())
            .spawn(move || worker_loop(model.as_ref(), rx, events))
            .unwrap_or_else(|e| panic!("cannot start the inference thread: {e}"));
        Worker { jobs }
    }

    pub fn submit(&self, job: Job) {
        // The worker only stops when this handle is dropped, so a send cannot fail while we hold it.
        let _ = self.jobs.send(job);
    }
}

fn worker_loop(model: &dyn Model, rx: Receiver<Job>, events: Sender<Event>) {
    while let Ok(first) = rx.recv() {
        // Skip to the newest run job waiting (typing queues many); lens jobs behind it are kept in order.
        let mut queue = vec![first];
        while let Ok(j) = rx.try_recv() {
            queue.push(j);
        }
        let last_run = queue.iter().rposition(|j| matches!(j, Job::Run { .. }));
        for (i, job) in queue.into_iter().enumerate() {
            if matches!(job, Job::Run { .. }) && Some(i) != last_run {
                continue;
            }
            if events.send(run_job(model, job, Some(&events))).is_err() {
                return;
            }
        }
    }
}
