//! The real SmolLM2-135M GGUF (skipped when models/ is absent, unless ATTN_REQUIRE_MODELS=1).

mod common;

use attn::weights::{GgmlType, Gguf, GgufValue};

#[test]
fn smollm2_parses_and_every_tensor_dequantizes() {
    let Some(path) = common::real_model("smollm2.gguf") else {
        return;
    };
    let g = Gguf::open(&path).unwrap();
    assert_eq!(g.version, 3);
    assert_eq!(g.tensors.len(), 272);
    assert_eq!(g.metadata_len(), 33);
    assert_eq!(g.get_str("general.architecture").unwrap(), "llama");
    assert_eq!(g.get_u32("llama.block_count").unwrap(), 30);
    assert_eq!(g.get_u32("llama.embedding_length").unwrap(), 576);
    assert_eq!(g.get_u32("llama.attention.head_count").unwrap(), 9);
    assert_eq!(g.get_u32("llama.attention.head_count_kv").unwrap(), 3);
    assert_eq!(g.get_u32("llama.feed_forward_length").unwrap(), 1536);
    assert_eq!(g.get_u64("llama.rope.dimension_count").unwrap(), 64);
    assert!(g.get_f32("llama.rope.freq_base").unwrap() > 0.0);
    assert_eq!(g.get_str("tokenizer.ggml.model").unwrap(), "gpt2");
    let tokens = g.get_str_array("tokenizer.ggml.tokens").unwrap();
    assert_eq!(tokens.len(), 49152);
    assert_eq!(
        g.get_i32_array("tokenizer.ggml.token_type").unwrap().len(),
        49152
    );
    assert_eq!(
        g.get_str_array("tokenizer.ggml.merges").unwrap().len(),
        48900
    );
    assert!(g.get_bool("tokenizer.ggml.add_bos_token").is_ok());
    assert!(matches!(
        g.get("general.languages"),
        Some(GgufValue::Array(_))
    ));
    // wrong-type access names the key and the type found
    let e = g.get_str("llama.block_count").unwrap_err().to_string();
    assert!(e.contains("llama.block_count") && e.contains("u32"), "{e}");

    let emb = g.tensor("token_embd.weight").unwrap();
    assert_eq!(emb.dims, vec![576, 49152]);
    let mut counts = std::collections::HashMap::new();
    let mut total = 0u64;
    for t in &g.tensors {
        let a = g.tensor_f32(&t.name).unwrap();
        assert_eq!(a.shape(), t.shape().as_slice());
        assert!(a.iter().all(|x| x.is_finite()), "{}", t.name);
        *counts.entry(t.ty).or_insert(0) += 1;
        total += t.n_elements();
    }
    assert_eq!(counts.get(&GgmlType::Q4_1), Some(&210));
    assert_eq!(counts.get(&GgmlType::Q8_0), Some(&1));
    assert_eq!(counts.get(&GgmlType::F32), Some(&61));
    assert_eq!(total, 134_515_008);
    let q = g.tensor_f32("blk.0.attn_q.weight").unwrap();
    assert_eq!(q.shape(), &[576, 576]);
    let k = g.tensor_f32("blk.0.attn_k.weight").unwrap();
    assert_eq!(k.shape(), &[192, 576]);
}

/// Dequantized values equal the `gguf` Python package's on the real file (fixtures/gguf/smollm2_samples.json, from
/// scripts/golden/make_smollm2_gguf_samples.py): rows bit-exact, sums to float rounding.
#[test]
fn smollm2_values_match_the_python_reader() {
    let Some(path) = common::real_model("smollm2.gguf") else {
        return;
    };
    let g = Gguf::open(&path).unwrap();
    let text =
        std::fs::read_to_string(common::repo().join("fixtures/gguf/smollm2_samples.json")).unwrap();
    let samples: serde_json::Value = serde_json::from_str(&text).unwrap();
    let f32s = |v: &serde_json::Value| -> Vec<f32> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap() as f32)
            .collect()
    };
    for s in samples.as_array().unwrap() {
        let name = s["name"].as_str().unwrap();
        let t = g.tensor(name).unwrap();
        assert_eq!(t.ty.name(), s["type"].as_str().unwrap(), "{name}");
        assert_eq!(t.offset, s["offset"].as_u64().unwrap(), "{name}");
        let a = g.tensor_f32(name).unwrap();
        let cols = t.dims[0] as usize;
        let flat = a.as_slice().unwrap();
        let first = f32s(&s["first_row"]);
        let last = f32s(&s["last_row"]);
        assert_eq!(&flat[..first.len()], first.as_slice(), "{name} first row");
        let last_row = &flat[flat.len() - cols..];
        assert_eq!(&last_row[..last.len()], last.as_slice(), "{name} last row");
        let sum: f64 = flat.iter().map(|&x| x as f64).sum();
        let want = s["sum"].as_f64().unwrap();
        assert!(
            (sum - want).abs() <= 1e-6 * (1.0 + want.abs()),
            "{name}: sum {sum} vs {want}"
        );
    }
}
