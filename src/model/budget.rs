//! The memory a forward pass will need, computed before anything is allocated, and the one budget every command
//! (`attn show`, `attn dump`, the explorer's worker) checks it against.
//!
//! The estimate, in f32 bytes, for a model of `L` layers, `H` heads, width `d`, feed-forward width `f`, vocabulary
//! `V`, on `n` tokens:
//! - the residual stream at every layer boundary, `(L+1)·n·d`, and the mid-block stream, `L·n·d` (always kept);
//! - one block's transient work: its activations `n·(4d + 2f)`, and its scores and probabilities: `2·H·n²` when
//!   the attention is kept (each head's matrix, then the layer's copy), else the query tiles in flight
//!   `H·min(n, T)·n` (`T` = [`QUERY_TILE`](super::attention::QUERY_TILE)) plus the one head's `n²` a command
//!   recomputes to show or write it (`attn show`, `attn dump --heads`, the explorer's visible head);
//! - every layer's attention `L·H·n²` when the caller keeps it (the explorer does; dumps stream it);
//! - the logits `n·V` when next tokens are asked for;
//! - every tensor a hook captures (`--qkv`, `--mlp`, …): per captured point and layer `n·d` for residual streams
//!   and sub-layer outputs, `H·n·d/H` for queries and head outputs, `H_kv·n·d/H` for keys and values, `H·n²` for
//!   scores and patterns (cross-attention: the same with the encoder's length taken as `n`), `n·f` for MLP
//!   activations.
//!
//! The default budget is [`DEFAULT_BUDGET`] (4 GiB); `--mem-budget` raises or lowers it.

use super::ModelInfo;
use crate::hooks::{HookPoint, Hooks};
use crate::trace::ForwardOptions;
use crate::{Error, Result};

/// The default memory budget of one forward pass: 4 GiB.
pub const DEFAULT_BUDGET: u64 = 4 << 30;

/// The parts of an estimate, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Estimate {
    pub streams: u64,
    pub transient: u64,
    pub attention: u64,
    pub logits: u64,
    pub captures: u64,
}

impl Estimate {
    pub fn total(&self) -> u64 {
        self.streams
            .saturating_add(self.transient)
            .saturating_add(self.attention)
            .saturating_add(self.logits)
            .saturating_add(self.captures)
    }
}

/// What a forward pass of `info` on `n` tokens needs (see the module docs); `keep_attention` and `top_k` as in
/// [`ForwardOptions`].
pub fn estimate(info: &ModelInfo, n: usize, keep_attention: bool, top_k: usize) -> Estimate {
    let f = 4u64;
    let (l, h, n, d) = (
        info.n_layers as u64,
        info.n_heads as u64,
        n as u64,
        info.d_model as u64,
    );
    let mul = |xs: &[u64]| xs.iter().fold(1u64, |a, &b| a.saturating_mul(b));
    let nn = mul(&[n, n]);
    Estimate {
        streams: mul(&[(2 * l + 1), n, d, f]),
        transient: attention_work(h, n, keep_attention).saturating_add(mul(&[
            n,
            (4 * d).saturating_add(2 * info.d_ff as u64),
            f,
        ])),
        attention: if keep_attention {
            mul(&[l, h, nn, f])
        } else {
            0
        },
        logits: if top_k > 0 && info.causal {
            mul(&[n, info.vocab_size as u64, f])
        } else {
            0
        },
        captures: 0,
    }
}

/// One block's scores and probabilities in bytes (see the module docs): the kept path holds every head's `n × n`
/// twice, the tiled path `min(n, QUERY_TILE)` rows per head plus one head recomputed whole.
fn attention_work(h: u64, n: u64, keep: bool) -> u64 {
    let mul = |xs: &[u64]| xs.iter().fold(1u64, |a, &b| a.saturating_mul(b));
    if keep {
        mul(&[2, h, n, n, 4])
    } else {
        let tile = n.min(super::attention::QUERY_TILE as u64);
        mul(&[h, tile, n, 4]).saturating_add(mul(&[n, n, 4]))
    }
}

/// The bytes the hooks' captures hold after a forward pass on `n` tokens (see the module docs).
pub fn capture_bytes(info: &ModelInfo, n: usize, hooks: &Hooks) -> u64 {
    let (n, d, f) = (n as u64, info.d_model as u64, info.d_ff as u64);
    let (h, kv) = (info.n_heads.max(1) as u64, info.n_kv_heads as u64);
    let d_head = d / h;
    let mul = |xs: &[u64]| xs.iter().fold(1u64, |a, &b| a.saturating_mul(b));
    hooks
        .capture
        .iter()
        .map(|(p, _)| {
            use HookPoint::*;
            let elements = match p {
                AttnQ | AttnZ | CrossQ | CrossZ => mul(&[h, n, d_head]),
                AttnK | AttnV | CrossK | CrossV => mul(&[kv, n, d_head]),
                AttnScores | AttnPattern | CrossScores | CrossPattern => mul(&[h, n, n]),
                MlpPre | MlpPreLinear | MlpPost => mul(&[n, f]),
                ResidPre | AttnOut | ResidMid | CrossOut | ResidCross | MlpOut | ResidPost => {
                    mul(&[n, d])
                }
            };
            mul(&[elements, 4])
        })
        .fold(0u64, u64::saturating_add)
}

/// A byte count for people: `1.5 GiB`, `300 MiB`.
pub fn human(bytes: u64) -> String {
    const GIB: f64 = (1u64 << 30) as f64;
    const MIB: f64 = (1u64 << 20) as f64;
    let b = bytes as f64;
    if b >= GIB {
        format!("{:.1} GiB", b / GIB)
    } else {
        format!("{:.0} MiB", (b / MIB).max(1.0))
    }
}

/// Parse a `--mem-budget` value: bytes, or a number with `K`, `M`, `G`, `T` (binary units, optional `iB`/`B`).
pub fn parse_size(s: &str) -> std::result::Result<u64, String> {
    let t = s.trim();
    let upper = t.to_ascii_uppercase();
    let stripped = upper
        .strip_suffix("IB")
        .or_else(|| upper.strip_suffix('B'))
        .unwrap_or(&upper);
    let (num, mult) = match stripped.chars().last() {
        Some('K') => (&stripped[..stripped.len() - 1], 1u64 << 10),
        Some('M') => (&stripped[..stripped.len() - 1], 1 << 20),
        Some('G') => (&stripped[..stripped.len() - 1], 1 << 30),
        Some('T') => (&stripped[..stripped.len() - 1], 1 << 40),
        _ => (stripped, 1),
    };
    let v: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("`{s}` is not a size (examples: 4G, 512M, 1073741824)"))?;
    if !(v.is_finite() && v > 0.0) {
        return Err(format!("`{s}`: the budget must be a positive size"));
    }
    Ok((v * mult as f64).min(u64::MAX as f64) as u64)
}

/// No real token is longer than this many bytes of text (a guard, not a tokenizer fact: it lets a text be refused
/// by its length alone, before tokenizing a megabyte).
pub const MAX_BYTES_PER_TOKEN: usize = 64;

/// Refuse a text whose byte length alone shows it is over the model's token limit (`max_len` ×
/// [`MAX_BYTES_PER_TOKEN`] bytes), in constant time.
pub fn check_text_bytes(info: &ModelInfo, bytes: usize) -> Result<()> {
    let limit = info.max_len.saturating_mul(MAX_BYTES_PER_TOKEN);
    if bytes > limit {
        return Err(Error::Input(format!(
            "the text is {bytes} bytes long; {} takes at most {} tokens, so at most {limit} bytes are accepted",
            info.name, info.max_len
        )));
    }
    Ok(())
}

/// How a command uses attention.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttentionUse {
    /// Every layer's attention must be kept (the explorer).
    Keep,
    /// Kept if it fits, else recomputed one layer at a time (dumps).
    KeepIfFits,
    /// Recomputed for the one layer shown (`attn show`).
    Recompute,
}

/// The forward options for `n` tokens within `budget` bytes, or an error naming the figure, the budget and the flag
/// that raises it. `what` names the command in the message.
pub fn plan(
    info: &ModelInfo,
    n: usize,
    attention: AttentionUse,
    top_k: usize,
    budget: u64,
    what: &str,
) -> Result<ForwardOptions> {
    plan_with(info, n, attention, top_k, Hooks::default(), budget, what)
}

/// [`plan`] for a run with hooks: what they capture counts against the budget, and the options carry them.
pub fn plan_with(
    info: &ModelInfo,
    n: usize,
    attention: AttentionUse,
    top_k: usize,
    hooks: Hooks,
    budget: u64,
    what: &str,
) -> Result<ForwardOptions> {
    let captures = capture_bytes(info, n, &hooks);
    // A hook on the scores or the pattern makes every block hold its whole `[H, n, n]`, as the kept path does.
    let whole = (0..info.n_layers)
        .any(|l| hooks.wants(HookPoint::AttnScores, l) || hooks.wants(HookPoint::AttnPattern, l));
    let needs = |keep: bool| Estimate {
        captures,
        transient: estimate(info, n, keep || whole, top_k).transient,
        ..estimate(info, n, keep, top_k)
    };
    let keep = match attention {
        AttentionUse::Keep => true,
        AttentionUse::Recompute => false,
        AttentionUse::KeepIfFits => needs(true).total() <= budget,
    };
    let e = needs(keep);
    if e.total() > budget {
        let mut parts = vec![
            format!("residual streams {}", human(e.streams)),
            format!("one layer's work {}", human(e.transient)),
        ];
        if e.attention > 0 {
            parts.push(format!("every layer's attention {}", human(e.attention)));
        }
        if e.logits > 0 {
            parts.push(format!("logits {}", human(e.logits)));
        }
        if e.captures > 0 {
            parts.push(format!("captured tensors {}", human(e.captures)));
        }
        return Err(Error::Input(format!(
            "{what} on {n} tokens of {} needs about {} ({}), over the memory budget of {}; \
             raise it with --mem-budget (e.g. --mem-budget {}G) or shorten the text",
            info.name,
            human(e.total()),
            parts.join(", "),
            human(budget),
            e.total().div_ceil(1 << 30)
        )));
    }
    Ok(ForwardOptions {
        keep_attention: keep,
        top_k,
        hooks,
        ..Default::default()
    })
}

/// Refuse an encoder–decoder run that keeps every attention (the explorer) when it needs more than `budget` bytes:
/// the encoder on `n_src` tokens and `enc_layers` blocks, the decoder on `n_tgt` tokens and `dec_layers` blocks,
/// their cross-attention `dec_layers·H·n_tgt·n_src` and the decoder's logits `n_tgt·V`.
pub fn check_encdec(
    info: &ModelInfo,
    (enc_layers, dec_layers): (usize, usize),
    (n_src, n_tgt): (usize, usize),
    budget: u64,
    what: &str,
) -> Result<()> {
    let side = |layers: usize, n: usize| {
        let info = ModelInfo {
            n_layers: layers,
            causal: false,
            ..info.clone()
        };
        estimate(&info, n, true, 0).total()
    };
    let cross = [dec_layers, info.n_heads, n_tgt, n_src, 4]
        .iter()
        .fold(1u64, |a, &b| a.saturating_mul(b as u64));
    let logits = (n_tgt as u64).saturating_mul(info.vocab_size as u64 * 4);
    let total = side(enc_layers, n_src)
        .saturating_add(side(dec_layers, n_tgt))
        .saturating_add(cross)
        .saturating_add(logits);
    if total > budget {
        return Err(Error::Input(format!(
            "{what} on {n_src} source and {n_tgt} target tokens of {} needs about {} (cross-attention {}), over the \
             memory budget of {}; raise it with --mem-budget or shorten the text",
            info.name,
            human(total),
            human(cross),
            human(budget)
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Arch, ModelInfo};

    fn info() -> ModelInfo {
        ModelInfo {
            spec: "t".into(),
            name: "t".into(),
            arch: Arch::Textbook,
            n_layers: 6,
            n_heads: 8,
            n_kv_heads: 8,
            d_model: 512,
            d_ff: 2048,
            vocab_size: 1000,
            max_len: 1 << 20,
            n_params: 0,
            causal: false,
            positional: crate::trace::PositionalKind::Sinusoidal,
            tokenizer: String::new(),
            source: String::new(),
            notes: vec![],
        }
    }

    #[test]
    fn estimate_counts_each_part() {
        let e = estimate(&info(), 100, true, 5);
        assert_eq!(e.streams, 13 * 100 * 512 * 4);
        assert_eq!(
            e.transient,
            2 * 8 * 100 * 100 * 4 + 100 * (4 * 512 + 2 * 2048) * 4
        );
        assert_eq!(e.attention, 6 * 8 * 100 * 100 * 4);
        assert_eq!(e.logits, 0, "encoders have no logits");
        let streamed = estimate(&info(), 100, false, 5);
        assert_eq!(streamed.attention, 0);
        assert_eq!(
            streamed.transient,
            8 * 100 * 100 * 4 + 100 * 100 * 4 + 100 * (4 * 512 + 2 * 2048) * 4,
            "100 tokens are one tile: every head's rows, then one head recomputed"
        );
        // Long inputs: only 128-row tiles are in flight, not 2·H·n².
        let long = estimate(&info(), 8192, false, 0);
        assert_eq!(
            long.transient,
            8 * 128 * 8192 * 4 + 8192 * 8192 * 4 + 8192 * (4 * 512 + 2 * 2048) * 4
        );
        let big = estimate(&info(), usize::MAX, true, 5);
        assert_eq!(big.total(), u64::MAX, "saturates instead of overflowing");
    }

    #[test]
    fn encoder_decoder_runs_count_both_stacks_and_the_cross_attention() {
        let i = info();
        assert!(check_encdec(&i, (6, 6), (100, 100), 1 << 30, "x").is_ok());
        let e = check_encdec(&i, (6, 6), (2000, 2000), 1 << 30, "x")
            .unwrap_err()
            .to_string();
        assert!(e.contains("2000 source and 2000 target tokens"), "{e}");
        assert!(e.contains("cross-attention 732 MiB"), "{e}");
    }

    #[test]
    fn captured_tensors_count_against_the_budget() {
        let i = info();
        let mut hooks = Hooks::default();
        hooks.capture_all(HookPoint::AttnQ, 6);
        hooks.capture.insert((HookPoint::MlpPost, 0));
        assert_eq!(
            capture_bytes(&i, 100, &hooks),
            6 * (8 * 100 * 64 * 4) + 100 * 2048 * 4
        );
        // Streaming attention fits 1 GiB at 2000 tokens, but not with every layer's scores captured as well.
        let plain = plan(&i, 2000, AttentionUse::Recompute, 0, 1 << 30, "x").unwrap();
        assert!(plain.hooks.is_empty());
        let mut scores = Hooks::default();
        scores.capture_all(HookPoint::AttnScores, 6);
        let e = plan_with(
            &i,
            2000,
            AttentionUse::Recompute,
            0,
            scores.clone(),
            1 << 30,
            "x",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("captured tensors 732 MiB"), "{e}");
        let o = plan_with(&i, 2000, AttentionUse::Recompute, 0, scores, 2 << 30, "x").unwrap();
        assert_eq!(o.hooks.capture.len(), 6, "the options carry the hooks");
    }

    #[test]
    fn plan_streams_then_refuses_naming_the_flag() {
        let i = info();
        let o = plan(&i, 1000, AttentionUse::KeepIfFits, 0, 1 << 30, "x").unwrap();
        assert!(o.keep_attention);
        let o = plan(&i, 4000, AttentionUse::KeepIfFits, 0, 2 << 30, "x").unwrap();
        assert!(!o.keep_attention, "3 GiB of attention is streamed");
        let e = plan(
            &i,
            40000,
            AttentionUse::Recompute,
            0,
            DEFAULT_BUDGET,
            "attn show",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("attn show on 40000 tokens")
                && e.contains("over the memory budget of 4.0 GiB")
                && e.contains("--mem-budget"),
            "{e}"
        );
    }

    #[test]
    fn refuses_huge_texts_by_length() {
        let mut i = info();
        i.max_len = 512;
        assert!(check_text_bytes(&i, 512 * 64).is_ok());
        let e = check_text_bytes(&i, 1 << 20).unwrap_err().to_string();
        assert!(
            e.contains("1048576 bytes") && e.contains("at most 512 tokens"),
            "{e}"
        );
    }

    #[test]
    fn parses_sizes() {
        assert_eq!(parse_size("4G"), Ok(4 << 30));
        assert_eq!(parse_size("512MiB"), Ok(512 << 20));
        assert_eq!(parse_size("1.5g"), Ok(3 << 29));
        assert_eq!(parse_size("1000"), Ok(1000));
        assert!(parse_size("lots").is_err());
        assert!(parse_size("0").is_err());
    }
}
