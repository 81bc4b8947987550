//! The library's error type. Every variant names the file, field, tensor or value that is wrong.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An I/O failure on a named path.
    #[error("{}: {err}", path.display())]
    Io { path: PathBuf, err: std::io::Error },
    /// A model configuration that cannot work (zero heads, d_model not divisible by heads, absurd sizes...).
    #[error("invalid model configuration: {0}")]
    Config(String),
    /// A weight or config file that is malformed: `file` names it, `msg` says what is wrong.
    #[error("{file}: {msg}")]
    Format { file: String, msg: String },
    /// A tensor that is missing or has the wrong shape or type.
    #[error("{file}: tensor `{name}`: {msg}")]
    Tensor {
        file: String,
        name: String,
        msg: String,
    },
    /// The tokenizer could not be built or failed on the input.
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    /// Bad user input (empty text, too many tokens, out-of-range layer...).
    #[error("{0}")]
    Input(String),
    /// An output file that already exists (never overwritten without --force).
    #[error("{}: already exists (use --force to overwrite)", path.display())]
    Exists { path: PathBuf },
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn io(path: impl Into<PathBuf>, err: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            err,
        }
    }
    pub fn format(file: impl Into<String>, msg: impl Into<String>) -> Self {
        Error::Format {
            file: file.into(),
            msg: msg.into(),
        }
    }
    pub fn tensor(
        file: impl Into<String>,
        name: impl Into<String>,
        msg: impl Into<String>,
    ) -> Self {
        Error::Tensor {
            file: file.into(),
            name: name.into(),
            msg: msg.into(),
        }
    }
}
