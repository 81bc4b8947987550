//! What the architecture files share: the short model names, Hugging Face config parsing and checks, parameter
//! counts and weight notes, and who a loaded model is ([`Origin`]). Below the architectures and the loader, so
//! neither imports the other through it.

use crate::numeric::ops;
use crate::{Error, Result};

/// The short names `attn` knows, with the file or folder each means inside the models directory.
pub const SHORT_NAMES: &[(&str, &str, &str)] = &[
    (
        "minilm",
        "minilm",
        "all-MiniLM-L6-v2 (BERT encoder, 6 layers × 12 heads)",
    ),
    (
        "smollm2",
        "smollm2.gguf",
        "SmolLM2-135M-Instruct Q4_1 (Llama decoder, 30 layers × 9 heads)",
    ),
];

/// The display name of a short model name (`smollm2` → `SmolLM2-135M-Instruct Q4_1`), as `attn models` shows it.
pub fn short_name_title(spec: &str) -> Option<&'static str> {
    SHORT_NAMES
        .iter()
        .find(|(n, _, _)| *n == spec)
        .map(|(_, _, what)| what.split(" (").next().unwrap_or(what))
}

/// More blocks than any real BERT/GPT-2 checkpoint has: a config asking for more is refused before loading.
pub const MAX_HF_LAYERS: usize = 1024;

/// The checks every Hugging Face config shares, with the config's own key names: the sizes in `positive` are not 0,
/// the layer count is at most [`MAX_HF_LAYERS`], the width divides into the heads, and the norm epsilon is a
/// non-negative number. Errors name `file` and the key.
pub(crate) fn check_hf_sizes(
    file: &str,
    positive: &[(&str, usize)],
    layers: (&str, usize),
    width_heads: [(&str, usize); 2],
    eps: (&str, f64),
) -> Result<()> {
    let bad = |m: String| Err(Error::Config(format!("{file}: {m}")));
    for (name, v) in positive {
        if *v == 0 {
            return bad(format!("`{name}` is 0; it must be positive"));
        }
    }
    if layers.1 > MAX_HF_LAYERS {
        return bad(format!(
            "`{}` {} is more than {MAX_HF_LAYERS}",
            layers.0, layers.1
        ));
    }
    let [(w, width), (h, heads)] = width_heads;
    if !width.is_multiple_of(heads) {
        return bad(format!("`{w}` {width} is not divisible by `{h}` {heads}"));
    }
    if !(eps.1.is_finite() && eps.1 >= 0.0) {
        return bad(format!(
            "`{}` {} must be a non-negative number",
            eps.0, eps.1
        ));
    }
    Ok(())
}

/// [`check_hf_sizes`] over a config struct whose fields carry config.json's own key names, each named once:
/// `hf_sizes!(file, cfg, sizes: [vocab_size, …], layers: num_hidden_layers, width: hidden_size / num_attention_heads,
/// eps: layer_norm_eps)`, plus `extra: ["key" = value, …]` for sizes that are not plain fields. The layer count, the
/// width and the head count are checked positive too.
macro_rules! hf_sizes {
    ($file:expr, $cfg:expr, sizes: [$($p:ident),* $(,)?] $(, extra: [$($n:literal = $v:expr),* $(,)?])?,
     layers: $l:ident, width: $w:ident / $h:ident, eps: $e:ident $(,)?) => {
        $crate::model::config::check_hf_sizes(
            $file,
            &[
                (stringify!($l), $cfg.$l),
                (stringify!($w), $cfg.$w),
                (stringify!($h), $cfg.$h),
                $((stringify!($p), $cfg.$p),)*
                $($(($n, $v),)*)?
            ],
            (stringify!($l), $cfg.$l),
            [(stringify!($w), $cfg.$w), (stringify!($h), $cfg.$h)],
            (stringify!($e), $cfg.$e),
        )
    };
}
pub(crate) use hf_sizes;

/// The activation a config names under `key`, or an error listing the supported ones.
pub(crate) fn hf_activation(file: &str, key: &str, name: &str) -> Result<ops::Activation> {
    ops::Activation::from_hf(name).ok_or_else(|| {
        Error::Config(format!(
            "{file}: `{key}` `{name}` is not supported (supported: {})",
            ops::Activation::HF_NAMES
        ))
    })
}

/// Who a loaded model is: the user's spec, a display name and where it came from (for [`ModelInfo`]).
#[derive(Debug, Clone)]
pub struct Origin {
    pub spec: String,
    pub name: String,
    pub source: String,
}

/// An opened Hugging Face folder, as an encoder–decoder architecture builds from it: config.json text, its file name
/// for errors, the weights, the tokenizer and who the model is.
pub struct HfFolder<'a> {
    pub config: &'a str,
    pub file: &'a str,
    pub weights: &'a crate::weights::safetensors::SafeTensors,
    pub tokenizer: crate::tokenize::Tokenizer,
    pub origin: Origin,
}

impl HfFolder<'_> {
    /// config.json as the architecture's config struct ([`parse_config`]).
    pub fn parse<T: serde::de::DeserializeOwned>(&self) -> Result<T> {
        parse_config(self.config, self.file)
    }
}

/// Deserialize a config.json; a wrong or missing field is named (`field `hidden_size`: invalid type ...`).
pub fn parse_config<T: serde::de::DeserializeOwned>(text: &str, file: &str) -> Result<T> {
    let de = &mut serde_json::Deserializer::from_str(text);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        Error::format(file, format!("field `{path}`: {}", e.into_inner()))
    })
}

/// Parameters of a safetensors file: every floating-point tensor, except the buffers some checkpoints store
/// (`position_ids`, GPT-2's causal-mask `attn.bias` / `attn.masked_bias`).
pub fn count_params(st: &crate::weights::safetensors::SafeTensors) -> u64 {
    use crate::weights::safetensors::Dtype;
    st.names()
        .filter(|n| {
            !(n.ends_with("position_ids")
                || n.ends_with("attn.bias")
                || n.ends_with("attn.masked_bias"))
        })
        .filter_map(|n| st.info(n))
        .filter(|t| matches!(t.dtype, Dtype::F32 | Dtype::F16 | Dtype::BF16 | Dtype::F64))
        .map(|t| t.numel() as u64)
        .sum()
}

/// "weights: F32 (memory-mapped)" etc.
pub fn dtype_note(st: &crate::weights::safetensors::SafeTensors) -> String {
    let mut kinds: Vec<&str> = st
        .names()
        .filter_map(|n| st.info(n))
        .map(|t| t.dtype.name())
        .collect();
    kinds.sort_unstable();
    kinds.dedup();
    let half = kinds.iter().any(|k| *k == "F16" || *k == "BF16");
    let how = if half {
        "F16/BF16 matrices and token tables stay in their dtype (each value converted to f32 as it is multiplied)"
    } else {
        "packed once for the forward pass"
    };
    format!(
        "weights: {} in {} tensors, memory-mapped, {how}",
        kinds.join("/"),
        st.len()
    )
}
