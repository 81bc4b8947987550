//! From a `--model` spec to a model: short names, folders (Hugging Face `model_type` → architecture) and GGUF files
//! (`general.architecture` → architecture), plus the config checks the Hugging Face architectures share.

use super::arch::{bert, gpt2, llama, textbook};
use super::config::{Origin, SHORT_NAMES};
use super::{Model, TextbookConfig};
use crate::tokenize::Tokenizer;
use crate::{Error, Result};
use std::path::{Path, PathBuf};

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
        Resolved::Textbook => Ok(Box::new(textbook::new(*textbook)?)),
        Resolved::Folder(dir) => load_folder(spec, &dir),
        Resolved::Gguf(path) => load_gguf(spec, &path),
    }
}

/// Builds a model from an opened Hugging Face folder: config.json text, its file name for errors, the weights, the
/// tokenizer and who the model is.
pub type HfLoader = fn(
    &str,
    &str,
    &crate::weights::safetensors::SafeTensors,
    Tokenizer,
    Origin,
) -> Result<super::engine::Transformer>;

/// The `model_type`s a Hugging Face folder may have, each with its loader.
pub const HF_ARCHITECTURES: &[(&str, HfLoader)] = &[("bert", bert::load), ("gpt2", gpt2::load)];

fn supported_model_types() -> String {
    HF_ARCHITECTURES
        .iter()
        .map(|(t, _)| *t)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Load a Hugging Face folder: `config.json` (its `model_type` picks the architecture), `model.safetensors`
/// (memory-mapped) and `tokenizer.json`. All file I/O happens here; the architectures get opened sources.
pub fn load_folder(spec: &str, dir: &Path) -> Result<Box<dyn Model>> {
    let config_path = dir.join("config.json");
    let config_file = config_path.display().to_string();
    let config = crate::fsutil::read_to_string_capped(&config_path, crate::fsutil::CONFIG_CAP)?;
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
                    supported_model_types()
                ),
            ));
        }
    };
    let Some((_, loader)) = HF_ARCHITECTURES.iter().find(|(t, _)| *t == model_type) else {
        return Err(Error::Config(format!(
            "{config_file}: model_type `{}` is not supported; supported: {}",
            crate::tokenize::escape_label(&model_type),
            supported_model_types()
        )));
    };
    let weights = crate::weights::safetensors::SafeTensors::open(&dir.join("model.safetensors"))?;
    let tokenizer = Tokenizer::from_file(&dir.join("tokenizer.json"))?;
    let origin = Origin {
        spec: spec.to_string(),
        name: folder_model_name(spec, dir),
        source: dir.display().to_string(),
    };
    Ok(Box::new(loader(
        &config,
        &config_file,
        &weights,
        tokenizer,
        origin,
    )?))
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

/// The GGUF `general.architecture` values attn runs, each with its loader.
pub const GGUF_ARCHITECTURES: &[(&str, GgufLoader)] = &[("llama", llama::from_gguf)];

/// Builds a model from an opened GGUF file and the user's spec.
pub type GgufLoader = fn(&crate::weights::Gguf, &str) -> Result<super::engine::Transformer>;

fn load_gguf(spec: &str, path: &Path) -> Result<Box<dyn Model>> {
    let g = crate::weights::Gguf::open(path)?;
    let arch = g.get_str("general.architecture")?;
    let Some((_, loader)) = GGUF_ARCHITECTURES.iter().find(|(a, _)| *a == arch) else {
        let names: Vec<&str> = GGUF_ARCHITECTURES.iter().map(|(a, _)| *a).collect();
        return Err(Error::format(
            g.file_name(),
            format!(
                "general.architecture = `{}` is not supported; attn runs {}",
                crate::tokenize::escape_label(arch),
                names.join(", ")
            ),
        ));
    };
    Ok(Box::new(loader(&g, spec)?))
}

/// The encoder–decoder a spec names: `textbook-dates` (built in), or `textbook` when `textbook_layers` is
/// `Some((encoder layers, decoder layers))` (`--encoder-decoder`). `None`: the spec is not an encoder–decoder.
pub fn load_encoder_decoder(
    spec: &str,
    textbook: &TextbookConfig,
    textbook_layers: Option<(usize, usize)>,
) -> Result<Option<super::encdec::EncoderDecoder>> {
    match (spec, textbook_layers) {
        ("textbook-dates", _) => Ok(Some(super::arch::textbook_dates::load()?)),
        ("textbook", Some((enc, dec))) => Ok(Some(super::arch::textbook_encdec::new(
            *textbook, enc, dec,
        )?)),
        _ => match resolve(spec) {
            Ok(Resolved::Folder(dir)) => load_encdec_folder(spec, &dir),
            _ => Ok(None),
        },
    }
}

/// A Hugging Face encoder–decoder folder (`model_type` bart), or `None` for any other folder.
fn load_encdec_folder(spec: &str, dir: &Path) -> Result<Option<super::encdec::EncoderDecoder>> {
    let config_path = dir.join("config.json");
    // Unreadable, special or oversized: not ours to report; the decoder/encoder loader names the problem.
    let Ok(config) = crate::fsutil::read_to_string_capped(&config_path, crate::fsutil::CONFIG_CAP)
    else {
        return Ok(None);
    };
    let model_type = serde_json::from_str::<serde_json::Value>(&config)
        .ok()
        .and_then(|v| {
            v.get("model_type")
                .and_then(|t| t.as_str())
                .map(str::to_string)
        });
    if model_type.as_deref() != Some("bart") {
        return Ok(None);
    }
    let weights = crate::weights::safetensors::SafeTensors::open(&dir.join("model.safetensors"))?;
    let tokenizer = Tokenizer::from_file(&dir.join("tokenizer.json"))?;
    let origin = Origin {
        spec: spec.to_string(),
        name: folder_model_name(spec, dir),
        source: dir.display().to_string(),
    };
    let file = config_path.display().to_string();
    Ok(Some(super::arch::bart::load(
        &config, &file, &weights, tokenizer, origin,
    )?))
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
