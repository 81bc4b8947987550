//! The common model interface, model information, and loading by spec.
//!
//! Every architecture lives in its own file and implements [`Model`]. A forward pass is a plain per-layer loop that
//! fills a [`Trace`]; it never prints and never touches the terminal.

pub mod arch;

pub use arch::{bert, gpt2, llama, textbook};

use crate::numeric::ops;
use crate::tokenize::{Encoded, Tokenizer};
use crate::trace::{ForwardOptions, Trace};
use crate::{Error, Result};
use ndarray::{Array2, Array3};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// The architectures `attn` runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Arch {
    Textbook,
    Bert,
    Gpt2,
    Llama,
}

impl Arch {
    pub fn name(self) -> &'static str {
        match self {
            Arch::Textbook => "textbook",
            Arch::Bert => "bert",
            Arch::Gpt2 => "gpt2",
            Arch::Llama => "llama",
        }
    }
}

/// What a loaded model is: shown by `attn info`, written into `meta.json`, shown in the UI header.
#[derive(Debug, Clone, Serialize)]
pub struct ModelInfo {
    /// The spec the user gave (`textbook`, `minilm`, a path).
    pub spec: String,
    /// A human name (`all-MiniLM-L6-v2`, `textbook encoder (random weights, seed 42)`).
    pub name: String,
    pub arch: Arch,
    pub n_layers: usize,
    pub n_heads: usize,
    pub n_kv_heads: usize,
    pub d_model: usize,
    pub d_ff: usize,
    pub vocab_size: usize,
    /// The longest input in tokens.
    pub max_len: usize,
    pub n_params: u64,
    /// Decoder (causal mask).
    pub causal: bool,
    /// `sinusoidal`, `learned`, `rotary`.
    pub positional: String,
    /// Tokenizer description.
    pub tokenizer: String,
    /// Where it was loaded from (`built-in`, a path).
    pub source: String,
    /// Extra facts worth showing (weight dtypes, quantization types, norm eps...).
    pub notes: Vec<String>,
}

impl ModelInfo {
    pub fn head_dim(&self) -> usize {
        self.d_model / self.n_heads.max(1)
    }
    /// Whether the model reads a second sentence as its own segment (token type embeddings: BERT). Elsewhere a
    /// second sentence would only be glued on, so it is refused.
    pub fn takes_sentence_pairs(&self) -> bool {
        self.arch == Arch::Bert
    }
}

/// One Transformer, ready to run.
pub trait Model: Send + Sync {
    fn info(&self) -> &ModelInfo;
    fn tokenizer(&self) -> &Tokenizer;
    /// Run the model on already-tokenized input (`enc.ids.len() <= info().max_len` is checked by [`run`]).
    fn forward(&self, enc: &Encoded, opts: &ForwardOptions) -> Result<Trace>;
    /// Recompute the attention probabilities `[heads, n, n]` of `layer` from the residual stream entering it
    /// (`Trace::hidden[layer]`); equal to what `forward` recorded.
    fn layer_attention(&self, layer: usize, resid_in: &Array2<f32>) -> Result<Array3<f32>>;
    /// Decoders: the top-`k` next tokens at every position if the residual stream `hidden` went straight through the
    /// final norm and LM head (the "logit lens"). `None` for encoders.
    fn logit_lens(
        &self,
        _hidden: &Array2<f32>,
        _k: usize,
    ) -> Option<Vec<Vec<crate::trace::TopToken>>> {
        None
    }
}

/// The block `Model::layer_attention` was asked for, after checking the layer index and the residual stream's width
/// (a programming or file mix-up, reported as an error rather than a panic).
pub(crate) fn checked_block<'a, B>(
    blocks: &'a [B],
    layer: usize,
    resid_in: &Array2<f32>,
    width: usize,
) -> Result<&'a B> {
    let b = blocks.get(layer).ok_or_else(|| {
        Error::Input(format!(
            "layer {layer} out of range (the model has layers 0..={})",
            blocks.len().saturating_sub(1)
        ))
    })?;
    if resid_in.ncols() != width {
        return Err(Error::Input(format!(
            "the residual stream has width {}; the model's is {width}",
            resid_in.ncols()
        )));
    }
    Ok(b)
}

/// Tokenize and run: checks empty text and the model's length limit, then runs the forward pass.
pub fn run(
    model: &dyn Model,
    text: &str,
    text_b: Option<&str>,
    opts: &ForwardOptions,
) -> Result<Trace> {
    let mut enc = model.tokenizer().encode(text, text_b)?;
    let info = model.info();
    if enc.ids.len() > info.max_len {
        let how = if info.arch == Arch::Textbook {
            " (raise it with --max-len)"
        } else {
            ", its own limit: shorten the text"
        };
        return Err(Error::Input(format!(
            "the text is {} tokens long; {} takes at most {}{how}",
            enc.ids.len(),
            info.name,
            info.max_len
        )));
    }
    let mut trace = model.forward(&enc, opts)?;
    trace.text = text.to_string();
    trace.text_b = text_b.map(str::to_string);
    if trace.tokens.is_empty() {
        trace.tokens = std::mem::take(&mut enc.tokens);
    }
    Ok(trace)
}

/// Settings of the built-in textbook model (the `--layers ... --max-len` flags).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TextbookConfig {
    pub layers: usize,
    pub heads: usize,
    pub d_model: usize,
    pub d_ff: usize,
    pub seed: u64,
    pub causal: bool,
    pub max_len: usize,
}

impl Default for TextbookConfig {
    fn default() -> Self {
        TextbookConfig {
            layers: 6,
            heads: 8,
            d_model: 512,
            d_ff: 2048,
            seed: 42,
            causal: false,
            max_len: 512,
        }
    }
}

/// The display name of a short model name (`smollm2` → `SmolLM2-135M-Instruct Q4_1`), as `attn models` shows it.
pub fn short_name_title(spec: &str) -> Option<&'static str> {
    SHORT_NAMES
        .iter()
        .find(|(n, _, _)| *n == spec)
        .map(|(_, _, what)| what.split(" (").next().unwrap_or(what))
}

/// Where a model spec points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolved {
    Textbook,
    /// A Hugging Face folder (config.json + model.safetensors + tokenizer.json).
    Folder(PathBuf),
    /// A GGUF file.
    Gguf(PathBuf),
}

/// The folder short names are looked up in: `$ATTN_MODELS_DIR`, else `./models`.
pub fn models_dir() -> PathBuf {
    std::env::var_os("ATTN_MODELS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("models"))
}

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

/// Resolve a `--model` spec: `textbook`, a short name, a folder, or a `.gguf` file.
pub fn resolve(spec: &str) -> Result<Resolved> {
    resolve_in(spec, &models_dir())
}

pub fn resolve_in(spec: &str, dir: &Path) -> Result<Resolved> {
    if spec == "textbook" {
        return Ok(Resolved::Textbook);
    }
    let path = Path::new(spec);
    let candidate = if path.exists() {
        path.to_path_buf()
    } else if let Some((_, file, _)) = SHORT_NAMES.iter().find(|(n, _, _)| *n == spec) {
        let p = dir.join(file);
        if !p.exists() {
            return Err(Error::Input(format!(
                "model `{spec}` is not fetched: {} does not exist (run scripts/fetch-models, or set ATTN_MODELS_DIR)",
                p.display()
            )));
        }
        p
    } else if dir.join(spec).exists() {
        dir.join(spec)
    } else {
        let names: Vec<&str> = SHORT_NAMES.iter().map(|(n, _, _)| *n).collect();
        return Err(Error::Input(format!(
            "unknown model `{spec}`: not a file or folder; use `textbook`, a short name ({}), a model folder \
             or a .gguf file",
            names.join(", ")
        )));
    };
    if candidate.is_dir() {
        Ok(Resolved::Folder(candidate))
    } else {
        Ok(Resolved::Gguf(candidate))
    }
}

/// The spec used when none is given: `minilm` when fetched, else `textbook`.
pub fn default_spec() -> &'static str {
    if models_dir().join("minilm").join("config.json").exists() {
        "minilm"
    } else {
        "textbook"
    }
}

/// Load a model by spec. `textbook` settings apply only to the textbook model.
pub fn load(spec: &str, textbook: &TextbookConfig) -> Result<Box<dyn Model>> {
    match resolve(spec)? {
        Resolved::Textbook => Ok(Box::new(textbook::Textbook::new(*textbook)?)),
        Resolved::Folder(dir) => load_folder(spec, &dir),
        Resolved::Gguf(path) => load_gguf(spec, &path),
    }
}

/// The `model_type`s a Hugging Face folder may have.
pub const SUPPORTED_MODEL_TYPES: &[&str] = &["bert", "gpt2"];

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

/// Load a Hugging Face folder: `config.json` (its `model_type` picks the architecture), `model.safetensors`
/// (memory-mapped) and `tokenizer.json`. All file I/O happens here; the architectures get opened sources.
pub fn load_folder(spec: &str, dir: &Path) -> Result<Box<dyn Model>> {
    let config_path = dir.join("config.json");
    let config_file = config_path.display().to_string();
    let config = std::fs::read_to_string(&config_path).map_err(|e| Error::io(&config_path, e))?;
    let value: serde_json::Value = serde_json::from_str(&config)
        .map_err(|e| Error::format(&config_file, format!("not valid JSON: {e}")))?;
    let model_type = match value.get("model_type") {
        Some(serde_json::Value::String(t)) => t.clone(),
        Some(other) => {
            return Err(Error::format(
                &config_file,
                format!("field `model_type` must be a string, not {other}"),
            ));
        }
        None => {
            return Err(Error::format(
                &config_file,
                format!(
                    "no `model_type` field (supported: {})",
                    SUPPORTED_MODEL_TYPES.join(", ")
                ),
            ));
        }
    };
    if !SUPPORTED_MODEL_TYPES.contains(&model_type.as_str()) {
        return Err(Error::Config(format!(
            "{config_file}: model_type `{model_type}` is not supported; supported: {}",
            SUPPORTED_MODEL_TYPES.join(", ")
        )));
    }
    let weights = crate::weights::safetensors::SafeTensors::open(&dir.join("model.safetensors"))?;
    let tokenizer = Tokenizer::from_file(&dir.join("tokenizer.json"))?;
    let origin = Origin {
        spec: spec.to_string(),
        name: folder_model_name(spec, dir),
        source: dir.display().to_string(),
    };
    match model_type.as_str() {
        "bert" => Ok(Box::new(bert::Bert::load(
            &config,
            &config_file,
            &weights,
            tokenizer,
            origin,
        )?)),
        _ => Ok(Box::new(gpt2::Gpt2::load(
            &config,
            &config_file,
            &weights,
            tokenizer,
            origin,
        )?)),
    }
}

/// A display name: the real name of a known short name, else the folder's name.
fn folder_model_name(spec: &str, dir: &Path) -> String {
    if spec == "minilm" {
        return "all-MiniLM-L6-v2".into();
    }
    dir.canonicalize()
        .ok()
        .as_deref()
        .unwrap_or(dir)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| spec.to_string())
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
    format!(
        "weights: {} in {} tensors, memory-mapped, packed once for the forward pass (F16/BF16 converted to f32)",
        kinds.join("/"),
        st.len()
    )
}

fn load_gguf(spec: &str, path: &Path) -> Result<Box<dyn Model>> {
    let g = crate::weights::Gguf::open(path)?;
    Ok(Box::new(llama::Llama::from_gguf(&g, spec)?))
}

/// The attention of `layer`, borrowed from the trace when kept, else recomputed from `hidden[layer]`.
pub fn layer_attention<'a>(
    model: &dyn Model,
    trace: &'a Trace,
    layer: usize,
) -> Result<std::borrow::Cow<'a, Array3<f32>>> {
    let lt = trace.layers.get(layer).ok_or_else(|| {
        Error::Input(format!(
            "layer {layer} out of range (the model has {} layers, numbered 0..{})",
            trace.layers.len(),
            trace.layers.len().saturating_sub(1)
        ))
    })?;
    match &lt.attention {
        Some(a) => Ok(std::borrow::Cow::Borrowed(a)),
        None => Ok(std::borrow::Cow::Owned(
            model.layer_attention(layer, &trace.hidden[layer])?,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_specs() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            resolve_in("textbook", dir.path()).unwrap(),
            Resolved::Textbook
        );
        let err = resolve_in("minilm", dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("not fetched") && err.contains("fetch-models"),
            "{err}"
        );
        let err = resolve_in("nonsense", dir.path()).unwrap_err().to_string();
        assert!(err.contains("unknown model `nonsense`"), "{err}");
        std::fs::create_dir(dir.path().join("minilm")).unwrap();
        std::fs::write(dir.path().join("smollm2.gguf"), b"x").unwrap();
        assert_eq!(
            resolve_in("minilm", dir.path()).unwrap(),
            Resolved::Folder(dir.path().join("minilm"))
        );
        assert_eq!(
            resolve_in("smollm2", dir.path()).unwrap(),
            Resolved::Gguf(dir.path().join("smollm2.gguf"))
        );
    }
}
