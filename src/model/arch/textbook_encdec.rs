//! The textbook encoder–decoder with seeded random weights (`--model textbook --encoder-decoder`): the paper's
//! Figure 1 with the same recipe as the one-stack textbook model (Xavier-uniform projections, zero biases,
//! LayerNorm γ = 1, β = 0, embeddings × √d_model + sinusoidal positions, post-LN blocks). Both sides use the bundled
//! BERT-uncased tokenizer; the decoder starts from `[CLS]` and stops at `[SEP]`. The LM head is tied to the target
//! embedding (as in the paper).

use super::textbook::{validate, xavier};
use crate::model::attention::AttnWeights;
use crate::model::block::{Block, Cross, Mlp, Norm, Placement};
use crate::model::embed::{Embeddings, PositionKind, TokenTable};
use crate::model::encdec::{EncoderDecoder, stacks};
use crate::model::head::LmHead;
use crate::model::{Arch, ModelInfo, TextbookConfig};
use crate::numeric::ops::Activation;
use crate::numeric::packed::PackedMatrix;
use crate::tokenize::Tokenizer;
use crate::{Error, Result};
use ndarray::{Array1, Array2};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

const LN_EPS: f32 = 1e-5;

fn attn(rng: &mut ChaCha8Rng, d: usize) -> AttnWeights {
    AttnWeights {
        q: xavier(rng, d, d),
        k: xavier(rng, d, d),
        v: xavier(rng, d, d),
        o: xavier(rng, d, d),
    }
}

fn block(rng: &mut ChaCha8Rng, d: usize, f: usize, cross: bool) -> Block {
    let self_attn = attn(rng, d);
    let cross = cross.then(|| Cross {
        norm: Norm::identity_layer_norm(d, LN_EPS),
        attn: attn(rng, d),
    });
    let mut up = xavier(rng, f, d);
    up.b = Some(Array1::zeros(f));
    let mut down = xavier(rng, d, f);
    down.b = Some(Array1::zeros(d));
    Block {
        ln_attn: Norm::identity_layer_norm(d, LN_EPS),
        attn: self_attn,
        cross,
        ln_mlp: Norm::identity_layer_norm(d, LN_EPS),
        mlp: Mlp::Plain {
            up,
            act: Activation::Relu,
            down,
        },
    }
}

/// The random textbook encoder–decoder with `enc_layers` encoder and `dec_layers` decoder blocks (the other sizes
/// from `cfg`; `cfg.layers` and `cfg.causal` are not used).
pub fn new(cfg: TextbookConfig, enc_layers: usize, dec_layers: usize) -> Result<EncoderDecoder> {
    for (flag, n) in [
        ("--encoder-layers", enc_layers),
        ("--decoder-layers", dec_layers),
    ] {
        if n == 0 || n > super::textbook::MAX_LAYERS {
            return Err(Error::Config(format!(
                "{flag} {n} must be between 1 and {}",
                super::textbook::MAX_LAYERS
            )));
        }
    }
    let tokenizer = Tokenizer::bundled_bert_uncased();
    let vocab = tokenizer.vocab_size();
    // Encoder + decoder blocks (each decoder block has a second attention: count it as one more block's worth).
    let sized = TextbookConfig {
        layers: (enc_layers + 2 * dec_layers).min(super::textbook::MAX_LAYERS),
        ..cfg
    };
    let n_params = validate(&sized, vocab)?;
    let (d, f, h) = (cfg.d_model, cfg.d_ff, cfg.heads);
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let encoder: Vec<Block> = (0..enc_layers)
        .map(|_| block(&mut rng, d, f, false))
        .collect();
    let decoder: Vec<Block> = (0..dec_layers)
        .map(|_| block(&mut rng, d, f, true))
        .collect();
    let src_table = TokenTable::Seeded {
        seed: cfg.seed,
        vocab,
        d,
    };
    let tgt_seed = cfg.seed.wrapping_add(1);
    let tgt_table = TokenTable::Seeded {
        seed: tgt_seed,
        vocab,
        d,
    };
    let mut unembed = Array2::<f32>::zeros((vocab, d));
    for (id, mut row) in unembed.rows_mut().into_iter().enumerate() {
        row.assign(&tgt_table.row(id as u32));
    }
    let embed = |token| {
        Embeddings::plain(
            token,
            d,
            (d as f32).sqrt(),
            PositionKind::Sinusoidal,
            usize::MAX,
        )
    };
    let id = |t: &str| {
        tokenizer
            .inner()
            .token_to_id(t)
            .ok_or_else(|| Error::Tokenizer(format!("the bundled tokenizer has no {t}")))
    };
    let (start, eos) = (id("[CLS]")?, id("[SEP]")?);
    let info = ModelInfo {
        spec: "textbook".into(),
        name: format!(
            "textbook encoder–decoder (random weights, seed {}, {enc_layers} + {dec_layers} layers)",
            cfg.seed
        ),
        arch: Arch::Textbook,
        n_layers: enc_layers,
        n_heads: h,
        n_kv_heads: h,
        d_model: d,
        d_ff: f,
        vocab_size: vocab,
        max_len: cfg.max_len,
        n_params,
        causal: false,
        positional: crate::trace::PositionalKind::Sinusoidal,
        tokenizer: tokenizer.description().to_string(),
        source: "built-in".into(),
        notes: vec![
            format!("encoder–decoder: {enc_layers} encoder + {dec_layers} decoder layers"),
            "decoder: masked self-attn → add&norm → cross-attn → add&norm → FFN → add&norm".into(),
            "Xavier-uniform weights, zero biases; LM head tied to the target embedding".into(),
        ],
    };
    let (encoder, decoder) = stacks(Placement::Post, [(h, d / h); 2], None, [encoder, decoder]);
    Ok(EncoderDecoder {
        info,
        source_tokenizer: Tokenizer::bundled_bert_uncased(),
        target_tokenizer: tokenizer,
        enc_embed: embed(src_table),
        encoder,
        enc_norm: None,
        dec_embed: embed(tgt_table),
        decoder,
        head: LmHead {
            norm: None,
            unembed: PackedMatrix::new(&unembed).into(),
            bias: None,
            scale: 1.0,
            tied: true,
        },
        enc_bias: None,
        dec_bias: None,
        decoder_start: start,
        eos,
    })
}
