//! `textbook-dates`: the paper's encoder–decoder, small (d_model 64, 4 heads, 2 + 2 layers, d_ff 256), trained by
//! `scripts/textbook_dates/train.py` to turn English dates into Korean ones (`22 November 2026` → `2026년 11월 22일`).
//! The weights, config and both tokenizers are embedded in the binary from `fixtures/textbook-dates/`.
//!
//! Tensor names (the PyTorch module names of the training script): `src_embed.weight`, `tgt_embed.weight`,
//! `encoder.{i}.{self_attn.{q,k,v,o}_proj, ln1, ffn.{up,down}, ln2}`, `decoder.{i}.{self_attn, ln1, cross_attn, ln2,
//! ffn, ln3}`, `lm_head.{weight,bias}`; every Linear has a bias, every LayerNorm γ and β (eps from the config).

use crate::model::attention::AttnWeights;
use crate::model::block::{Block, Cross, Linear, Mlp, Norm, Placement};
use crate::model::config::parse_config;
use crate::model::embed::{Embeddings, PositionKind, TokenTable};
use crate::model::encdec::{EncoderDecoder, stacks};
use crate::model::head::LmHead;
use crate::model::{Arch, ModelInfo};
use crate::numeric::ops::Activation;
use crate::numeric::packed::PackedMatrix;
use crate::tokenize::Tokenizer;
use crate::weights::safetensors::SafeTensors;
use crate::weights::source::Vb;
use crate::{Error, Result};
use serde::Deserialize;

const WEIGHTS: &[u8] = include_bytes!("../../../fixtures/textbook-dates/model.safetensors");
const CONFIG: &str = include_str!("../../../fixtures/textbook-dates/config.json");
const SOURCE_TOKENIZER: &[u8] =
    include_bytes!("../../../fixtures/textbook-dates/source_tokenizer.json");
const TARGET_TOKENIZER: &[u8] =
    include_bytes!("../../../fixtures/textbook-dates/target_tokenizer.json");

/// The sentence the explorer starts from.
pub const EXAMPLE: &str = "22 November 2026";

/// `config.json` of a textbook encoder–decoder.
#[derive(Debug, Clone, Deserialize)]
pub struct Config {
    pub d_model: usize,
    pub heads: usize,
    pub encoder_layers: usize,
    pub decoder_layers: usize,
    pub d_ff: usize,
    pub max_len: usize,
    pub layer_norm_eps: f32,
    pub src_vocab_size: usize,
    pub tgt_vocab_size: usize,
    pub decoder_start_token_id: u32,
    pub eos_token_id: u32,
}

fn ffn(vb: &Vb, d: usize, f: usize) -> Result<Mlp> {
    Ok(Mlp::Plain {
        up: Linear::load(vb, "up", f, d, true)?,
        act: Activation::Relu,
        down: Linear::load(vb, "down", d, f, true)?,
    })
}

/// Load the built-in `textbook-dates` model.
pub fn load() -> Result<EncoderDecoder> {
    let cfg: Config = parse_config(CONFIG, "textbook-dates/config.json")?;
    let st = SafeTensors::from_bytes(WEIGHTS.to_vec(), "textbook-dates/model.safetensors")?;
    let src_tok = Tokenizer::from_bytes(SOURCE_TOKENIZER, "textbook-dates/source_tokenizer.json")?;
    let tgt_tok = Tokenizer::from_bytes(TARGET_TOKENIZER, "textbook-dates/target_tokenizer.json")?;
    let mut model = from_weights(&cfg, &st, src_tok, tgt_tok)?;
    model.info.spec = "textbook-dates".into();
    model.info.name = "textbook-dates (trained encoder–decoder: English → Korean dates)".into();
    model.info.source = "built-in (fixtures/textbook-dates)".into();
    Ok(model)
}

/// A textbook encoder–decoder from `st` laid out as the training script names it.
pub fn from_weights(
    cfg: &Config,
    st: &SafeTensors,
    source_tokenizer: Tokenizer,
    target_tokenizer: Tokenizer,
) -> Result<EncoderDecoder> {
    let (d, f, h, eps) = (cfg.d_model, cfg.d_ff, cfg.heads, cfg.layer_norm_eps);
    if h == 0 || d == 0 || !d.is_multiple_of(h) {
        return Err(Error::Config(format!(
            "textbook config: d_model {d} must be a positive multiple of heads {h}"
        )));
    }
    let root = Vb::new(st);
    let names = ["q_proj", "k_proj", "v_proj", "o_proj"];
    // Encoder blocks: ln1, ffn, ln2; decoder blocks: ln1, cross_attn, ln2, ffn, ln3.
    let block = |side: &str, i: usize, cross: bool| -> Result<Block> {
        let vb = root.pp(format!("{side}.{i}"));
        let ln_mlp = if cross { "ln3" } else { "ln2" };
        Ok(Block {
            ln_attn: Norm::layer_norm(&vb, "ln1", d, eps)?,
            attn: AttnWeights::load(&vb.pp("self_attn"), names, d, d, true)?,
            cross: if cross {
                Some(Cross {
                    norm: Norm::layer_norm(&vb, "ln2", d, eps)?,
                    attn: AttnWeights::load(&vb.pp("cross_attn"), names, d, d, true)?,
                })
            } else {
                None
            },
            ln_mlp: Norm::layer_norm(&vb, ln_mlp, d, eps)?,
            mlp: ffn(&vb.pp("ffn"), d, f)?,
        })
    };
    let encoder = (0..cfg.encoder_layers)
        .map(|i| block("encoder", i, false))
        .collect::<Result<Vec<_>>>()?;
    let decoder = (0..cfg.decoder_layers)
        .map(|i| block("decoder", i, true))
        .collect::<Result<Vec<_>>>()?;
    let embed = |name: &str, vocab: usize| -> Result<Embeddings> {
        Ok(Embeddings::plain(
            TokenTable::Table(root.table(name, vocab, d)?),
            d,
            (d as f32).sqrt(),
            PositionKind::Sinusoidal,
            cfg.max_len,
        ))
    };
    let head = LmHead {
        norm: None,
        unembed: PackedMatrix::from_view(
            &root.table("lm_head.weight", cfg.tgt_vocab_size, d)?.view(),
        )
        .into(),
        bias: Some(root.vector("lm_head.bias", cfg.tgt_vocab_size)?),
        scale: 1.0,
        tied: false,
    };
    let (encoder, decoder) = stacks(Placement::Post, [(h, d / h); 2], None, [encoder, decoder]);
    let n_params = crate::model::config::count_params(st);
    let info = ModelInfo {
        spec: "textbook".into(),
        name: "textbook encoder–decoder".into(),
        arch: Arch::Textbook,
        n_layers: cfg.encoder_layers,
        n_heads: h,
        n_kv_heads: h,
        d_model: d,
        d_ff: f,
        vocab_size: cfg.src_vocab_size,
        max_len: cfg.max_len,
        n_params,
        causal: false,
        positional: crate::trace::PositionalKind::Sinusoidal,
        tokenizer: format!(
            "source: {}; target: {}",
            source_tokenizer.description(),
            target_tokenizer.description()
        ),
        source: st.name().to_string(),
        notes: vec![
            format!(
                "encoder–decoder: {} encoder + {} decoder layers; target vocabulary {}",
                cfg.encoder_layers, cfg.decoder_layers, cfg.tgt_vocab_size
            ),
            "post-LN blocks; decoder: masked self-attn → add&norm → cross-attn → add&norm → FFN → add&norm".into(),
            "embedding × √d_model + sinusoidal positions on both sides".into(),
        ],
    };
    Ok(EncoderDecoder {
        info,
        source_tokenizer,
        target_tokenizer,
        enc_embed: embed("src_embed.weight", cfg.src_vocab_size)?,
        encoder,
        enc_norm: None,
        dec_embed: embed("tgt_embed.weight", cfg.tgt_vocab_size)?,
        decoder,
        head,
        enc_bias: None,
        dec_bias: None,
        decoder_start: cfg.decoder_start_token_id,
        eos: cfg.eos_token_id,
    })
}
