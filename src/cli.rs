//! The command line (clap derive). Layer and head numbers count from 0, as in transformers' `attentions[layer]`
//! and in the dump files.

use crate::export::Format;
use crate::model::budget;
use crate::model::{Arch, ModelInfo, TextbookConfig};
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "attn",
    version,
    about = "A terminal attention explorer: type a sentence, page through the layers and heads of a Transformer."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub explore: ExploreArgs,
}

impl Cli {
    /// Explorer options given together with another subcommand (`attn --text hi show ...`) are an error; model
    /// and colour options are global and may stand anywhere.
    pub fn check(&self) -> crate::Result<()> {
        let e = &self.explore;
        let stray = [
            (e.text.is_some(), "--text"),
            (e.text_b.is_some(), "--text-b"),
            (e.dump_dir.is_some(), "--dump-dir"),
        ];
        match &self.command {
            Some(c) if !matches!(c, Command::Explore(_)) => {
                if let Some((_, name)) = stray.iter().find(|(set, _)| *set) {
                    return Err(crate::Error::Input(format!(
                        "{name} before the subcommand belongs to the explorer; put it after the subcommand"
                    )));
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }
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
    #[arg(long, short = 'm', value_name = "SPEC", global = true)]
    pub model: Option<String>,
    /// Textbook model: number of blocks [default: 6].
    #[arg(long, global = true)]
    pub layers: Option<usize>,
    /// Textbook model: attention heads per block [default: 8].
    #[arg(long, global = true)]
    pub heads: Option<usize>,
    /// Textbook model: width of the residual stream [default: 512].
    #[arg(long, global = true)]
    pub d_model: Option<usize>,
    /// Textbook model: width of the feed-forward layer [default: 2048].
    #[arg(long, global = true)]
    pub d_ff: Option<usize>,
    /// Textbook model: seed of the random weights [default: 42].
    #[arg(long, global = true)]
    pub seed: Option<u64>,
    /// Textbook model: decoder-style masked attention (no position attends to a later one).
    #[arg(long, global = true)]
    pub causal: bool,
    /// Textbook model: the longest input in tokens [default: 512].
    #[arg(long, global = true)]
    pub max_len: Option<usize>,
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
        let d = TextbookConfig::default();
        TextbookConfig {
            layers: self.layers.unwrap_or(d.layers),
            heads: self.heads.unwrap_or(d.heads),
            d_model: self.d_model.unwrap_or(d.d_model),
            d_ff: self.d_ff.unwrap_or(d.d_ff),
            seed: self.seed.unwrap_or(d.seed),
            causal: self.causal,
            max_len: self.max_len.unwrap_or(d.max_len),
        }
    }
    /// `(encoder layers, decoder layers)` of the textbook encoder–decoder, when `--encoder-decoder` is set.
    pub fn encoder_decoder_layers(&self) -> Option<(usize, usize)> {
        self.encoder_decoder.then(|| {
            (
                self.encoder_layers.unwrap_or(self.textbook().layers),
                self.decoder_layers.unwrap_or(self.textbook().layers),
            )
        })
    }
    /// The spec to load: the one given, else the default.
    pub fn spec(&self) -> String {
        self.model
            .clone()
            .unwrap_or_else(|| crate::model::default_spec().to_string())
    }
    /// The textbook-only flags given on the command line.
    pub fn textbook_flags(&self) -> Vec<&'static str> {
        let mut v = vec![];
        if self.causal {
            v.push("--causal");
        }
        if self.encoder_decoder {
            v.push("--encoder-decoder");
        }
        for (set, name) in [
            (self.layers.is_some(), "--layers"),
            (self.heads.is_some(), "--heads"),
            (self.d_model.is_some(), "--d-model"),
            (self.d_ff.is_some(), "--d-ff"),
            (self.seed.is_some(), "--seed"),
            (self.max_len.is_some(), "--max-len"),
            (self.encoder_layers.is_some(), "--encoder-layers"),
            (self.decoder_layers.is_some(), "--decoder-layers"),
        ] {
            if set {
                v.push(name);
            }
        }
        v
    }
    /// Refuse textbook-only flags for a model they do not apply to (they used to be ignored silently).
    pub fn check_applies(&self, info: &ModelInfo) -> crate::Result<()> {
        let flags = self.textbook_flags();
        if info.arch == Arch::Textbook || flags.is_empty() {
            return Ok(());
        }
        let kind = if info.causal {
            "a decoder (already causal)"
        } else {
            "an encoder"
        };
        Err(crate::Error::Input(format!(
            "{} appl{} to the textbook model only; {} is {kind} with its own sizes",
            flags.join(", "),
            if flags.len() == 1 { "ies" } else { "y" },
            info.name
        )))
    }
}

/// `A..B` (B excluded), `A..` (to the end) or `..B`.
pub fn parse_range(s: &str) -> Result<std::ops::Range<usize>, String> {
    let (a, b) = s
        .split_once("..")
        .ok_or_else(|| format!("`{s}` is not a range: write A..B, e.g. 0..20"))?;
    let num = |t: &str, default: usize| -> Result<usize, String> {
        if t.is_empty() {
            Ok(default)
        } else {
            t.parse()
                .map_err(|_| format!("`{t}` in `{s}` is not a number"))
        }
    };
    let (a, b) = (num(a, 0)?, num(b, usize::MAX)?);
    if a >= b {
        return Err(format!("`{s}` is empty: the end must be after the start"));
    }
    Ok(a..b)
}

/// Refuse a second sentence for a model that has no segments: it would only be glued onto the first.
pub fn check_text_b(info: &ModelInfo, text_b: Option<&str>) -> crate::Result<()> {
    if text_b.is_none() || info.takes_sentence_pairs() {
        return Ok(());
    }
    Err(crate::Error::Input(format!(
        "--text-b applies to models that read sentence pairs (BERT: token types); {} reads one text, so put \
         both sentences in --text",
        info.name
    )))
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

impl ColorChoice {
    /// The palette this choice gives on an output that is (or is not) a terminal.
    pub fn palette(self, is_tty: bool) -> crate::colormap::Palette {
        let force = match self {
            ColorChoice::Auto => None,
            ColorChoice::Always => Some(true),
            ColorChoice::Never => Some(false),
        };
        crate::colormap::Palette::choose(force, is_tty)
    }
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
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto, global = true)]
    pub color: ColorChoice,
}

/// The input of `show` and `dump`: a text (with a second sentence for sentence-pair models) or raw token ids.
#[derive(Debug, Clone, Args)]
pub struct InputArgs {
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
}

#[derive(Debug, Clone, Args)]
pub struct DumpArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub input: InputArgs,
    /// Also write `rollout.npy`: attention rollout float32 [layers, n, n] (see docs/dump-format.md).
    #[arg(long)]
    pub rollout: bool,
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
    /// Write the attention of these layers only: indices and ranges, e.g. `0`, `3-5`, `0,4` (default: every layer).
    /// Attention is then computed one head at a time for the selection alone (long inputs). (`--layers` is the
    /// textbook model's depth.)
    #[arg(long, value_name = "SEL")]
    pub attn_layers: Option<String>,
    /// Write the attention of these heads only, e.g. `0`, `0,4`, `2-3` (default: every head).
    #[arg(long, value_name = "SEL")]
    pub attn_heads: Option<String>,
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
    #[command(flatten)]
    pub input: InputArgs,
    /// Layer, from 0.
    #[arg(long, short = 'l', default_value_t = 0)]
    pub layer: usize,
    /// Head, from 0.
    #[arg(long, short = 'H', default_value_t = 0)]
    pub head: usize,
    /// Key columns to print, `A..B` (end excluded); default: as many as fit the terminal, from 0.
    #[arg(long, value_name = "A..B", value_parser = parse_range)]
    pub cols: Option<std::ops::Range<usize>>,
    /// Query rows to print, `A..B` (end excluded); default: all.
    #[arg(long, value_name = "A..B", value_parser = parse_range)]
    pub rows: Option<std::ops::Range<usize>>,
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto, global = true)]
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
