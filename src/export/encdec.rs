//! The dump of an encoder–decoder run (`attn dump --model M --text SOURCE [--target TARGET] --out D`):
//!
//! | file | content |
//! |---|---|
//! | `tokens.json` | the source tokens (index, id, text, label, segment, start, end) |
//! | `target_tokens.json` | the decoder input tokens (same fields; offsets 0) |
//! | `attention.npy` | encoder self-attention `[enc_layers, heads, n_src, n_src]` |
//! | `decoder_attention.npy` | decoder masked self-attention `[dec_layers, heads, n_tgt, n_tgt]` |
//! | `cross_attention.npy` | cross-attention `[dec_layers, heads, n_tgt, n_src]` (row = target, column = source) |
//! | `hidden.npy` | encoder residual streams `[enc_layers + 1, n_src, d]` |
//! | `decoder_hidden.npy` | decoder residual streams `[dec_layers + 1, n_tgt, d]` |
//! | `logits.npy` | `[n_tgt, target_vocab]`: row i predicts the token after decoder input i |
//! | `meta.json` | `"kind": "encoder-decoder"`, sizes, texts, the decoder start id, how the target was made, `files` |

use super::{Staged, object, tokens_json, write_npy};
use crate::model::encdec::{EncDecTrace, EncoderDecoder};
use crate::trace::Trace;
use crate::{Error, Result};
use ndarray::Array3;
use serde_json::json;
use std::path::{Path, PathBuf};

/// The files [`dump`] writes.
pub const FILES: [&str; 9] = [
    "tokens.json",
    "target_tokens.json",
    "attention.npy",
    "decoder_attention.npy",
    "cross_attention.npy",
    "hidden.npy",
    "decoder_hidden.npy",
    "logits.npy",
    "meta.json",
];

fn patterns<'a>(
    trace: &'a Trace,
    what: &str,
    pick: impl Fn(&'a crate::trace::LayerTrace) -> Option<&'a Array3<f32>>,
) -> Result<Vec<&'a Array3<f32>>> {
    trace
        .layers
        .iter()
        .enumerate()
        .map(|(l, lt)| {
            pick(lt).ok_or_else(|| {
                Error::Input(format!(
                    "layer {l}: the {what} was not kept (run with keep_attention)"
                ))
            })
        })
        .collect()
}

fn write_stack(st: &mut Staged, name: &str, parts: &[&Array3<f32>]) -> Result<()> {
    let (h, n, m) = parts.first().map_or((0, 0, 0), |a| a.dim());
    st.write(name, |w| {
        write_npy(
            w,
            &[parts.len(), h, n, m],
            parts.iter().flat_map(|a| a.iter().copied()),
        )
    })
}

fn write_hidden(st: &mut Staged, name: &str, trace: &Trace) -> Result<()> {
    let (n, d) = trace.hidden.first().map_or((0, 0), |h| h.dim());
    st.write(name, |w| {
        write_npy(
            w,
            &[trace.hidden.len(), n, d],
            trace.hidden.iter().flat_map(|h| h.iter().copied()),
        )
    })
}

/// Write an encoder–decoder run into `out` (atomically, like every dump). `target` is the target text the decoder
/// input was made from (`None`: the decoder input is the greedy output). The trace must have kept attention.
pub fn dump(
    model: &EncoderDecoder,
    trace: &EncDecTrace,
    source: &str,
    target: Option<&str>,
    out: &Path,
    force: bool,
) -> Result<Vec<PathBuf>> {
    let enc_attn = patterns(&trace.source, "encoder attention", |l| l.attention.as_ref())?;
    let dec_attn = patterns(&trace.target, "decoder attention", |l| l.attention.as_ref())?;
    let cross = patterns(&trace.target, "cross-attention", |l| {
        l.cross_attention.as_ref()
    })?;
    let names: Vec<String> = FILES.iter().map(|s| s.to_string()).collect();
    super::staged::write_dump(out, force, &names, |st| {
        st.write_json("tokens.json", &tokens_json(&trace.source.tokens))?;
        st.write_json("target_tokens.json", &tokens_json(&trace.target.tokens))?;
        write_stack(st, "attention.npy", &enc_attn)?;
        write_stack(st, "decoder_attention.npy", &dec_attn)?;
        write_stack(st, "cross_attention.npy", &cross)?;
        write_hidden(st, "hidden.npy", &trace.source)?;
        write_hidden(st, "decoder_hidden.npy", &trace.target)?;
        let (nt, v) = trace.logits.dim();
        st.write("logits.npy", |w| {
            write_npy(w, &[nt, v], trace.logits.iter().copied())
        })?;
        let info = &model.info;
        Ok(object(json!({
            "kind": "encoder-decoder",
            "model": info.spec,
            "name": info.name,
            "architecture": info.arch.name(),
            "encoder_layers": trace.source.layers.len(),
            "decoder_layers": trace.target.layers.len(),
            "heads": info.n_heads,
            "d_model": info.d_model,
            "d_ff": info.d_ff,
            "positional": info.positional,
            "text": source,
            "target": target,
            "decoder_input": if target.is_some() { "shift_tokens_right(target ids)" } else { "greedy output" },
            "decoder_start_token_id": model.decoder_start,
            "eos_token_id": model.eos,
            "n_source_tokens": trace.source.n_tokens(),
            "n_target_tokens": trace.target.n_tokens(),
            "attn_version": env!("CARGO_PKG_VERSION"),
        })))
    })
}
