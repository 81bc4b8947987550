//! The command line (clap derive). Layer and head numbers count from 0, as in transformers' `attentions[layer]`
//! and in the dump files.

use crate::export::Format;
use crate::model::TextbookConfig;
use crate::model::budget;
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
    /// Score every head: previous-token, first-token sink, self, and induction on a probe of random tokens repeated.
    Heads(HeadsArgs),
    /// Continue a text with a decoder (greedy by default), with a KV cache.
    Generate(GenerateArgs),
    /// Ablate every head in turn and rank them by the change of the clean prediction's logit.
    Sweep(SweepArgs),
    /// Direct logit attribution: each component's contribution to a token's logit.
    Attribute(AttributeArgs),
    /// Print a model's architecture, sizes, parameter count and tokenizer.
    Info(InfoArgs),
    /// List the models that can be opened.
    Models,
    /// How one attention weight is computed: q, k, q·k, the scale, the mask, the row's softmax, Σ α·v, W_O.
    Explain(ExplainArgs),
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

/// `--format` of `attn dump` (the library's [`Format`] knows nothing of clap).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum DumpFormat {
    /// `attention.npy`, float32 [layers, heads, n, n].
    #[default]
    Npy,
    /// `attention/layerLL_headHH.csv`, one per (layer, head), token labels in the header row and first column.
    Csv,
    /// `attention.json`: tokens and the [layers][heads][n][n] nested lists.
    Json,
}

impl From<DumpFormat> for Format {
    fn from(f: DumpFormat) -> Format {
        match f {
            DumpFormat::Npy => Format::Npy,
            DumpFormat::Csv => Format::Csv,
            DumpFormat::Json => Format::Json,
        }
    }
}

/// The memory budget of a forward pass (see `docs/robustness.md`): default 4G.
#[derive(Debug, Clone, Copy, Args)]
pub struct BudgetArgs {
    /// Memory budget of one forward pass (e.g. 8G, 512M); inputs that would need more are refused before
    /// anything is allocated.
    #[arg(long, value_name = "SIZE", value_parser = budget::parse_size, default_value = "4G")]
    pub mem_budget: u64,
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
    #[command(flatten)]
    pub budget: BudgetArgs,
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
}

#[derive(Debug, Clone, Args)]
pub struct DumpArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// The input text.
    #[arg(
        long,
        short = 't',
        required_unless_present = "ids",
        conflicts_with = "ids"
    )]
    pub text: Option<String>,
    /// Token ids instead of text (`12,345,678`), fed exactly as given: no special tokens are added.
    #[arg(long, value_name = "ID,ID,...")]
    pub ids: Option<String>,
    /// Also write `rollout.npy`: attention rollout float32 [layers, n, n] (see docs/dump-format.md).
    #[arg(long)]
    pub rollout: bool,
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
    #[arg(long, value_enum, default_value_t = DumpFormat::Npy)]
    pub format: DumpFormat,
    /// Replace a previous dump in DIR (every file it wrote) and files of the same names; other files are kept.
    #[arg(long)]
    pub force: bool,
    /// Also write q.npy, k.npy, v.npy, z.npy: every head's queries, keys and values as they enter the dot product
    /// (after bias and RoPE) and its output z before the output projection.
    #[arg(long)]
    pub qkv: bool,
    /// Also write value_weighted.npy [layers, heads, n, n]: ‖α_ij · v_j W_O^h‖ (Kobayashi et al., 2020).
    #[arg(long)]
    pub value_weighted: bool,
    /// Also write mlp_post.npy [layers, n, d_ff]: the MLP activations (the input of the down projection).
    #[arg(long)]
    pub mlp: bool,
    #[command(flatten)]
    pub run: RunArgs,
    /// No progress on stderr.
    #[arg(long, short = 'q')]
    pub quiet: bool,
    /// Refuse (exit 1, nothing written) when the forward pass produced NaN or Inf values.
    #[arg(long)]
    pub strict: bool,
    #[command(flatten)]
    pub budget: BudgetArgs,
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
    #[arg(
        long,
        short = 't',
        required_unless_present = "ids",
        conflicts_with = "ids"
    )]
    pub text: Option<String>,
    /// Token ids instead of text (`12,345,678`), fed exactly as given: no special tokens are added.
    #[arg(long, value_name = "ID,ID,...")]
    pub ids: Option<String>,
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
    /// Fail (exit 1) when the forward pass produced NaN or Inf values, instead of warning.
    #[arg(long)]
    pub strict: bool,
    #[command(flatten)]
    pub budget: BudgetArgs,
}

#[derive(Debug, Clone, Args)]
pub struct GenerateArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// The prompt.
    #[arg(long, short = 't')]
    pub text: String,
    /// How many tokens to add (generation does not stop at an end-of-text token).
    #[arg(long, default_value_t = 20)]
    pub max_new: usize,
    /// 0 = greedy; otherwise sample from softmax(logits / T).
    #[arg(long, default_value_t = 0.0)]
    pub temperature: f32,
    /// Sample among the k most likely tokens only (0 = all).
    #[arg(long, default_value_t = 0)]
    pub top_k: usize,
    /// Seed of the sampler (`--seed` is the textbook model's weight seed).
    #[arg(long, default_value_t = 0)]
    pub sample_seed: u64,
    /// Print `{"ids": [new ids], "text": "..."}`.
    #[arg(long)]
    pub json: bool,
    /// Dump the trace of prompt + continuation into this directory (as `attn dump`).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct SweepArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    #[arg(long, short = 't')]
    pub text: String,
    /// The position whose prediction is watched (default: the last).
    #[arg(long)]
    pub position: Option<usize>,
    /// Replace each head's z by its mean over positions instead of zero.
    #[arg(long)]
    pub mean: bool,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Args)]
pub struct AttributeArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    #[arg(long, short = 't')]
    pub text: String,
    /// The position (default: the last).
    #[arg(long)]
    pub position: Option<usize>,
    /// The target token, as the tokenizer spells one token (default: the model's top prediction).
    #[arg(long)]
    pub token: Option<String>,
    /// Print `{"token", "logit", "components": [{"name", "value"}, …]}`.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Args)]
pub struct HeadsArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Also score the heads on this text (previous, sink, self; induction where a token repeats).
    #[arg(long, short = 't')]
    pub text: Option<String>,
    /// Print JSON: `{"probe": {"ids": [...]}, "heads": [{"layer", "head", "previous", "sink", "self", "induction"}]}`.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Args)]
pub struct ExplainArgs {
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
    /// The query token, from 0.
    #[arg(long, short = 'q', default_value_t = 0)]
    pub query: usize,
    /// The key token, from 0. Default: the key with the largest weight.
    #[arg(long, short = 'k')]
    pub key: Option<usize>,
    /// One JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Args)]
pub struct InfoArgs {
    #[command(flatten)]
    pub model: ModelArgs,
}
