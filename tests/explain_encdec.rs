//! The explanation views on encoder–decoders (tiny BART, T5, Marian, textbook-dates): for each attention kind
//! (encoder self, decoder self, cross) the step-by-step numbers equal the model's own captured tensors of a full
//! forward pass (pattern, scores, z, the sub-layer output), and the logit lens on the decoder ends at the logits.

mod common;

use attn::explain::run as ex;
use attn::explain::subject::{Part, Subject};
use attn::model::encdec::{EncDecTrace, EncoderDecoder};
use attn::model::{TextbookConfig, load_encoder_decoder};
use attn::trace::{ForwardOptions, HookPoint, Trace};
use common::repo;
use ndarray::{Array1, Axis};

const PARTS: [Part; 3] = [Part::Encoder, Part::Decoder, Part::Cross];

fn load(name: &str) -> EncoderDecoder {
    if name == "textbook-dates" {
        return attn::model::arch::textbook_dates::load().unwrap();
    }
    let dir = repo().join("fixtures").join(name);
    load_encoder_decoder(dir.to_str().unwrap(), &TextbookConfig::default(), None)
        .unwrap()
        .expect("an encoder–decoder folder")
}

fn texts(name: &str) -> (&'static str, &'static str) {
    if name == "textbook-dates" {
        ("22 November 2026", "2026년 11월 22일")
    } else {
        ("the cat sat on the mat", "a cat sat")
    }
}

/// A forward pass of the whole model capturing every hook point of every layer.
fn full_run(m: &EncoderDecoder, name: &str, capture: bool) -> EncDecTrace {
    let (s, t) = texts(name);
    let mut opts = ForwardOptions {
        keep_attention: true,
        ..Default::default()
    };
    if capture {
        let layers = m.encoder.blocks.len().max(m.decoder.blocks.len());
        for p in HookPoint::ALL {
            opts.hooks.capture_all(p, layers);
        }
    }
    m.forward(
        &m.encode_source(s).unwrap(),
        &m.decoder_input(t).unwrap(),
        &opts,
    )
    .unwrap()
}

fn close(a: f32, b: f32, what: &str) {
    assert!(
        (a - b).abs() <= 1e-5 * (1.0 + b.abs()),
        "{what}: {a} vs {b}"
    );
}

fn check(name: &str) {
    let m = load(name);
    // The explorer's traces hold no captures; the reference run captures everything.
    let plain = full_run(&m, name, false);
    let want = full_run(&m, name, true);
    let memory = m.memory(&plain.source).unwrap();
    for part in PARTS {
        let s = Subject::EncDec {
            model: &m,
            part,
            memory: Some(&memory),
        };
        let (trace, reference): (&Trace, &Trace) = match part {
            Part::Encoder => (&plain.source, &want.source),
            _ => (&plain.target, &want.target),
        };
        let p = s.points();
        let spec = s.spec().unwrap();
        for layer in 0..trace.n_layers() {
            let t = ex::with_layer(s, trace, layer).unwrap();
            let w_o = ex::w_o(s, layer).unwrap();
            let get = |hp: HookPoint| reference.captures.view3(hp, layer).unwrap();
            let (pattern, scores, z) = (
                get(p.pattern),
                get(if part == Part::Cross {
                    HookPoint::CrossScores
                } else {
                    HookPoint::AttnScores
                }),
                get(p.z),
            );
            let out = reference.captures.view2(p.out, layer).unwrap();
            let (heads, n_q, n_k) = pattern.dim();
            if part == Part::Cross {
                assert_eq!(
                    n_k,
                    plain.source.n_tokens(),
                    "{name}: cross keys are source tokens"
                );
                assert_eq!(
                    n_q,
                    plain.target.n_tokens(),
                    "{name}: cross queries are target tokens"
                );
            }
            for query in 0..n_q {
                let mut sum = Array1::<f32>::zeros(out.ncols());
                for head in 0..heads {
                    let key = (query * 7 + head) % n_k;
                    let c = ex::weight(s, &t, &w_o, layer, head, query, Some(key)).unwrap();
                    let what = format!("{name} {part:?} L{layer} H{head} ({query},{key})");
                    close(c.weight, pattern[[head, query, key]], &what);
                    close(c.exp / c.exp_sum, pattern[[head, query, key]], &what);
                    if !c.masked {
                        // The numbers shown add up: q·k · scale (+ bias) is the model's score.
                        let shown = c.score * c.scale + c.bias.unwrap_or(0.0);
                        close(shown, c.scaled, &what);
                        close(c.scaled, scores[[head, query, key]], &what);
                    }
                    assert_eq!(spec.causal, part == Part::Decoder, "{what}: the mask");
                    let t5_self = name.starts_with("tiny-t5") && part != Part::Cross;
                    assert_eq!(c.bias.is_some(), t5_self, "{what}: the relative bias");
                    for (a, b) in c.z.iter().zip(z.index_axis(Axis(0), head).row(query)) {
                        close(*a, *b, &format!("{what}: z"));
                    }
                    sum += &Array1::from(c.head_out.unwrap());
                }
                if let Some(b) = &s.attn(layer).unwrap().o.b {
                    sum += b;
                }
                for (a, b) in sum.iter().zip(out.row(query)) {
                    close(*a, *b, &format!("{name} {part:?} L{layer} q{query}: out"));
                }
                let walk = ex::block_walk(s, &t, &w_o, layer, query).unwrap();
                let last = walk.steps.last().unwrap();
                let post = reference
                    .captures
                    .view2(HookPoint::ResidPost, layer)
                    .unwrap();
                for (a, b) in last.values.iter().zip(post.row(query)) {
                    close(
                        *a,
                        *b,
                        &format!("{name} {part:?} L{layer}: walk ends at resid_post"),
                    );
                }
                let labels: Vec<&str> = walk.steps.iter().map(|s| s.label.as_str()).collect();
                assert_eq!(
                    labels.contains(&"cross-attention output"),
                    part != Part::Encoder,
                    "{name} {part:?}: {labels:?}"
                );
            }
            let vw = ex::value_weighted(s, &t, &w_o, layer).unwrap();
            assert_eq!(vw.dim(), (heads, n_q, n_k));
        }
    }
}

#[test]
fn explanations_equal_the_captured_tensors_on_tiny_bart() {
    check("tiny-bart");
}

#[test]
fn explanations_equal_the_captured_tensors_on_tiny_t5() {
    check("tiny-t5");
}

#[test]
fn explanations_equal_the_captured_tensors_on_tiny_marian() {
    check("tiny-marian");
}

#[test]
fn explanations_equal_the_captured_tensors_on_textbook_dates() {
    check("textbook-dates");
}

#[test]
fn a_decoder_layer_needs_the_memory() {
    let m = load("tiny-bart");
    let plain = full_run(&m, "tiny-bart", false);
    let s = Subject::EncDec {
        model: &m,
        part: Part::Cross,
        memory: None,
    };
    let e = ex::with_layer(s, &plain.target, 0).unwrap_err();
    assert!(e.to_string().contains("memory"), "{e}");
}

/// The lens at the last decoder layer is the model's own next-token distribution.
fn lens_ends_at_the_logits(name: &str) {
    let m = load(name);
    let run = full_run(&m, name, false);
    for pos in 0..run.target.n_tokens() {
        let rows = attn::tui::worker::encdec_lens(&m, &run.target, pos).unwrap();
        assert_eq!(rows.len(), m.decoder.blocks.len());
        let top = &rows.last().unwrap()[0];
        let logits = run.logits.row(pos);
        let max = logits.fold(f32::NEG_INFINITY, |a, &b| a.max(b));
        let z: f32 = logits.iter().map(|x| (x - max).exp()).sum();
        close(top.prob, (logits[top.id as usize] - max).exp() / z, name);
        close(logits[top.id as usize], max, name);
    }
}

#[test]
fn the_decoder_lens_ends_at_the_logits() {
    for name in ["tiny-bart", "tiny-t5", "tiny-marian", "textbook-dates"] {
        lens_ends_at_the_logits(name);
    }
}

#[test]
fn the_textbook_dates_lens_reads_the_next_character_at_the_last_layer() {
    let m = load("textbook-dates");
    let run = full_run(&m, "textbook-dates", false);
    let (_, target) = texts("textbook-dates");
    let want: Vec<u32> = m.target_tokenizer.encode(target, None).unwrap().ids;
    for (pos, id) in want.iter().enumerate() {
        let rows = attn::tui::worker::encdec_lens(&m, &run.target, pos).unwrap();
        assert_eq!(rows.last().unwrap()[0].id, *id, "position {pos}");
    }
}

#[test]
fn t5_positions_are_its_relative_bias_by_distance() {
    let m = load("tiny-t5");
    let run = full_run(&m, "tiny-t5", false);
    for (trace, bias) in [
        (&run.source, m.enc_bias.as_ref().unwrap()),
        (&run.target, m.dec_bias.as_ref().unwrap()),
    ] {
        let p = &trace.positional;
        assert_eq!(p.kind().name(), "relative");
        let n = trace.n_tokens();
        let full = bias.bias(n, n);
        let by = p.matrix();
        assert_eq!(by.dim(), (full.dim().0, 2 * n - 1));
        for h in 0..full.dim().0 {
            for i in 0..n {
                for j in 0..n {
                    assert_eq!(
                        by[[h, j + n - 1 - i]],
                        full[[h, i, j]],
                        "head {h} ({i},{j})"
                    );
                }
            }
        }
    }
    // The encoder's buckets are bidirectional: before and after differ somewhere.
    let enc = run.source.positional.matrix();
    let n = run.source.n_tokens();
    assert!((1..n).any(|d| enc[[0, n - 1 - d]] != enc[[0, n - 1 + d]]));
    // Models with added position vectors keep them.
    let bart = load("tiny-bart");
    let b = full_run(&bart, "tiny-bart", false);
    assert_eq!(b.source.positional.kind().name(), "learned");
}
