//! A forward-pass timing server for `scripts/bench/compare.py`: loads one model (any spec `attn --model` takes),
//! prints `ready <load ms>`, then for every line of standard input (a JSON string: the text) tokenizes it, runs one
//! forward pass recording every attention matrix and the top-5 next tokens at every position, and prints
//! `<tokens> <forward ms>`. The script drives several engines this way so their runs interleave in one sitting.
//!
//! `cargo run --release --example bench_forward -- <model spec>`

use attn::model::{self, TextbookConfig};
use attn::trace::ForwardOptions;
use std::io::{BufRead, Write};
use std::time::Instant;

fn main() -> anyhow::Result<()> {
    let spec = std::env::args()
        .nth(1)
        .ok_or_else(|| anyhow::anyhow!("usage: bench_forward <model spec>"))?;
    let t0 = Instant::now();
    let m = model::load(&spec, &TextbookConfig::default())?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "ready {:.3}", t0.elapsed().as_secs_f64() * 1e3)?;
    out.flush()?;
    let opts = ForwardOptions {
        keep_attention: true,
        top_k: 5,
        ..Default::default()
    };
    for line in std::io::stdin().lock().lines() {
        let text: String = serde_json::from_str(&line?)?;
        let t = Instant::now();
        let enc = m.tokenizer().encode(&text, None)?;
        let trace = m.forward(&enc, &opts)?;
        let ms = t.elapsed().as_secs_f64() * 1e3;
        std::hint::black_box(&trace);
        writeln!(out, "{} {ms:.3}", enc.ids.len())?;
        out.flush()?;
    }
    Ok(())
}
