//! attn: a terminal attention explorer. The library holds everything but the terminal set-up: tokenization, the
//! models, the trace a forward pass records, the analysis over it, and the exporters.

pub mod analysis;
pub mod cli;
pub mod colormap;
pub mod error;
pub mod explain;
pub mod export;
pub mod fsutil;
pub mod hooks;
pub mod model;
pub mod numeric;
pub mod show;
pub mod tokenize;
pub mod trace;
pub mod tui;
pub mod weights;

pub use error::{Error, Result};
