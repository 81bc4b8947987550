//! The command line (clap derive). Layer and head numbers count from 0, as in transformers' `attentions[layer]`
//! and in the dump files.

use crate::export::Format;
use crate::model::TextbookConfig;
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "attn",
    version,
    about = "A terminal attention explorer: type a sentence, page through the layers and heads of a Transformer.",
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub explore: ExploreArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Open the interactive explorer (the default).
    Explore(ExploreArgs),
    /// Run one input and write tokens, attention, hidden states, positions and norms to files.
    Dump(DumpArgs),
    /// Print one head's attention grid and the residual-norm table.
    Show(ShowArgs),
    /// Print a model's architecture, sizes, parameter count and tokenizer.
    Info(InfoArgs),
    /// List the models that can be opened.
    Models,
    /// Greedy decoding: print the output of an encoder–decoder for a source text.
    Generate(GenerateArgs),
}

#[derive(Debug, Clone, Args)]
pub struct ModelArgs {
    /// `textbook`, a short name (`minilm`, `smollm2`), a model folder, or a .gguf file. Default: `minilm` when
    /// fetched into ./models (or $ATTN_MODELS_DIR), else `textbook`.
    #[arg(long, short = 'm', value_name = "SPEC")]
    pub model: Option<String>,
    /// Textbook model: number of blocks.
    #[arg(long, default_value_t = 6)]
    pub layers: usize,
    /// Textbook model: attention heads per block.
    #[arg(long, default_value_t = 8)]
    pub heads: usize,
    /// Textbook model: width of the residual stream.
    #[arg(long, default_value_t = 512)]
    pub d_model: usize,
    /// Textbook model: width of the feed-forward layer.
    #[arg(long, default_value_t = 2048)]
    pub d_ff: usize,
    /// Textbook model: seed of the random weights.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Textbook model: decoder-style masked attention (no position attends to a later one).
    #[arg(long)]
    pub causal: bool,
    /// Textbook model: the longest input in tokens.
    #[arg(long, default_value_t = 512)]
    pub max_len: usize,
    /// Textbook model: the paper's encoder–decoder (decoder blocks with cross-attention) instead of one stack.
    #[arg(long)]
    pub encoder_decoder: bool,
    /// Textbook encoder–decoder: encoder blocks (default: --layers).
    #[arg(long, value_name = "N")]
    pub encoder_layers: Option<usize>,
    /// Textbook encoder–decoder: decoder blocks (default: --layers).
    #[arg(long, value_name = "N")]
    pub decoder_layers: Option<usize>,
}

impl ModelArgs {
    pub fn textbook(&self) -> TextbookConfig {
        TextbookConfig {
            layers: self.layers,
            heads: self.heads,
            d_model: self.d_model,
            d_ff: self.d_ff,
            seed: self.seed,
            causal: self.causal,
            max_len: self.max_len,
        }
    }
    /// `(encoder layers, decoder layers)` of the textbook encoder–decoder, when `--encoder-decoder` is set.
    pub fn encoder_decoder_layers(&self) -> Option<(usize, usize)> {
        self.encoder_decoder.then(|| {
            (
                self.encoder_layers.unwrap_or(self.layers),
                self.decoder_layers.unwrap_or(self.layers),
            )
        })
    }
    /// The spec to load: the one given, else the default.
    pub fn spec(&self) -> String {
        self.model
            .clone()
            .unwrap_or_else(|| crate::model::default_spec().to_string())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum ColorChoice {
    /// Colour when the output is a terminal and NO_COLOR is not set.
    #[default]
    Auto,
    Always,
    Never,
}

#[derive(Debug, Clone, Args)]
pub struct ExploreArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// The sentence to start with.
    #[arg(long, short = 't')]
    pub text: Option<String>,
    /// A second sentence (BERT sentence pairs: token type 1).
    #[arg(long)]
    pub text_b: Option<String>,
    /// Where `d` / `D` write dumps (default ./attn-dumps).
    #[arg(long, value_name = "DIR")]
    pub dump_dir: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
}

#[derive(Debug, Clone, Args)]
pub struct DumpArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// The input text.
    #[arg(long, short = 't')]
    pub text: String,
    /// A second sentence (BERT sentence pairs: token type 1).
    #[arg(long)]
    pub text_b: Option<String>,
    /// Encoder–decoder models: the target text; the decoder input is its ids shifted right behind the decoder start
    /// id. Without it the decoder input is the greedy output.
    #[arg(long)]
    pub target: Option<String>,
    /// Output directory (created if its parent exists).
    #[arg(long, short = 'o', value_name = "DIR")]
    pub out: PathBuf,
    /// Format of the attention matrices.
    #[arg(long, value_enum, default_value_t = Format::Npy)]
    pub format: Format,
    /// Overwrite files that already exist.
    #[arg(long)]
    pub force: bool,
    /// Also write q.npy, k.npy, v.npy, z.npy: every head's queries, keys and values as they enter the dot product
    /// (after bias and RoPE) and its output z before the output projection.
    #[arg(long)]
    pub qkv: bool,
    #[command(flatten)]
    pub run: RunArgs,
}

/// What changes a run: interventions.
#[derive(Debug, Clone, Default, Args)]
pub struct RunArgs {
    /// Zero-ablate heads: `LAYER.HEAD[,LAYER.HEAD…]` (from 0, e.g. `3.5,10.0`); their output z is set to 0 at every
    /// position before the output projection, and everything downstream is recomputed.
    #[arg(long, value_name = "L.H,…")]
    pub ablate: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct ShowArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// The input text.
    #[arg(long, short = 't')]
    pub text: String,
    /// A second sentence (BERT sentence pairs: token type 1).
    #[arg(long)]
    pub text_b: Option<String>,
    /// Layer, from 0.
    #[arg(long, short = 'l', default_value_t = 0)]
    pub layer: usize,
    /// Head, from 0.
    #[arg(long, short = 'H', default_value_t = 0)]
    pub head: usize,
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Debug, Clone, Args)]
pub struct GenerateArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// The source text.
    #[arg(long, short = 't')]
    pub text: String,
    /// At most this many new tokens.
    #[arg(long, default_value_t = 32)]
    pub max_new: usize,
    /// Print one JSON object `{"ids": [...], "text": "..."}` (ids without the start token).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Args)]
pub struct InfoArgs {
    #[command(flatten)]
    pub model: ModelArgs,
}
