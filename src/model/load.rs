//! From a `--model` spec to a model: short names, folders (Hugging Face `model_type` → architecture) and GGUF files
//! (`general.architecture` → architecture), plus the config checks the Hugging Face architectures share.

use super::arch::{bart, bert, gpt2, llama, llama_hf, marian, t5, textbook};
use super::config::{Origin, SHORT_NAMES};
use super::encdec::EncoderDecoder;
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

/// How an architecture builds a model from an opened Hugging Face folder.
#[derive(Clone, Copy)]
pub enum HfLoader {
    /// One stack (an encoder or a decoder).
    Single(fn(super::config::HfFolder) -> Result<super::engine::Transformer>),
    /// An encoder–decoder.
    EncoderDecoder(fn(super::config::HfFolder) -> Result<EncoderDecoder>),
}

/// The `model_type`s a Hugging Face folder may have, each with its loader.
pub const HF_ARCHITECTURES: &[(&str, HfLoader)] = &[
    ("bert", HfLoader::Single(bert::load)),
    ("gpt2", HfLoader::Single(gpt2::load)),
    ("llama", HfLoader::Single(llama_hf::load)),
    (
        "bart",
        HfLoader::EncoderDecoder(|f| bart::load_family(&bart::BART, f)),
    ),
    ("t5", HfLoader::EncoderDecoder(t5::load)),
    (
        "marian",
        HfLoader::EncoderDecoder(|f| bart::load_family(&marian::MARIAN, f)),
    ),
];

fn supported_model_types() -> String {
    HF_ARCHITECTURES
        .iter()
        .map(|(t, _)| *t)
        .collect::<Vec<_>>()
        .join(", ")
}

/// A model of either kind.
pub enum Loaded {
    Single(Box<dyn Model>),
    EncoderDecoder(Box<EncoderDecoder>),
}

/// config.json of a folder, read once: its text, its file name and the loader its `model_type` picks.
struct FolderConfig {
    text: String,
    file: String,
    model_type: String,
    loader: HfLoader,
}

/// What a file or folder in the models directory is, for `attn models`: a folder's `model_type` (and whether attn
/// opens it), a GGUF file's `general.architecture`; `None` when it is neither.
pub fn describe_entry(path: &Path) -> Option<String> {
    if path.join("config.json").is_file() {
        return Some(match read_folder_config(path) {
            Ok(cfg) => {
                let kind = match cfg.loader {
                    HfLoader::Single(_) => "folder",
                    HfLoader::EncoderDecoder(_) => "encoder–decoder folder",
                };
                format!(
                    "{kind}, model_type {}",
                    crate::tokenize::escape_label(&cfg.model_type)
                )
            }
            Err(e) => format!(
                "folder attn cannot open: {}",
                crate::tokenize::escape_text(&e.to_string())
            ),
        });
    }
    if path.extension().is_some_and(|x| x == "gguf") && path.is_file() {
        return Some(match crate::weights::Gguf::open(path) {
            Ok(g) => match g.get_str("general.architecture") {
                Ok(a) => format!("GGUF, architecture {}", crate::tokenize::escape_label(a)),
                Err(e) => format!(
                    "GGUF attn cannot open: {}",
                    crate::tokenize::escape_text(&e.to_string())
                ),
            },
            Err(e) => format!(
                "GGUF attn cannot open: {}",
                crate::tokenize::escape_text(&e.to_string())
            ),
        });
    }
    None
}

fn read_folder_config(dir: &Path) -> Result<FolderConfig> {
    let config_path = dir.join("config.json");
    let file = config_path.display().to_string();
    let text = crate::fsutil::read_to_string_capped(&config_path, crate::fsutil::CONFIG_CAP)?;
    let value: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| Error::format(&file, format!("not valid JSON: {e}")))?;
    let model_type = match value.get("model_type") {
        Some(serde_json::Value::String(t)) => t.clone(),
        Some(other) => {
            return Err(Error::format(
                &file,
                format!("field `model_type` must be a string, not {other}"),
            ));
        }
        None => {
            return Err(Error::format(
                &file,
                format!(
                    "no `model_type` field (supported: {})",
                    supported_model_types()
                ),
            ));
        }
    };
    let Some((_, loader)) = HF_ARCHITECTURES.iter().find(|(t, _)| *t == model_type) else {
        return Err(Error::Config(format!(
            "{file}: model_type `{}` is not supported; supported: {}",
            crate::tokenize::escape_label(&model_type),
            supported_model_types()
        )));
    };
    Ok(FolderConfig {
        text,
        file,
        model_type,
        loader: *loader,
    })
}

/// The script that writes tokenizer.json for a folder that ships SentencePiece files (Marian).
pub const TOKENIZER_CONVERSION: &str = "scripts/convert-marian-tokenizer";

/// The folder's `tokenizer.json`; a folder without one (Marian ships `source.spm`, `target.spm`, `vocab.json`) is
/// told how to make it.
fn folder_tokenizer(dir: &Path) -> Result<Tokenizer> {
    let path = dir.join("tokenizer.json");
    if !path.exists() {
        let spm = ["source.spm", "spiece.model", "sentencepiece.bpe.model"]
            .iter()
            .find(|f| dir.join(f).exists());
        let what = match spm {
            Some(f) => format!("it ships SentencePiece files ({f})"),
            None => "attn reads only tokenizer.json".to_string(),
        };
        return Err(Error::Input(format!(
            "{} has no tokenizer.json: {what}; convert it once with `python3 {TOKENIZER_CONVERSION} {}` (needs \
             transformers and sentencepiece)",
            dir.display(),
            dir.display()
        )));
    }
    Tokenizer::from_file(&path)
}

/// Load a Hugging Face folder: `config.json` (its `model_type` picks the architecture), `model.safetensors`
/// (memory-mapped) and `tokenizer.json`. All file I/O happens here; the architectures get opened sources.
fn load_folder_with(spec: &str, dir: &Path, cfg: &FolderConfig) -> Result<Loaded> {
    let weights = crate::weights::safetensors::SafeTensors::open(&dir.join("model.safetensors"))?;
    let tokenizer = folder_tokenizer(dir)?;
    let origin = Origin {
        spec: spec.to_string(),
        name: folder_model_name(spec, dir),
        source: dir.display().to_string(),
    };
    let folder = super::config::HfFolder {
        config: &cfg.text,
        file: &cfg.file,
        weights: &weights,
        tokenizer,
        origin,
    };
    Ok(match cfg.loader {
        HfLoader::Single(f) => Loaded::Single(Box::new(f(folder)?)),
        HfLoader::EncoderDecoder(f) => Loaded::EncoderDecoder(Box::new(f(folder)?)),
    })
}

/// Load a one-stack Hugging Face folder (an encoder–decoder folder is refused, naming the commands that open it).
pub fn load_folder(spec: &str, dir: &Path) -> Result<Box<dyn Model>> {
    let cfg = read_folder_config(dir)?;
    if let HfLoader::EncoderDecoder(_) = cfg.loader {
        return Err(Error::Config(format!(
            "{}: an encoder–decoder; `attn info`, `attn generate` and `attn dump --target` open it",
            cfg.file
        )));
    }
    match load_folder_with(spec, dir, &cfg)? {
        Loaded::Single(m) => Ok(m),
        Loaded::EncoderDecoder(_) => unreachable!("checked above"),
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

/// Any model a spec names, config.json read once: `textbook-dates`, `textbook` (the encoder–decoder when
/// `textbook_layers` is `Some((encoder layers, decoder layers))`, `--encoder-decoder`), a folder of either kind or a
/// GGUF file.
pub fn load_any(
    spec: &str,
    textbook: &TextbookConfig,
    textbook_layers: Option<(usize, usize)>,
) -> Result<Loaded> {
    match (spec, textbook_layers) {
        ("textbook-dates", _) => Ok(Loaded::EncoderDecoder(Box::new(
            super::arch::textbook_dates::load()?,
        ))),
        ("textbook", Some((enc, dec))) => Ok(Loaded::EncoderDecoder(Box::new(
            super::arch::textbook_encdec::new(*textbook, enc, dec)?,
        ))),
        _ => match resolve(spec)? {
            Resolved::Folder(dir) => load_folder_with(spec, &dir, &read_folder_config(&dir)?),
            _ => Ok(Loaded::Single(load(spec, textbook)?)),
        },
    }
}

/// The encoder–decoder a spec names (see [`load_any`]); `None`: the spec is not an encoder–decoder (nothing else
/// is loaded; a folder whose config.json cannot be read is left to the one-stack loader to report).
pub fn load_encoder_decoder(
    spec: &str,
    textbook: &TextbookConfig,
    textbook_layers: Option<(usize, usize)>,
) -> Result<Option<EncoderDecoder>> {
    let folder = match (spec, textbook_layers) {
        ("textbook-dates", _) | ("textbook", Some(_)) => None,
        _ => match resolve(spec) {
            Ok(Resolved::Folder(dir)) => match read_folder_config(&dir) {
                Ok(cfg) if matches!(cfg.loader, HfLoader::EncoderDecoder(_)) => Some((dir, cfg)),
                _ => return Ok(None),
            },
            _ => return Ok(None),
        },
    };
    let loaded = match folder {
        Some((dir, cfg)) => load_folder_with(spec, &dir, &cfg)?,
        None => load_any(spec, textbook, textbook_layers)?,
    };
    Ok(match loaded {
        Loaded::EncoderDecoder(m) => Some(*m),
        Loaded::Single(_) => None,
    })
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
