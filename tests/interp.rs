//! Issue 13, phase 2 against transformers (fixtures/golden/heads, made by scripts/golden/make_heads_fixtures.py):
//! greedy generation with the KV cache, zero/mean head ablation, the ablation sweep, direct logit attribution.

mod common;

use attn::analysis::{ablation, attribution};
use attn::hooks::Intervention;
use attn::model::generate::{Sampling, append, generate};
use attn::model::{self, Model, TextbookConfig};
use attn::trace::ForwardOptions;
use common::{Npy, assert_same_run, real_model, repo};
use ndarray::{Axis, Ix3, s};

struct Case {
    name: &'static str,
    model: Box<dyn Model>,
    golden: serde_json::Value,
}

fn case(name: &'static str, path: &std::path::Path) -> Case {
    let model = model::load(&path.display().to_string(), &TextbookConfig::default()).unwrap();
    let g = repo().join(format!("fixtures/golden/heads/{name}.json"));
    let golden = serde_json::from_str(&std::fs::read_to_string(g).unwrap()).unwrap();
    Case {
        name,
        model,
        golden,
    }
}

fn cases() -> Vec<Case> {
    let mut v = vec![
        case("tiny_gpt2", &repo().join("fixtures/tiny-gpt2")),
        case("tiny_llama", &repo().join("fixtures/tiny-llama.gguf")),
    ];
    if let Some(p) = real_model("smollm2.gguf") {
        v.push(case("smollm2", &p));
    }
    v
}

fn ids(v: &serde_json::Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

#[test]
fn greedy_ids_equal_transformers_and_cached_rows_equal_the_full_matrix() {
    for c in cases() {
        let prompt = ids(&c.golden["ids"]);
        let want = ids(&c.golden["generate"]["new_ids"]);
        let ours = c
            .model
            .tokenizer()
            .encode(c.golden["prompt"].as_str().unwrap(), None)
            .unwrap();
        assert_eq!(ours.ids, prompt, "{}: tokenization", c.name);
        let g = generate(
            c.model.as_ref(),
            &prompt,
            want.len(),
            &Sampling::default(),
            true,
        )
        .unwrap();
        assert_eq!(g.new_ids, want, "{}: greedy ids", c.name);
        // Each new token's recorded attention is its row of a full forward pass over everything.
        let all: Vec<u32> = prompt.iter().chain(&want).copied().collect();
        let full = model::run_ids(c.model.as_ref(), &all, &ForwardOptions::default()).unwrap();
        for (i, layers) in g.attention.iter().enumerate() {
            let row = prompt.len() + i;
            for (l, a) in layers.iter().enumerate() {
                let f = full.layers[l].attention.as_ref().unwrap();
                let want = f.slice(s![.., row..row + 1, ..row + 1]);
                let d = (a - &want).iter().fold(0f32, |m, v| m.max(v.abs()));
                // One new token goes through the quantized kernel's few-token tile, a full pass through its decoded
                // panels: the same weights summed in another order, so rows agree to float rounding, not bits.
                assert!(
                    d < 1e-4,
                    "{}: token {i} layer {l}: cached row differs by {d}",
                    c.name
                );
            }
        }
    }
}

#[test]
fn tokens_appended_by_kv_cache_steps_equal_a_full_run() {
    let opts = || ForwardOptions {
        keep_attention: true,
        top_k: 5,
        ..Default::default()
    };
    for c in cases() {
        let m = c.model.as_ref();
        let prompt = ids(&c.golden["ids"]);
        let mut trace = model::run_ids(m, &prompt, &opts()).unwrap();
        let mut cache = None;
        for _ in 0..3 {
            let last = trace.hidden.last().unwrap();
            let logits = m
                .engine()
                .logits(&last.slice(s![-1.., ..]).to_owned())
                .unwrap();
            let next = attn::model::generate::argmax(&logits.row(0)) as u32;
            let (t, kv) = append(m, &trace, next, cache.as_ref(), 5).unwrap();
            let ids: Vec<u32> = t.tokens.iter().map(|t| t.id).collect();
            assert_eq!(kv.len(), ids.len(), "{}", c.name);
            let full = model::run_ids(m, &ids, &opts()).unwrap();
            assert_same_run(&t, &full, m);
            assert_eq!(t.text, full.text);
            (trace, cache) = (t, Some(kv));
        }
        // A cache that does not fit the trace is recomputed from its streams, not used.
        let short = cache.as_ref().unwrap().truncated(2);
        let (a, _) = append(m, &trace, 0, Some(&short), 5).unwrap();
        let (b, _) = append(m, &trace, 0, None, 5).unwrap();
        assert_eq!(a.layers[0].attention, b.layers[0].attention, "{}", c.name);
    }
}

#[test]
fn zero_and_mean_ablation_match_transformers_hooks() {
    for c in cases() {
        let prompt = ids(&c.golden["ids"]);
        for a in c.golden["ablations"].as_array().unwrap() {
            let layer = a["layer"].as_u64().unwrap() as usize;
            let heads: Vec<usize> = ids(&a["heads"]).into_iter().map(|h| h as usize).collect();
            let mut opts = ForwardOptions::default();
            opts.hooks.edits.push(match a["kind"].as_str().unwrap() {
                "zero" => Intervention::zero_heads(layer, heads),
                _ => Intervention::mean_heads(layer, heads),
            });
            let t = model::run_ids(c.model.as_ref(), &prompt, &opts).unwrap();
            let file = a["file"].as_str().unwrap();
            let dir = repo().join("fixtures/golden/heads");
            let hidden = Npy::read(&dir.join(format!("{file}_hidden.npy"))).f32();
            let hidden = hidden.into_dimensionality::<Ix3>().unwrap();
            for (l, h) in t.hidden.iter().enumerate() {
                let w = hidden.index_axis(Axis(0), l);
                let scale = w.iter().fold(1f32, |m, v| m.max(v.abs()));
                let d = (h - &w).iter().fold(0f32, |m, v| m.max(v.abs()));
                assert!(
                    d / scale < 2e-4,
                    "{} {file}: hidden[{l}] differs by {d} (scale {scale})",
                    c.name
                );
            }
            let logits = c.model.engine().logits(t.hidden.last().unwrap()).unwrap();
            let want = Npy::read(&dir.join(format!("{file}_logits.npy"))).f32();
            let last = logits.row(logits.nrows() - 1);
            let d = last
                .iter()
                .zip(want.iter())
                .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
            assert!(d < 2e-3, "{} {file}: last logits differ by {d}", c.name);
        }
    }
}

#[test]
fn sweep_resumes_to_the_same_logit_as_a_full_ablated_run() {
    for c in cases().into_iter().take(2) {
        let prompt = ids(&c.golden["ids"]);
        let opts = ForwardOptions {
            keep_attention: false,
            top_k: 0,
            ..Default::default()
        };
        let clean = model::run_ids(c.model.as_ref(), &prompt, &opts).unwrap();
        let calls = std::cell::Cell::new(0);
        let s = ablation::sweep(c.model.as_ref(), &clean, None, false, &|_, _| {
            calls.set(calls.get() + 1)
        })
        .unwrap();
        let info = c.model.info();
        assert_eq!(s.heads.len(), info.n_layers * info.n_heads);
        assert_eq!(calls.get(), s.heads.len());
        assert_eq!(s.token as u64, c.golden["clean_top"].as_u64().unwrap());
        // The first golden ablation is a zero-ablation of one head: its logit of the clean top token.
        let a = &c.golden["ablations"][0];
        let (l, h) = (
            a["layer"].as_u64().unwrap() as usize,
            a["heads"][0].as_u64().unwrap() as usize,
        );
        let want = Npy::read(&repo().join(format!(
            "fixtures/golden/heads/{}_logits.npy",
            a["file"].as_str().unwrap()
        )))
        .f32()
        .into_dimensionality::<ndarray::Ix1>()
        .unwrap()[s.token as usize];
        let e = s
            .heads
            .iter()
            .find(|e| e.layer == l && e.head == h)
            .unwrap();
        assert!(
            (e.logit - want).abs() < 1e-3,
            "{}: L{l}.H{h}: {} vs transformers {want}",
            c.name,
            e.logit
        );
        assert!(s.ranked()[0].delta.abs() >= s.ranked()[s.heads.len() - 1].delta.abs());
    }
}

#[test]
fn attribution_sums_to_the_logit_and_matches_transformers() {
    for c in cases() {
        let g = &c.golden["attribution"];
        let at = attribution::attribute(
            c.model.as_ref(),
            c.golden["prompt"].as_str().unwrap(),
            None,
            None,
        )
        .unwrap();
        assert_eq!(at.token as u64, g["token"].as_u64().unwrap(), "{}", c.name);
        let want_logit = g["logit"].as_f64().unwrap() as f32;
        assert!(
            (at.logit - want_logit).abs() < 1e-3,
            "{}: logit {} vs {want_logit}",
            c.name,
            at.logit
        );
        assert!(
            (at.total() - at.logit).abs() < 1e-3,
            "{}: Σ {} vs logit {}",
            c.name,
            at.total(),
            at.logit
        );
        let want = g["components"].as_array().unwrap();
        assert_eq!(at.components.len(), want.len(), "{}", c.name);
        for (ours, w) in at.components.iter().zip(want) {
            assert_eq!(ours.name, w["name"].as_str().unwrap());
            let wv = w["value"].as_f64().unwrap() as f32;
            assert!(
                (ours.value - wv).abs() < 1e-3,
                "{} {}: {} vs {wv}",
                c.name,
                ours.name,
                ours.value
            );
        }
    }
}

#[test]
fn encoders_are_refused() {
    let m = model::load(
        "textbook",
        &TextbookConfig {
            layers: 1,
            d_model: 32,
            d_ff: 64,
            heads: 2,
            ..Default::default()
        },
    )
    .unwrap();
    assert!(generate(m.as_ref(), &[101, 102], 2, &Sampling::default(), false).is_err());
    assert!(attribution::attribute(m.as_ref(), "hi", None, None).is_err());
}
