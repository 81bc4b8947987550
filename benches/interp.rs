//! Issue 13 in the explorer, timed on a real decoder (ATTN_BENCH_MODEL, default `smollm2`; needs
//! scripts/fetch-models): one generated token with attention recorded at a 50-token context — the explorer's `+`
//! (choose, one KV-cache step appended to the trace with every attention matrix, the summary) against the KV-cache
//! step of `attn generate` — and the head-ablation sweep at 20 tokens. Prints wall times; no assertions.
//!
//!     cargo bench --bench interp

use attn::analysis::ablation;
use attn::model::generate::{Sampling, generate};
use attn::model::{self, Model, TextbookConfig};
use attn::trace::ForwardOptions;
use attn::tui::event::{Event, Job};
use attn::tui::interp::{InterpJob, InterpOutcome};
use attn::tui::worker::run_job;
use std::sync::Arc;
use std::time::Instant;

fn ids_of(m: &dyn Model, n: usize) -> Vec<u32> {
    let text = "The quick brown fox jumps over the lazy dog while the cat sat on the mat, and a small language \
                model tried to predict every next word of this long sentence, one token at a time, again and again \
                until the end of the afternoon.";
    let text = format!("{text} {text}");
    let mut ids = m.tokenizer().encode(&text, None).unwrap().ids;
    assert!(ids.len() >= n, "the text has only {} tokens", ids.len());
    ids.truncate(n);
    ids
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let spec = std::env::var("ATTN_BENCH_MODEL").unwrap_or_else(|_| "smollm2".into());
    let m: Arc<dyn Model> = Arc::from(
        model::load(&spec, &TextbookConfig::default())
            .unwrap_or_else(|e| panic!("ATTN_BENCH_MODEL={spec}: {e}")),
    );
    let keep = ForwardOptions {
        keep_attention: true,
        top_k: 5,
        ..Default::default()
    };
    // One generated token at 50 tokens of context.
    let prompt = ids_of(m.as_ref(), 50);
    let clean = Arc::new(model::run_ids(m.as_ref(), &prompt, &keep).unwrap());
    // The explorer's `+`: the job the worker runs (choose, one KV-cache step appended to the trace, the summary of
    // the longer trace). The first `+` after a text run recomputes the cache from the trace's streams; later ones
    // reuse the cache the previous `+` returned.
    let plus = |trace: &Arc<attn::trace::Trace>, cache| {
        let t = Instant::now();
        let job = Job::Interp(InterpJob::Generate {
            generation: 1,
            trace: trace.clone(),
            sampling: Sampling::default(),
            cache,
        });
        let ev = run_job(m.as_ref(), job, None);
        let ms = t.elapsed().as_secs_f64() * 1e3;
        let Event::Interp(o) = ev else {
            panic!("no outcome")
        };
        let InterpOutcome::Generated { result: Ok(g), .. } = *o else {
            panic!("generation failed")
        };
        (ms, g)
    };
    let first: Vec<f64> = (0..5).map(|_| plus(&clean, None).0).collect();
    let (_, g1) = plus(&clean, None);
    let (t1, c1) = (g1.summary.trace.clone(), g1.cache.clone());
    assert!(c1.is_some(), "the explorer's + did not use the KV cache");
    let next: Vec<f64> = (0..5).map(|_| plus(&t1, c1.clone()).0).collect();
    let g = generate(m.as_ref(), &prompt, 6, &Sampling::default(), true).unwrap();
    println!(
        "{spec}: one generated token at 50 tokens, attention recorded: explorer + (first, cache from the streams) \
         {:.1} ms, explorer + (cache held) {:.1} ms, median of 5 each; KV-cache step of `attn generate` {:.1} ms \
         median of {}",
        median(first),
        median(next),
        median(g.step_ms.clone()),
        g.step_ms.len()
    );
    // The sweep at 20 tokens.
    let ids = ids_of(m.as_ref(), 20);
    let opts = ForwardOptions {
        keep_attention: false,
        top_k: 0,
        ..Default::default()
    };
    let clean = model::run_ids(m.as_ref(), &ids, &opts).unwrap();
    let t = Instant::now();
    let s = ablation::sweep(m.as_ref(), &clean, None, false, &|_, _| {}).unwrap();
    println!(
        "{spec}: sweep of {} heads at 20 tokens: {:.1} s",
        s.heads.len(),
        t.elapsed().as_secs_f64()
    );
}
