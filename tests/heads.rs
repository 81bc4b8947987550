//! Issue 13, phase 1: `attn dump --rollout` against numpy's rollout of transformers' attention, `--ids` fed exactly,
//! and `attn heads` scores recomputed from a dump of the probe ids.

mod common;

use common::{
    Npy, attn_ok as ok, json_u64s, max_abs_diff, read_json, real_model, repo, run_attn as attn,
};
use ndarray::{Axis, Ix4};

fn fixture(rel: &str) -> String {
    repo().join(rel).display().to_string()
}

fn golden(name: &str) -> serde_json::Value {
    read_json(&repo().join("fixtures/golden/heads").join(name))
}

#[test]
fn rollout_matches_numpy_on_transformers_attention() {
    let g = golden("tiny_gpt2.json");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("d");
    let o = out.display().to_string();
    let model = fixture("fixtures/tiny-gpt2");
    let text = g["prompt"].as_str().unwrap();
    ok(&[
        "dump",
        "--model",
        &model,
        "--text",
        text,
        "--out",
        &o,
        "--rollout",
    ]);
    let ours = Npy::read(&out.join("rollout.npy")).f32();
    let want = Npy::read(&repo().join("fixtures/golden/heads/tiny_gpt2_rollout.npy")).f32();
    assert_eq!(ours.shape(), want.shape());
    let d = max_abs_diff(&ours, &want);
    assert!(d < 1e-5, "rollout differs from numpy by {d}");
    // A second dump into the same folder refuses to overwrite rollout.npy; --force replaces it.
    let again = attn(&[
        "dump",
        "--model",
        &model,
        "--text",
        text,
        "--out",
        &o,
        "--rollout",
    ]);
    assert!(!again.status.success());
    ok(&[
        "dump",
        "--model",
        &model,
        "--text",
        text,
        "--out",
        &o,
        "--rollout",
        "--force",
    ]);
}

#[test]
fn ids_are_fed_exactly_and_checked() {
    let g = golden("tiny_llama.json");
    let model = fixture("fixtures/tiny-llama.gguf");
    // The text adds BOS (id 1); --ids without it feeds exactly what is given.
    let ids = json_u64s(&g["ids"], None);
    assert_eq!(ids[0], 1);
    let rest: Vec<String> = ids[1..].iter().map(u64::to_string).collect();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("d");
    ok(&[
        "dump",
        "--model",
        &model,
        "--ids",
        &rest.join(","),
        "--out",
        &out.display().to_string(),
    ]);
    let got = json_u64s(&read_json(&out.join("tokens.json")), Some("id"));
    assert_eq!(got, ids[1..]);
    let show = ok(&[
        "show",
        "--model",
        &model,
        "--ids",
        " 1, 299,226",
        "--color",
        "never",
    ]);
    assert!(show.contains("3 tokens"), "{show}");
    let bad = attn(&["show", "--model", &model, "--ids", "1,99999"]);
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        !bad.status.success() && err.contains("99999") && err.contains("vocabulary"),
        "{err}"
    );
    let bad = attn(&["show", "--model", &model, "--ids", "1,x"]);
    assert!(!bad.status.success());
}

/// The JSON's scores equal a recomputation from `attn dump --ids <probe>`'s attention.npy.
fn check_scores_from_dump(model: &str) -> serde_json::Value {
    let doc: serde_json::Value =
        serde_json::from_str(&ok(&["heads", "--model", model, "--json"])).unwrap();
    let probe: Vec<String> = json_u64s(&doc["probe"]["ids"], None)
        .iter()
        .map(u64::to_string)
        .collect();
    let t = probe.len() / 2;
    assert!(
        t >= 2 && probe[..t] == probe[t..],
        "the probe repeats its first half"
    );
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("d");
    ok(&[
        "dump",
        "--model",
        model,
        "--ids",
        &probe.join(","),
        "--out",
        &out.display().to_string(),
    ]);
    let att = Npy::read(&out.join("attention.npy"))
        .f32()
        .into_dimensionality::<Ix4>()
        .unwrap();
    let heads = doc["heads"].as_array().unwrap();
    assert_eq!(heads.len(), att.shape()[0] * att.shape()[1]);
    let n = 2 * t;
    for h in heads {
        let (l, hd) = (
            h["layer"].as_u64().unwrap() as usize,
            h["head"].as_u64().unwrap() as usize,
        );
        let a = att.index_axis(Axis(0), l);
        let a = a.index_axis(Axis(0), hd);
        let mean = |v: Vec<f32>| v.iter().map(|x| *x as f64).sum::<f64>() / v.len() as f64;
        let induction = mean((t..n).map(|i| a[[i, i - t + 1]]).collect());
        let previous = mean((2..n).map(|i| a[[i, i - 1]]).collect());
        let sink = mean((1..n).map(|i| a[[i, 0]]).collect());
        let selfw = mean((1..n).map(|i| a[[i, i]]).collect());
        for (key, want) in [
            ("induction", induction),
            ("previous", previous),
            ("sink", sink),
            ("self", selfw),
        ] {
            let got = h[key].as_f64().unwrap();
            assert!(
                (got - want).abs() < 1e-4,
                "L{l}.H{hd} {key}: {got} vs {want}"
            );
        }
    }
    doc
}

#[test]
fn head_scores_match_a_dump_of_the_probe_ids() {
    check_scores_from_dump(&fixture("fixtures/tiny-llama.gguf"));
    // The human-readable form names the probe and lists the top heads.
    let text = ok(&[
        "heads",
        "--model",
        &fixture("fixtures/tiny-gpt2"),
        "--text",
        "the cat the cat",
    ]);
    assert!(
        text.contains("random tokens repeated twice") && text.contains("top induction"),
        "{text}"
    );
}

#[test]
fn smollm2_has_clear_induction_heads() {
    let Some(p) = real_model("smollm2.gguf") else {
        return;
    };
    let doc = check_scores_from_dump(&p.display().to_string());
    let heads = doc["heads"].as_array().unwrap();
    assert_eq!(doc["probe"]["ids"].as_array().unwrap().len(), 100);
    let strong = heads
        .iter()
        .filter(|h| h["induction"].as_f64().unwrap() > 0.5)
        .count();
    assert!(strong >= 3, "{strong} heads with induction > 0.5");
    let weak = heads
        .iter()
        .filter(|h| h["induction"].as_f64().unwrap() < 0.05)
        .count();
    assert!(weak > heads.len() / 2, "most heads are not induction heads");
}

#[test]
fn generate_sweep_and_attribute_commands_print_their_json() {
    let g = golden("tiny_gpt2.json");
    let model = fixture("fixtures/tiny-gpt2");
    let prompt = g["prompt"].as_str().unwrap();
    let doc: serde_json::Value = serde_json::from_str(&ok(&[
        "generate",
        "--model",
        &model,
        "--text",
        prompt,
        "--max-new",
        "10",
        "--json",
    ]))
    .unwrap();
    assert_eq!(doc["ids"], g["generate"]["new_ids"]);
    assert!(doc["text"].is_string());
    // --out dumps prompt + continuation.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("gen");
    ok(&[
        "generate",
        "--model",
        &model,
        "--text",
        prompt,
        "--max-new",
        "3",
        "--out",
        &out.display().to_string(),
    ]);
    let got = json_u64s(&read_json(&out.join("tokens.json")), Some("id"));
    let mut want = json_u64s(&g["ids"], None);
    want.extend(
        g["generate"]["new_ids"].as_array().unwrap()[..3]
            .iter()
            .map(|v| v.as_u64().unwrap()),
    );
    assert_eq!(got, want);
    let sampled = |seed: &str| {
        ok(&[
            "generate",
            "--model",
            &model,
            "--text",
            prompt,
            "--max-new",
            "6",
            "--temperature",
            "1.5",
            "--top-k",
            "20",
            "--sample-seed",
            seed,
            "--json",
        ])
    };
    assert_eq!(
        sampled("3"),
        sampled("3"),
        "the same seed samples the same ids"
    );
    let sweep: serde_json::Value = serde_json::from_str(&ok(&[
        "sweep", "--model", &model, "--text", prompt, "--json",
    ]))
    .unwrap();
    assert_eq!(sweep["heads"].as_array().unwrap().len(), 8);
    assert_eq!(sweep["token"], g["clean_top"]);
    let at: serde_json::Value = serde_json::from_str(&ok(&[
        "attribute",
        "--model",
        &model,
        "--text",
        prompt,
        "--json",
    ]))
    .unwrap();
    let sum: f64 = at["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["value"].as_f64().unwrap())
        .sum();
    assert!((sum - at["logit"].as_f64().unwrap()).abs() < 1e-3);
    assert!(
        (at["logit"].as_f64().unwrap() - g["attribution"]["logit"].as_f64().unwrap()).abs() < 1e-3
    );
    // An encoder cannot generate.
    let enc = attn(&[
        "generate",
        "--model",
        &fixture("fixtures/tiny-bert"),
        "--text",
        "hi",
    ]);
    assert!(!enc.status.success());
}
