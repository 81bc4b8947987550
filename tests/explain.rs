//! Inside attention: `attn explain --json` recomputed from the `attn dump --qkv` files on every architecture,
//! value-weighted norms against transformers (scripts/golden/make_value_weighted_fixtures.py), the embedding parts
//! adding up to hidden[0], and the block walk ending at hidden[l + 1].

mod common;

use attn::explain::run as ex;
use attn::model::{self, Model, TextbookConfig};
use attn::trace::ForwardOptions;
use common::{Npy, max_abs_diff, real_model, repo};
use ndarray::{ArrayD, IxDyn};
use std::path::Path;
use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_attn"))
}

fn ok(out: std::process::Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn floats(v: &serde_json::Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

fn at(a: &ArrayD<f32>, idx: &[usize]) -> f32 {
    a[IxDyn(idx)]
}

/// `attn explain --json` for (layer, head, query) against the `--qkv` dump of the same input: q and k equal the
/// dump's, the weight equals attention.npy's, and the whole row and z are recomputed from q, k, v.
fn check(model_args: &[&str], text: &str, layer: usize, head: usize, query: usize) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("d");
    ok(bin()
        .arg("dump")
        .args(model_args)
        .args(["-t", text, "--qkv", "-o"])
        .arg(&out)
        .output()
        .unwrap());
    let json = ok(bin()
        .arg("explain")
        .args(model_args)
        .args(["-t", text, "--json"])
        .args(["--layer", &layer.to_string(), "--head", &head.to_string()])
        .args(["--query", &query.to_string()])
        .output()
        .unwrap());
    let c: serde_json::Value = serde_json::from_str(&json).unwrap();
    let npy = |w: &str| Npy::read(&out.join(format!("{w}.npy"))).f32();
    let (q, k, v, z, att) = (npy("q"), npy("k"), npy("v"), npy("z"), npy("attention"));
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("meta.json")).unwrap()).unwrap();
    let (heads, kv_heads) = (q.shape()[1], k.shape()[1]);
    let g = head / (heads / kv_heads);
    let n = q.shape()[2];
    let d = q.shape()[3];
    let key = c["key"].as_u64().unwrap() as usize;
    let label = format!("{model_args:?} L{layer} H{head} q{query} k{key}");
    assert_eq!(c["layer"], layer);
    if kv_heads != heads {
        assert_eq!(c["kv_head"], g, "{label}");
    } else {
        assert!(c.get("kv_head").is_none());
    }
    let (cq, ck) = (floats(&c["q"]), floats(&c["k"]));
    for i in 0..d {
        assert_eq!(cq[i], at(&q, &[layer, head, query, i]), "{label}: q[{i}]");
        assert_eq!(ck[i], at(&k, &[layer, g, key, i]), "{label}: k[{i}]");
    }
    let w = c["weight"].as_f64().unwrap() as f32;
    let want = at(&att, &[layer, head, query, key]);
    assert!((w - want).abs() <= 1e-6, "{label}: weight {w} vs {want}");
    // The key defaults to the heaviest.
    let row: Vec<f32> = (0..n).map(|j| at(&att, &[layer, head, query, j])).collect();
    let max = row.iter().copied().fold(f32::MIN, f32::max);
    assert_eq!(row[key], max, "{label}: not the heaviest key");
    // Recompute the row from the dump: q·k · scale, the causal mask, softmax; then z = Σ α v.
    let scale = c["scale"].as_f64().unwrap() as f32;
    assert!((scale - 1.0 / (d as f32).sqrt()).abs() < 1e-6);
    let causal = meta["causal"].as_bool().unwrap();
    let scaled: Vec<Option<f32>> = (0..n)
        .map(|j| {
            (!(causal && j > query)).then(|| {
                (0..d)
                    .map(|i| at(&q, &[layer, head, query, i]) * at(&k, &[layer, g, j, i]))
                    .sum::<f32>()
                    * scale
            })
        })
        .collect();
    let rs = c["row_scaled"].as_array().unwrap();
    let rw = floats(&c["row_weights"]);
    for j in 0..n {
        match scaled[j] {
            None => assert!(rs[j].is_null() && rw[j] == 0.0, "{label}: masked {j}"),
            Some(s) => {
                let got = rs[j].as_f64().unwrap() as f32;
                assert!(
                    (got - s).abs() <= 1e-4 * s.abs().max(1.0),
                    "{label}: scaled {j}"
                );
                assert!((rw[j] - row[j]).abs() <= 1e-6, "{label}: row weight {j}");
            }
        }
    }
    let cz = floats(&c["z"]);
    assert_eq!(cz.len(), d);
    for (i, czi) in cz.iter().enumerate() {
        let want = at(&z, &[layer, head, query, i]);
        let re: f32 = (0..n).map(|j| rw[j] * at(&v, &[layer, g, j, i])).sum();
        assert!(
            (czi - want).abs() <= 1e-5 * want.abs().max(1.0),
            "{label}: z[{i}]"
        );
        assert!(
            (czi - re).abs() <= 1e-5 * re.abs().max(1.0),
            "{label}: z[{i}] recomputed"
        );
    }
    assert_eq!(floats(&c["v"]).len(), d);
    let ho = floats(&c["head_out"]);
    assert_eq!(ho.len(), meta["d_model"].as_u64().unwrap() as usize);
    let qk = floats(&c["qk"]);
    let score = c["score"].as_f64().unwrap() as f32;
    assert!((qk.iter().sum::<f32>() - score).abs() <= 1e-4 * score.abs().max(1.0));
    for f in ["scaled", "masked", "row_max", "exp_sum"] {
        assert!(c.get(f).is_some(), "{label}: no `{f}`");
    }
}

const TINY: &[&str] = &[
    "-m",
    "textbook",
    "--layers",
    "2",
    "--heads",
    "2",
    "--d-model",
    "8",
    "--d-ff",
    "16",
];

#[test]
fn explain_matches_the_dump_on_the_textbook_model() {
    check(TINY, "I love AI", 1, 1, 2);
    let causal: Vec<&str> = TINY.iter().copied().chain(["--causal"]).collect();
    check(&causal, "I love AI", 0, 0, 3);
}

#[test]
fn explain_matches_the_dump_on_the_fixtures() {
    let bert = repo().join("fixtures/tiny-bert");
    let gpt2 = repo().join("fixtures/tiny-gpt2");
    let llama = repo().join("fixtures/tiny-llama.gguf");
    check(
        &["-m", bert.to_str().unwrap()],
        "the cat sat on the mat",
        1,
        2,
        3,
    );
    check(
        &["-m", gpt2.to_str().unwrap()],
        "The cat sat on the mat",
        1,
        3,
        5,
    );
    // GQA (6 heads over 2 KV heads) and rotary.
    check(
        &["-m", llama.to_str().unwrap()],
        "hello world, hello",
        1,
        4,
        3,
    );
}

#[test]
fn explain_matches_the_dump_on_real_models() {
    if let Some(p) = real_model("minilm") {
        check(
            &["-m", p.to_str().unwrap()],
            "The cat sat on the mat because it was tired.",
            2,
            8,
            8,
        );
    }
    if let Some(p) = real_model("smollm2.gguf") {
        check(
            &["-m", p.to_str().unwrap()],
            "The capital of France is",
            3,
            2,
            4,
        );
    }
}

#[test]
fn explain_text_and_errors() {
    let text = ok(bin()
        .arg("explain")
        .args(TINY)
        .args([
            "--causal",
            "-t",
            "I love AI",
            "--layer",
            "0",
            "--head",
            "1",
            "--query",
            "1",
            "--key",
            "3",
        ])
        .output()
        .unwrap());
    assert!(text.contains("masked: key 3 comes after query 1"), "{text}");
    assert!(text.contains("Σ exp ="), "{text}");
    let bad = bin()
        .arg("explain")
        .args(TINY)
        .args(["-t", "I love AI", "--layer", "9"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("out of range"));
    let bad = bin()
        .arg("explain")
        .args(TINY)
        .args(["-t", "I love AI", "--query", "99"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
}

fn load(p: &Path) -> Box<dyn Model> {
    model::load(p.to_str().unwrap(), &TextbookConfig::default()).unwrap()
}

/// Value-weighted norms of every layer from the engine against transformers' (hooks on the value projection).
fn value_weighted_case(m: &dyn Model, ids: &[u32], types: &[u32], want: &Path) {
    let enc = attn::tokenize::Encoded {
        ids: ids.to_vec(),
        type_ids: types.to_vec(),
        tokens: vec![],
    };
    let mut opts = ForwardOptions::default();
    ex::value_weighted_hooks(&mut opts, m.info().n_layers);
    let mut t = m.forward(&enc, &opts).unwrap();
    let got = ex::value_weighted_all(m, &mut t, false).unwrap();
    let want = Npy::read(want).f32();
    let scale = want.iter().fold(0.0f32, |a, b| a.max(b.abs()));
    let d = max_abs_diff(&got, &want);
    assert!(
        d <= 1e-4 * scale.max(1.0),
        "{}: max |Δ| {d:e} (scale {scale})",
        m.info().name
    );
    assert!(t.captures.is_empty(), "the captures it read are dropped");
}

fn ids(p: &Path) -> Vec<u32> {
    Npy::read(p).i64().into_iter().map(|x| x as u32).collect()
}

#[test]
fn value_weighted_norms_match_transformers() {
    let gold = repo().join("fixtures/golden");
    for (folder, gdir, cases) in [
        ("fixtures/tiny-bert", "tiny-bert", vec!["cat", "pair"]),
        ("fixtures/tiny-gpt2", "tiny-gpt2", vec!["cat", "hello"]),
    ] {
        let m = load(&repo().join(folder));
        for c in cases {
            let g = gold.join(gdir);
            let i = ids(&g.join(format!("{c}_ids.npy")));
            let ty = if gdir == "tiny-bert" {
                ids(&g.join(format!("{c}_type_ids.npy")))
            } else {
                vec![0; i.len()]
            };
            value_weighted_case(
                m.as_ref(),
                &i,
                &ty,
                &g.join(format!("{c}_value_weighted.npy")),
            );
        }
    }
    let m = load(&repo().join("fixtures/tiny-llama.gguf"));
    for c in ["s0", "s1"] {
        let i = ids(&gold.join(format!("tiny_llama_{c}_ids.npy")));
        let ty = vec![0; i.len()];
        value_weighted_case(
            m.as_ref(),
            &i,
            &ty,
            &gold.join(format!("tiny_llama_{c}_value_weighted.npy")),
        );
    }
    if let Some(p) = real_model("minilm") {
        let m = load(&p);
        let g = gold.join("minilm");
        for c in ["english", "korean"] {
            let i = ids(&g.join(format!("{c}_ids.npy")));
            let ty = ids(&g.join(format!("{c}_type_ids.npy")));
            value_weighted_case(
                m.as_ref(),
                &i,
                &ty,
                &g.join(format!("{c}_value_weighted.npy")),
            );
        }
    }
}

#[test]
fn dump_writes_value_weighted_and_mlp_files() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("d");
    ok(bin()
        .arg("dump")
        .args(TINY)
        .args(["-t", "I love AI", "--value-weighted", "--mlp", "-o"])
        .arg(&out)
        .output()
        .unwrap());
    let vw = Npy::read(&out.join("value_weighted.npy")).f32();
    let att = Npy::read(&out.join("attention.npy")).f32();
    assert_eq!(vw.shape(), att.shape());
    // Zero weight ⇔ zero norm; everything non-negative.
    assert!(
        vw.iter()
            .zip(att.iter())
            .all(|(v, a)| *v >= 0.0 && ((*a == 0.0) == (*v == 0.0)))
    );
    let mlp = Npy::read(&out.join("mlp_post.npy")).f32();
    assert_eq!(mlp.shape(), &[2, 5, 16]);
    assert!(mlp.iter().all(|x| *x >= 0.0), "ReLU activations");
    assert!(!out.join("attn_pattern.npy").exists() && !out.join("v.npy").exists());
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("meta.json")).unwrap()).unwrap();
    assert_eq!(
        meta["captured"],
        serde_json::json!(["mlp_post.npy", "value_weighted.npy"])
    );
}

fn models() -> Vec<Box<dyn Model>> {
    let mut v: Vec<Box<dyn Model>> = vec![
        model::load(
            "textbook",
            &TextbookConfig {
                layers: 2,
                heads: 2,
                d_model: 8,
                d_ff: 16,
                ..Default::default()
            },
        )
        .unwrap(),
        load(&repo().join("fixtures/tiny-bert")),
        load(&repo().join("fixtures/tiny-gpt2")),
        load(&repo().join("fixtures/tiny-llama.gguf")),
    ];
    if let Some(p) = real_model("minilm") {
        v.push(load(&p));
    }
    if let Some(p) = real_model("smollm2.gguf") {
        v.push(load(&p));
    }
    v
}

#[test]
fn embedding_parts_add_up_to_hidden_0_and_the_block_walk_to_hidden_l_plus_1() {
    for m in models() {
        let name = m.info().name.clone();
        let t0 = model::run(m.as_ref(), "The cat sat.", None, &ForwardOptions::default()).unwrap();
        for tok in 0..t0.n_tokens() {
            let e = ex::embedding(m.as_ref(), &t0, tok).unwrap();
            let want = t0.hidden[0].row(tok);
            let d = e
                .output()
                .iter()
                .zip(want.iter())
                .map(|(a, b)| (a - b).abs())
                .fold(0.0f32, f32::max);
            assert!(
                d <= 1e-6,
                "{name}: token {tok}: embedding parts vs hidden[0]: {d:e}"
            );
        }
        let l = m.info().n_layers - 1;
        let t = ex::with_layer(m.as_ref(), &t0, l).unwrap();
        let tok = t.n_tokens() - 1;
        let w_o = ex::w_o(m.as_ref(), l).unwrap();
        let w = ex::block_walk(m.as_ref(), &t, &w_o, l, tok).unwrap();
        let last = w.steps.last().unwrap();
        let want = t0.hidden[l + 1].row(tok);
        let d = last
            .values
            .iter()
            .zip(want.iter())
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(d <= 1e-5, "{name}: block walk vs hidden[{}]: {d:e}", l + 1);
        assert_eq!(w.steps[0].values, t0.hidden[l].row(tok).to_vec());
        // The norms of the walk match the residual-norm view's.
        let norms = attn::analysis::layer_norms(&t0, Some(tok));
        assert!((w.steps[0].norm - norms[l].resid_in).abs() <= 1e-4 * norms[l].resid_in);
        assert_eq!(w.head_norms.len(), m.info().n_heads);
    }
}

/// Capturing one layer runs that block alone (`stop_after`): the same captures as a full run, nothing after it.
#[test]
fn capturing_one_layer_runs_only_that_block() {
    let m = load(&repo().join("fixtures/tiny-llama.gguf"));
    let full_opts = {
        let mut o = ForwardOptions::default();
        o.hooks.capture_all(attn::trace::HookPoint::AttnQ, 2);
        o.hooks.capture_all(attn::trace::HookPoint::ResidPost, 2);
        o
    };
    let full = model::run(m.as_ref(), "hello world, hello", None, &full_opts).unwrap();
    let t0 = model::run(
        m.as_ref(),
        "hello world, hello",
        None,
        &ForwardOptions::default(),
    )
    .unwrap();
    let one = ex::with_layer(m.as_ref(), &t0, 0).unwrap();
    assert_eq!(one.n_layers(), 1, "block 1 was not run");
    assert_eq!(one.hidden.len(), 2);
    assert_eq!(one.captures.q(0).unwrap(), full.captures.q(0).unwrap());
    assert_eq!(
        one.captures
            .view2(attn::trace::HookPoint::ResidPost, 0)
            .unwrap(),
        full.hidden[1].view()
    );
    assert!(one.captures.q(1).is_none());
}
