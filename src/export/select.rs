//! A dump's selection of layers and heads (`--attn-layers`, `--attn-heads`), and the one-head-at-a-time walk that
//! writes it.

use crate::model::{Model, head_attention};
use crate::trace::Trace;
use crate::{Error, Result};

/// Parse an `--attn-layers`/`--attn-heads` selection: indices and inclusive ranges separated by commas (`0`, `3-5`, `0,4`,
/// `0,2-3`), each below `count`; returned sorted, without repeats. `what` names the flag in errors.
pub fn parse_selection(s: &str, count: usize, what: &str) -> Result<Vec<usize>> {
    let bad =
        |why: String| Error::Input(format!("{what} {}: {why}", crate::tokenize::escape_text(s)));
    let index = |t: &str| -> Result<usize> {
        let i: usize = t.trim().parse().map_err(|_| {
            bad(format!(
                "`{}` is not an index",
                crate::tokenize::escape_text(t.trim())
            ))
        })?;
        if i >= count {
            return Err(bad(format!(
                "{i} is out of range (0..={})",
                count.saturating_sub(1)
            )));
        }
        Ok(i)
    };
    let mut out = vec![];
    for part in s.split(',') {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (index(a)?, index(b)?);
                if a > b {
                    return Err(bad(format!("the range {a}-{b} runs backwards")));
                }
                out.extend(a..=b);
            }
            None => out.push(index(part)?),
        }
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

/// Call `f(layer index, head index, matrix)` for every selected (layer, head) of `trace` in order, one head's matrix
/// at a time (borrowed when kept, else recomputed alone); `progress(layers done, layers)` after each layer. Model
/// errors become `E` through `conv`.
#[allow(clippy::type_complexity)]
pub(super) fn each_head<E>(
    (model, trace, ls, hs): (&dyn Model, &Trace, &[usize], &[usize]),
    progress: &dyn Fn(usize, usize),
    conv: fn(Error) -> E,
    f: &mut dyn FnMut(usize, usize, &ndarray::Array2<f32>) -> std::result::Result<(), E>,
) -> std::result::Result<(), E> {
    for (li, &l) in ls.iter().enumerate() {
        for (hi, &h) in hs.iter().enumerate() {
            f(li, hi, &head_attention(model, trace, l, h).map_err(conv)?)?;
        }
        progress(li + 1, ls.len());
    }
    Ok(())
}
