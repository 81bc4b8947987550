//! Parity of the Hugging Face encoder–decoder loaders with transformers (eager, fp32) on the tiny random folders of
//! scripts/golden/make_encdec_fixtures.py: every attention ≤ 1e-4, hidden states ≤ 1e-4 relative, greedy ids equal.

mod common;

use attn::model::encdec::EncoderDecoder;
use attn::model::{TextbookConfig, load_encoder_decoder};
use attn::trace::ForwardOptions;
use common::{Npy, max_abs_diff, repo};
use ndarray::{ArrayD, Axis, stack};

fn ids(n: &Npy) -> Vec<u32> {
    n.i64().into_iter().map(|v| v as u32).collect()
}

fn rel(a: &ArrayD<f32>, b: &ArrayD<f32>) -> f32 {
    let scale = b.iter().fold(0.0f32, |m, v| m.max(v.abs())).max(1e-6);
    max_abs_diff(a, b) / scale
}

fn load(name: &str) -> EncoderDecoder {
    let dir = repo().join("fixtures").join(name);
    load_encoder_decoder(dir.to_str().unwrap(), &TextbookConfig::default(), None)
        .unwrap()
        .expect("an encoder–decoder folder")
}

fn check(name: &str) {
    let m = load(name);
    let gold_dir = repo().join("fixtures/golden").join(name);
    let cases: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(gold_dir.join("cases.json")).unwrap())
            .unwrap();
    let opts = ForwardOptions {
        keep_attention: true,
        ..Default::default()
    };
    for case in cases.as_array().unwrap() {
        let c = case["name"].as_str().unwrap();
        let g = |w: &str| Npy::read(&gold_dir.join(format!("{c}_{w}.npy")));
        let src = m.encode_source(case["source"].as_str().unwrap()).unwrap();
        let tgt = m.decoder_input(case["target"].as_str().unwrap()).unwrap();
        assert_eq!(src.ids, ids(&g("src_ids")), "{name} {c}: source ids");
        assert_eq!(tgt.ids, ids(&g("dec_in_ids")), "{name} {c}: decoder input");
        let t = m.forward(&src, &tgt, &opts).unwrap();
        let st3 = |v: Vec<&ndarray::Array3<f32>>| -> ArrayD<f32> {
            let views: Vec<_> = v.iter().map(|a| a.view()).collect();
            stack(Axis(0), &views).unwrap().into_dyn()
        };
        let st2 = |v: &[ndarray::Array2<f32>]| -> ArrayD<f32> {
            let views: Vec<_> = v.iter().map(|a| a.view()).collect();
            stack(Axis(0), &views).unwrap().into_dyn()
        };
        let enc = st3(t
            .source
            .layers
            .iter()
            .map(|l| l.attention.as_ref().unwrap())
            .collect());
        let dec = st3(t
            .target
            .layers
            .iter()
            .map(|l| l.attention.as_ref().unwrap())
            .collect());
        let cross = st3(t
            .target
            .layers
            .iter()
            .map(|l| l.cross_attention.as_ref().unwrap())
            .collect());
        for (what, ours) in [
            ("encoder_attentions", enc),
            ("decoder_attentions", dec),
            ("cross_attentions", cross),
        ] {
            let d = max_abs_diff(&ours, &g(what).f32());
            println!("{name} {c} {what}: max |Δ| {d:.2e}");
            assert!(d <= 1e-4, "{name} {c} {what}: max |Δ| {d}");
        }
        for (what, ours) in [
            ("encoder_hidden", st2(&t.source.hidden)),
            ("decoder_hidden", st2(&t.target.hidden)),
            ("logits", t.logits.clone().into_dyn()),
        ] {
            let r = rel(&ours, &g(what).f32());
            println!("{name} {c} {what}: relative max |Δ| {r:.2e}");
            assert!(r <= 1e-4, "{name} {c} {what}: relative max |Δ| {r}");
        }
        let greedy = m.greedy(&src, 8).unwrap();
        assert_eq!(greedy, ids(&g("greedy_ids")), "{name} {c}: greedy ids");
    }
}

#[test]
fn bart_matches_transformers() {
    check("tiny-bart");
}

#[test]
fn t5_relu_tied_matches_transformers() {
    check("tiny-t5");
}

/// The fixture exercises the relative bias: every head's encoder bias and decoder bias varies with the distance
/// (the parity above would not notice a bias that is missing if the fixture's table were all zeros).
#[test]
fn t5_fixtures_have_a_visible_relative_bias() {
    for name in ["tiny-t5", "tiny-t5-gated"] {
        let m = load(name);
        for (side, bias) in [("encoder", &m.enc_bias), ("decoder", &m.dec_bias)] {
            let b = bias.as_ref().expect("T5 has a relative bias").bias(12, 12);
            for (h, head) in b.outer_iter().enumerate() {
                let (lo, hi) = head
                    .iter()
                    .fold((f32::MAX, f32::MIN), |(l, u), &v| (l.min(v), u.max(v)));
                assert!(
                    hi - lo > 0.5,
                    "{name} {side} head {h}: bias spans only {lo}..{hi}"
                );
            }
        }
    }
}

#[test]
fn t5_gated_gelu_untied_matches_transformers() {
    check("tiny-t5-gated");
}

#[test]
fn marian_matches_transformers() {
    check("tiny-marian");
}

use common::{attn_without_models as attn_bin, attn_without_models_ok as attn_ok};

/// `attn info`, `attn generate --json` and `attn dump --target` on the T5 and Marian folders, through the binary:
/// the dump's arrays equal transformers' and the generated ids are its greedy ids.
#[test]
fn binary_opens_t5_and_marian_folders() {
    for (name, arch, positional) in [
        ("tiny-t5", "t5", "relative"),
        ("tiny-t5-gated", "t5", "relative"),
        ("tiny-marian", "marian", "sinusoidal"),
    ] {
        let folder = repo().join("fixtures").join(name);
        let folder = folder.to_str().unwrap();
        let gold_dir = repo().join("fixtures/golden").join(name);
        let cases: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(gold_dir.join("cases.json")).unwrap())
                .unwrap();
        let case = &cases[0];
        let (c, source, target) = (
            case["name"].as_str().unwrap(),
            case["source"].as_str().unwrap(),
            case["target"].as_str().unwrap(),
        );
        let g = |w: &str| Npy::read(&gold_dir.join(format!("{c}_{w}.npy")));

        let info = attn_ok(&["info", "--model", folder]);
        assert!(info.contains(arch), "{name}: info names {arch}:\n{info}");
        assert!(info.contains("(encoder–decoder:"), "{name}:\n{info}");
        if name == "tiny-t5" {
            // d_kv 16 × 4 heads is not d_model 32: the head width is T5's own.
            assert!(info.contains("d_model       32 (head dim 16)"), "{info}");
        }

        let out = attn_ok(&[
            "generate",
            "--model",
            folder,
            "--text",
            source,
            "--max-new",
            "8",
            "--json",
        ]);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        let got: Vec<u32> = v["ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap() as u32)
            .collect();
        assert_eq!(got, ids(&g("greedy_ids")), "{name}: generate --json ids");

        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("d");
        let out_s = out.to_str().unwrap();
        let dump = [
            "dump", "--model", folder, "--text", source, "--target", target, "--out", out_s,
        ];
        attn_ok(&dump);
        let meta: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("meta.json")).unwrap()).unwrap();
        assert_eq!(meta["kind"], "encoder-decoder", "{name}");
        assert_eq!(meta["architecture"], arch, "{name}");
        assert_eq!(meta["positional"], positional, "{name}");
        let files: Vec<&str> = meta["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f.as_str().unwrap())
            .collect();
        assert_eq!(files.len(), 9, "{name}: manifest {files:?}");
        assert!(files.contains(&"cross_attention.npy") && files.contains(&"meta.json"));
        for (file, golden) in [
            ("attention.npy", "encoder_attentions"),
            ("decoder_attention.npy", "decoder_attentions"),
            ("cross_attention.npy", "cross_attentions"),
        ] {
            let d = max_abs_diff(&Npy::read(&out.join(file)).f32(), &g(golden).f32());
            assert!(d <= 1e-4, "{name} {file}: max |Δ| {d}");
        }
        for (file, golden) in [
            ("hidden.npy", "encoder_hidden"),
            ("decoder_hidden.npy", "decoder_hidden"),
            ("logits.npy", "logits"),
        ] {
            let r = rel(&Npy::read(&out.join(file)).f32(), &g(golden).f32());
            assert!(r <= 1e-4, "{name} {file}: relative max |Δ| {r}");
        }
        // A second dump into the same folder is refused, and replaces the first with --force.
        assert!(
            !attn_bin(&dump).status.success(),
            "{name}: overwrite without --force"
        );
        let mut forced = dump.to_vec();
        forced.push("--force");
        attn_ok(&forced);
    }
}

/// A Marian folder as the Hub ships it (SentencePiece files, no tokenizer.json): the error names the folder and the
/// conversion script.
#[test]
fn folder_without_tokenizer_json_names_the_conversion_script() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("opus-mt-xx-yy");
    std::fs::create_dir(&folder).unwrap();
    let src = repo().join("fixtures/tiny-marian");
    for f in ["config.json", "model.safetensors"] {
        std::fs::copy(src.join(f), folder.join(f)).unwrap();
    }
    std::fs::write(folder.join("source.spm"), b"not read").unwrap();
    std::fs::write(folder.join("vocab.json"), b"{}").unwrap();
    let folder_s = folder.to_str().unwrap();
    let err = match load_encoder_decoder(folder_s, &TextbookConfig::default(), None) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("a folder without tokenizer.json loaded"),
    };
    for want in [
        folder_s,
        "no tokenizer.json",
        "source.spm",
        "scripts/convert-marian-tokenizer",
    ] {
        assert!(err.contains(want), "`{want}` missing from: {err}");
    }
    let o = attn_bin(&["generate", "--model", folder_s, "--text", "hi"]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && stderr.contains("scripts/convert-marian-tokenizer"),
        "{stderr}"
    );
}

/// The cross-attention hook points `cross.q/k/v/z` of every decoder layer against transformers' projections
/// (scripts/golden/make_cross_hook_fixtures.py) ≤ 1e-4.
#[test]
fn cross_attention_hook_points_match_transformers() {
    use attn::trace::HookPoint;
    for name in ["tiny-bart", "tiny-t5", "tiny-marian"] {
        let m = load(name);
        let gold_dir = repo().join("fixtures/golden").join(name);
        let cases: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(gold_dir.join("cases.json")).unwrap())
                .unwrap();
        let layers = m.decoder.blocks.len();
        let mut opts = ForwardOptions::default();
        let points = [
            ("q", HookPoint::CrossQ),
            ("k", HookPoint::CrossK),
            ("v", HookPoint::CrossV),
            ("z", HookPoint::CrossZ),
        ];
        for (_, p) in points {
            opts.hooks.capture_all(p, layers);
        }
        for case in cases.as_array().unwrap() {
            let c = case["name"].as_str().unwrap();
            let g = |w: &str| Npy::read(&gold_dir.join(format!("{c}_{w}.npy")));
            let src = m.encode_source(case["source"].as_str().unwrap()).unwrap();
            let tgt = m.decoder_input(case["target"].as_str().unwrap()).unwrap();
            let t = m.forward(&src, &tgt, &opts).unwrap();
            for (w, p) in points {
                let per_layer: Vec<_> = (0..layers)
                    .map(|l| t.target.captures.view3(p, l).unwrap())
                    .collect();
                let ours = stack(Axis(0), &per_layer).unwrap().into_dyn();
                let want = g(&format!("cross_{w}")).f32();
                assert_eq!(ours.shape(), want.shape(), "{name} {c} cross.{w}");
                let d = max_abs_diff(&ours, &want);
                assert!(d <= 1e-4, "{name} {c} cross.{w}: {d}");
            }
        }
    }
}
