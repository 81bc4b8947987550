//! Bad Hugging Face folders: every broken file is a clear error naming what is wrong, never a panic.
//! Each case copies a fixture folder into a temporary directory and breaks one thing.

mod common;

use attn::model::{self, Model, TextbookConfig};
use attn::trace::ForwardOptions;
use attn::weights::safetensors::{SafeTensors, serialize};
use std::path::{Path, PathBuf};

fn fixture(name: &str) -> PathBuf {
    common::repo().join("fixtures").join(name)
}

/// A temporary copy of a fixture folder.
fn copy(name: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join(name);
    std::fs::create_dir(&dir).unwrap();
    for f in ["config.json", "model.safetensors", "tokenizer.json"] {
        std::fs::copy(fixture(name).join(f), dir.join(f)).unwrap();
    }
    (tmp, dir)
}

fn load(dir: &Path) -> attn::Result<Box<dyn Model>> {
    model::load(dir.to_str().unwrap(), &TextbookConfig::default())
}

fn load_err(dir: &Path) -> String {
    match load(dir) {
        Ok(_) => panic!("{} must not load", dir.display()),
        Err(e) => e.to_string(),
    }
}

/// Edit config.json as JSON.
fn edit_config(dir: &Path, f: impl FnOnce(&mut serde_json::Map<String, serde_json::Value>)) {
    let p = dir.join("config.json");
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
    f(v.as_object_mut().unwrap());
    std::fs::write(&p, serde_json::to_string_pretty(&v).unwrap()).unwrap();
}

/// Rewrite model.safetensors: `edit` gets `(name, dtype, shape, bytes)` of every tensor and may change or drop it.
fn edit_weights(
    dir: &Path,
    mut edit: impl FnMut(&str, &mut String, &mut Vec<usize>, &mut Vec<u8>) -> bool,
) {
    let p = dir.join("model.safetensors");
    let bytes = std::fs::read(&p).unwrap();
    let st = SafeTensors::from_bytes(bytes.clone(), "orig").unwrap();
    let mut out = Vec::new();
    for name in st.names() {
        let info = st.info(name).unwrap();
        let mut dtype = info.dtype.name().to_string();
        let mut shape = info.shape.clone();
        let mut data = bytes[info.start..info.end].to_vec();
        if edit(name, &mut dtype, &mut shape, &mut data) {
            out.push((name.to_string(), dtype, shape, data));
        }
    }
    let refs: Vec<(&str, &str, Vec<usize>, Vec<u8>)> = out
        .iter()
        .map(|(n, d, s, b)| (n.as_str(), d.as_str(), s.clone(), b.clone()))
        .collect();
    std::fs::write(&p, serialize(&refs)).unwrap();
}

#[test]
fn truncated_weights_at_many_offsets_are_errors() {
    let (_tmp, dir) = copy("tiny-bert");
    let full = std::fs::read(dir.join("model.safetensors")).unwrap();
    let header_end = 8 + u64::from_le_bytes(full[..8].try_into().unwrap()) as usize;
    // Every offset through the header, then a stride through the data, then the last bytes.
    let mut cuts: Vec<usize> = (0..header_end + 16).step_by(3).collect();
    cuts.extend((header_end..full.len()).step_by(397));
    cuts.extend(full.len() - 8..full.len());
    for cut in cuts {
        std::fs::write(dir.join("model.safetensors"), &full[..cut]).unwrap();
        let e = load_err(&dir);
        assert!(e.contains("model.safetensors"), "cut at {cut}: {e}");
    }
}

#[test]
fn corrupted_weight_bytes_never_panic() {
    let (_tmp, dir) = copy("tiny-gpt2");
    let full = std::fs::read(dir.join("model.safetensors")).unwrap();
    // Flip bytes across the header (JSON syntax, numbers, names) and the length prefix.
    let header_end = 8 + u64::from_le_bytes(full[..8].try_into().unwrap()) as usize;
    for pos in (0..header_end).step_by(11) {
        for byte in [b'9', b'"', 0xff, b'-'] {
            let mut b = full.clone();
            b[pos] = byte;
            std::fs::write(dir.join("model.safetensors"), &b).unwrap();
            // Some flips are harmless (inside a name that is then missing, or padding): loading may then fail
            // on the missing tensor or even succeed; it must never panic.
            let _ = load(&dir);
        }
    }
}

#[test]
fn header_length_past_the_end() {
    let (_tmp, dir) = copy("tiny-bert");
    let mut b = std::fs::read(dir.join("model.safetensors")).unwrap();
    let n = b.len() as u64;
    b[..8].copy_from_slice(&n.to_le_bytes());
    std::fs::write(dir.join("model.safetensors"), &b).unwrap();
    let e = load_err(&dir);
    assert!(e.contains("past the end of the file"), "{e}");
}

#[test]
fn wrong_dtype_is_named() {
    let (_tmp, dir) = copy("tiny-bert");
    edit_weights(&dir, |name, dtype, _, _| {
        if name == "encoder.layer.0.attention.self.key.weight" {
            *dtype = "I32".into();
        }
        true
    });
    let e = load_err(&dir);
    assert!(
        e.contains("encoder.layer.0.attention.self.key.weight") && e.contains("I32"),
        "{e}"
    );
}

#[test]
fn f16_and_bf16_weights_load_and_agree_with_f32() {
    let text = "the cat sat on the mat";
    let reference = model::run(
        load(&fixture("tiny-bert")).unwrap().as_ref(),
        text,
        None,
        &ForwardOptions::default(),
    )
    .unwrap();
    for target in ["F16", "BF16"] {
        let (_tmp, dir) = copy("tiny-bert");
        edit_weights(&dir, |_, dtype, _, data| {
            if dtype == "F32" {
                let vals = data
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes(c.try_into().unwrap()));
                *data = if target == "F16" {
                    vals.flat_map(|v| half::f16::from_f32(v).to_le_bytes())
                        .collect()
                } else {
                    vals.flat_map(|v| half::bf16::from_f32(v).to_le_bytes())
                        .collect()
                };
                *dtype = target.into();
            }
            true
        });
        let m = load(&dir).unwrap();
        assert!(
            m.info().notes.iter().any(|n| n.contains(target)),
            "{:?}",
            m.info().notes
        );
        let t = model::run(m.as_ref(), text, None, &ForwardOptions::default()).unwrap();
        let a = t.layers[1].attention.as_ref().unwrap();
        let b = reference.layers[1].attention.as_ref().unwrap();
        let err = (a - b).mapv(f32::abs).fold(0.0f32, |m, v| m.max(*v));
        // Rounding the weights to 16 bits moves the probabilities a little, not a lot.
        let tol = if target == "F16" { 0.02 } else { 0.1 };
        assert!(err < tol, "{target}: attention differs by {err}");
        assert!(err > 0.0, "{target}: the weights really were rounded");
    }
}

#[test]
fn bert_prefix_and_old_gamma_beta_names_load_the_same_model() {
    let text = "the cat sat on the mat";
    let reference = model::run(
        load(&fixture("tiny-bert")).unwrap().as_ref(),
        text,
        None,
        &ForwardOptions::default(),
    )
    .unwrap();
    let (_tmp, dir) = copy("tiny-bert");
    let p = dir.join("model.safetensors");
    let bytes = std::fs::read(&p).unwrap();
    let st = SafeTensors::from_bytes(bytes.clone(), "orig").unwrap();
    let renamed: Vec<(String, String, Vec<usize>, Vec<u8>)> = st
        .names()
        .map(|name| {
            let info = st.info(name).unwrap();
            let new = format!(
                "bert.{}",
                name.replace("LayerNorm.weight", "LayerNorm.gamma")
                    .replace("LayerNorm.bias", "LayerNorm.beta")
            );
            (
                new,
                info.dtype.name().to_string(),
                info.shape.clone(),
                bytes[info.start..info.end].to_vec(),
            )
        })
        .collect();
    assert!(
        renamed
            .iter()
            .any(|t| t.0 == "bert.embeddings.LayerNorm.gamma")
    );
    let refs: Vec<(&str, &str, Vec<usize>, Vec<u8>)> = renamed
        .iter()
        .map(|(n, d, s, b)| (n.as_str(), d.as_str(), s.clone(), b.clone()))
        .collect();
    std::fs::write(&p, serialize(&refs)).unwrap();
    let t = model::run(
        load(&dir).unwrap().as_ref(),
        text,
        None,
        &ForwardOptions::default(),
    )
    .unwrap();
    assert_eq!(t.hidden, reference.hidden);
    for l in 0..t.n_layers() {
        assert_eq!(t.layers[l].attention, reference.layers[l].attention);
    }
}

#[test]
fn missing_tensor_is_named() {
    let (_tmp, dir) = copy("tiny-bert");
    edit_weights(&dir, |name, _, _, _| {
        name != "encoder.layer.1.output.dense.bias"
    });
    let e = load_err(&dir);
    assert!(
        e.contains("encoder.layer.1.output.dense.bias") && e.contains("missing"),
        "{e}"
    );

    let (_tmp, dir) = copy("tiny-gpt2");
    edit_weights(&dir, |name, _, _, _| name != "transformer.ln_f.weight");
    let e = load_err(&dir);
    assert!(e.contains("ln_f.weight") && e.contains("missing"), "{e}");
}

#[test]
fn wrong_shape_is_named() {
    // config.json says 65 feed-forward units, the file has 64.
    let (_tmp, dir) = copy("tiny-bert");
    edit_config(&dir, |c| {
        c.insert("intermediate_size".into(), 65.into());
    });
    let e = load_err(&dir);
    assert!(
        e.contains("encoder.layer.0.intermediate.dense.weight")
            && e.contains("[64, 32]")
            && e.contains("[65, 32]"),
        "{e}"
    );
    // A tensor whose header shape disagrees with the config.
    let (_tmp, dir) = copy("tiny-gpt2");
    edit_weights(&dir, |name, _, shape, _| {
        if name == "transformer.h.1.attn.c_proj.weight" {
            *shape = vec![16, 64];
        }
        true
    });
    let e = load_err(&dir);
    assert!(
        e.contains("h.1.attn.c_proj.weight") && e.contains("[16, 64]"),
        "{e}"
    );
}

#[test]
fn bad_configs_are_clear_errors() {
    type Edit = fn(&mut serde_json::Map<String, serde_json::Value>);
    let cases: Vec<(&str, Edit, &str)> = vec![
        (
            "tiny-bert",
            |c| {
                c.insert("hidden_size".into(), "32".into());
            },
            "hidden_size",
        ),
        (
            "tiny-bert",
            |c| {
                c.insert("num_attention_heads".into(), 0.into());
            },
            "`num_attention_heads` is 0",
        ),
        (
            "tiny-bert",
            |c| {
                c.insert("num_attention_heads".into(), 5.into());
            },
            "not divisible",
        ),
        (
            "tiny-bert",
            |c| {
                c.insert("num_hidden_layers".into(), (-2).into());
            },
            "num_hidden_layers",
        ),
        (
            "tiny-bert",
            |c| {
                c.remove("vocab_size");
            },
            "vocab_size",
        ),
        (
            "tiny-bert",
            |c| {
                c.insert("hidden_act".into(), "mish".into());
            },
            "`hidden_act` `mish`",
        ),
        (
            "tiny-bert",
            |c| {
                c.insert("position_embedding_type".into(), "relative_key".into());
            },
            "relative_key",
        ),
        (
            "tiny-bert",
            |c| {
                c.insert("model_type".into(), "mamba".into());
            },
            "supported: bert, gpt2, llama, bart, t5, marian",
        ),
        (
            "tiny-bert",
            |c| {
                c.remove("model_type");
            },
            "no `model_type`",
        ),
        (
            "tiny-bert",
            |c| {
                c.insert("model_type".into(), 7.into());
            },
            "must be a string",
        ),
        (
            "tiny-gpt2",
            |c| {
                c.insert("n_head".into(), 0.into());
            },
            "`n_head` is 0",
        ),
        (
            "tiny-gpt2",
            |c| {
                c.insert("n_embd".into(), 30.into());
            },
            "not divisible",
        ),
        (
            "tiny-gpt2",
            |c| {
                c.insert("n_layer".into(), serde_json::Value::Null);
            },
            "n_layer",
        ),
        (
            "tiny-gpt2",
            |c| {
                c.insert("scale_attn_by_inverse_layer_idx".into(), true.into());
            },
            "scaling",
        ),
        (
            "tiny-gpt2",
            |c| {
                c.insert("n_layer".into(), 1_000_000.into());
            },
            "more than",
        ),
    ];
    for (name, edit, want) in cases {
        let (_tmp, dir) = copy(name);
        edit_config(&dir, edit);
        let e = load_err(&dir);
        assert!(
            e.contains(want) && e.contains("config.json"),
            "{name}: `{e}` lacks `{want}`"
        );
    }
}

#[test]
fn broken_or_missing_files_are_named() {
    let (_tmp, dir) = copy("tiny-bert");
    std::fs::write(dir.join("config.json"), "{ not json").unwrap();
    let e = load_err(&dir);
    assert!(
        e.contains("config.json") && e.contains("not valid JSON"),
        "{e}"
    );

    let (_tmp, dir) = copy("tiny-bert");
    std::fs::write(dir.join("tokenizer.json"), "{\"model\": 42}").unwrap();
    let e = load_err(&dir);
    assert!(
        e.contains("tokenizer") && e.contains("tokenizer.json"),
        "{e}"
    );

    let (_tmp, dir) = copy("tiny-gpt2");
    std::fs::remove_file(dir.join("tokenizer.json")).unwrap();
    let e = load_err(&dir);
    assert!(e.contains("tokenizer.json"), "{e}");

    let (_tmp, dir) = copy("tiny-gpt2");
    std::fs::remove_file(dir.join("model.safetensors")).unwrap();
    let e = load_err(&dir);
    assert!(e.contains("model.safetensors"), "{e}");

    let (_tmp, dir) = copy("tiny-bert");
    std::fs::write(dir.join("model.safetensors"), b"").unwrap();
    let e = load_err(&dir);
    assert!(e.contains("shorter than"), "{e}");
}

#[test]
fn text_longer_than_the_position_table_is_an_error() {
    for name in ["tiny-bert", "tiny-gpt2"] {
        let m = load(&fixture(name)).unwrap();
        assert_eq!(m.info().max_len, 48);
        let text = "the cat sat on the mat ".repeat(10);
        let e = model::run(m.as_ref(), &text, None, &ForwardOptions::default())
            .err()
            .unwrap_or_else(|| panic!("{name}: must fail"))
            .to_string();
        assert!(
            e.contains("tokens long") && e.contains("at most 48"),
            "{name}: {e}"
        );
        // Just under the limit works.
        let ok = "the cat sat on the mat ".repeat(2);
        assert!(model::run(m.as_ref(), &ok, None, &ForwardOptions::default()).is_ok());
    }
}
