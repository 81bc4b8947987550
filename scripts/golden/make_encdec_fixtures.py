#!/usr/bin/env python3
"""Make the encoder–decoder parity fixtures for attn (tests/parity_encdec.rs).

Writes, with fixed seeds, tiny random models saved by transformers (config.json + model.safetensors) with a small
tokenizer.json trained here (nothing is downloaded):
  fixtures/tiny-bart/      BartForConditionalGeneration (learned positions offset 2, layernorm_embedding, GELU, post-LN,
                           final_logits_bias made non-zero)
  fixtures/tiny-t5/        T5ForConditionalGeneration, T5 v1.0 style: ReLU, tied embeddings (decoder output × d_model^-0.5),
                           d_kv × heads ≠ d_model, relative position bias with visible random values
  fixtures/tiny-t5-gated/  T5 v1.1 style: gated-gelu, untied lm_head (no output scaling)
  fixtures/tiny-marian/    MarianMTModel (sinusoidal positions sin|cos halves, embeddings × √d_model, swish, shared
                           embeddings, final_logits_bias made non-zero, pad = decoder start)
and the golden outputs of each (attn_implementation="eager", float32) in fixtures/golden/<model>/:
  <case>_src_ids, _labels (target ids with the tokenizer's post-processor), _dec_in_ids (shift_tokens_right(labels)),
  _encoder_attentions [L, H, n_src, n_src], _decoder_attentions [L, H, n_tgt, n_tgt],
  _cross_attentions [L, H, n_tgt, n_src], _encoder_hidden [L+1, n_src, d], _decoder_hidden [L+1, n_tgt, d]
  (raw residual streams: the last entry is the last block's output, before any final norm),
  _encoder_hidden_final / _decoder_hidden_final (transformers' last hidden state, after the final norm if any),
  _logits [n_tgt, vocab], _greedy_ids (generate(do_sample=False, num_beams=1), without the start token)
  + cases.json

Run from the repository root:  python3 scripts/golden/make_encdec_fixtures.py
"""
import json
import os
import shutil
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import (BartConfig, BartForConditionalGeneration, MarianConfig, MarianMTModel, T5Config,
                          T5ForConditionalGeneration)

ROOT = Path(__file__).resolve().parents[2]
FIX = ROOT / "fixtures"
GOLD = FIX / "golden"
SEED = 20261122
MAX_NEW = 8

CORPUS = [
    "The cat sat on the mat.", "Le chat est assis sur le tapis.",
    "The dog sat on the log.", "Le chien est assis sur la bûche.",
    "Attention is all you need.", "L'attention est tout ce dont vous avez besoin.",
    "A transformer reads every token of the sentence at once.",
    "Un transformeur lit chaque jeton de la phrase à la fois.",
    "Hello, world! How are you today?", "Bonjour, le monde ! Comment allez-vous aujourd'hui ?",
    "Queries, keys and values are projections of the hidden states.",
    "Les requêtes, les clés et les valeurs sont des projections des états cachés.",
    "Numbers like 42 and 123 appear in text too.", "Des nombres comme 42 et 123 apparaissent aussi.",
]

CASES = [
    {"name": "cat", "source": "The cat sat on the mat.", "target": "Le chat est assis sur le tapis."},
    {"name": "hello", "source": "Hello, world! Attention is all you need.", "target": "Bonjour, le monde !"},
]


# ---------------------------------------------------------------------------------------------------- tokenizers


def bart_tokenizer() -> Tokenizer:
    """Byte-level BPE like BART's, specials <s> 0, <pad> 1, </s> 2, <unk> 3; `<s> $A </s>`."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=300, min_frequency=1, special_tokens=["<s>", "<pad>", "</s>", "<unk>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(CORPUS, trainer=trainer)
    tok.post_processor = processors.RobertaProcessing(("</s>", 2), ("<s>", 0), trim_offsets=False,
                                                      add_prefix_space=False)
    return tok


def unigram_tokenizer(specials, eos) -> Tokenizer:
    """A SentencePiece-like Unigram tokenizer (Metaspace), `$A </s>`: what T5's and Marian's tokenizers do."""
    tok = Tokenizer(models.Unigram())
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    trainer = trainers.UnigramTrainer(vocab_size=200, special_tokens=specials, unk_token="<unk>",
                                      show_progress=False)
    tok.train_from_iterator(CORPUS, trainer=trainer)
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", pair="$A </s> $B </s>",
                                                       special_tokens=[("</s>", tok.token_to_id(eos))])
    return tok


# ------------------------------------------------------------------------------------------------------- weights


def spread_weights(model, gen, std, skip=()):
    """Replace the tiny default init with larger random values so attention patterns are not uniform; norms get
    γ ≈ 1 ± 0.2, β small; T5's relative attention bias N(0, 1) so the bias is clearly visible."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if any(s in name for s in skip):
                continue
            if "relative_attention_bias" in name:
                p.copy_(torch.randn(p.shape, generator=gen))
            elif "layer_norm" in name or "layernorm" in name:
                if name.endswith("weight"):
                    p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=gen))
                else:
                    p.copy_(0.1 * torch.randn(p.shape, generator=gen))
            elif "embed_tokens" in name or name.endswith("shared.weight") or "embed_positions" in name:
                p.copy_(torch.randn(p.shape, generator=gen))
            else:
                p.copy_(std * torch.randn(p.shape, generator=gen))
        if hasattr(model, "final_logits_bias"):
            model.final_logits_bias.copy_(0.5 * torch.randn(model.final_logits_bias.shape, generator=gen))


# -------------------------------------------------------------------------------------------------------- golden


def save_npy(path: Path, arr) -> None:
    np.save(path, np.ascontiguousarray(arr))


def last_block(stack):
    return stack.block[-1] if hasattr(stack, "block") else stack.layers[-1]


def run_cases(name, model, tok, pad_id, start_id):
    out = GOLD / name
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    meta = []
    enc_stack, dec_stack = model.get_encoder(), model.get_decoder()
    for case in CASES:
        src = tok.encode(case["source"]).ids
        labels = tok.encode(case["target"]).ids
        src_t, labels_t = torch.tensor([src]), torch.tensor([labels])
        dec_in = labels_t.new_zeros(labels_t.shape)
        dec_in[:, 1:] = labels_t[:, :-1]
        dec_in[:, 0] = start_id  # shift_tokens_right
        raw = {}
        hooks = [
            last_block(enc_stack).register_forward_hook(lambda _m, _i, o: raw.__setitem__("enc", o[0] if isinstance(o, tuple) else o)),
            last_block(dec_stack).register_forward_hook(lambda _m, _i, o: raw.__setitem__("dec", o[0] if isinstance(o, tuple) else o)),
        ]
        with torch.no_grad():
            res = model(input_ids=src_t, attention_mask=torch.ones_like(src_t), decoder_input_ids=dec_in,
                        output_attentions=True, output_hidden_states=True)
        for h in hooks:
            h.remove()
        enc_hid = torch.stack([h[0] for h in res.encoder_hidden_states]).numpy().astype(np.float32)
        dec_hid = torch.stack([h[0] for h in res.decoder_hidden_states]).numpy().astype(np.float32)
        enc_final, dec_final = enc_hid[-1].copy(), dec_hid[-1].copy()
        enc_hid[-1] = raw["enc"][0].numpy()
        dec_hid[-1] = raw["dec"][0].numpy()
        with torch.no_grad():
            gen = model.generate(src_t, attention_mask=torch.ones_like(src_t), do_sample=False, num_beams=1,
                                 max_new_tokens=MAX_NEW, min_new_tokens=0, decoder_start_token_id=start_id,
                                 forced_bos_token_id=None, forced_eos_token_id=None, no_repeat_ngram_size=0,
                                 repetition_penalty=1.0, bad_words_ids=None, length_penalty=1.0)
        greedy = gen[0, 1:].tolist()
        arrays = {
            "src_ids": np.array(src, dtype=np.int64),
            "labels": np.array(labels, dtype=np.int64),
            "dec_in_ids": dec_in[0].numpy().astype(np.int64),
            "encoder_attentions": torch.stack([a[0] for a in res.encoder_attentions]).numpy(),
            "decoder_attentions": torch.stack([a[0] for a in res.decoder_attentions]).numpy(),
            "cross_attentions": torch.stack([a[0] for a in res.cross_attentions]).numpy(),
            "encoder_hidden": enc_hid,
            "decoder_hidden": dec_hid,
            "encoder_hidden_final": enc_final,
            "decoder_hidden_final": dec_final,
            "logits": res.logits[0].numpy(),
            "greedy_ids": np.array(greedy, dtype=np.int64),
        }
        for k, v in arrays.items():
            save_npy(out / f"{case['name']}_{k}.npy", v.astype(np.float32) if v.dtype.kind == "f" else v)
        meta.append(case | {"n_src": len(src), "n_tgt": len(labels), "greedy_ids": greedy,
                            "pad_token_id": pad_id, "decoder_start_token_id": start_id})
    (out / "cases.json").write_text(json.dumps(meta, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


def save_folder(name, model, tok, cls, patch=None):
    d = FIX / name
    if d.exists():
        shutil.rmtree(d)
    model.save_pretrained(d, safe_serialization=True)
    tok.save(str(d / "tokenizer.json"))
    gc = d / "generation_config.json"
    if gc.exists():
        gc.unlink()  # plain greedy is what the fixtures record; a generation config would add forced tokens
    if patch is not None:
        patch(d)
    return cls.from_pretrained(d, attn_implementation="eager", dtype=torch.float32).eval()


def untie_t5(seed):
    """Rewrite a folder the way T5 v1.1 / FLAN-T5 checkpoints on the Hub are: `"tie_word_embeddings": false` and a
    separate `lm_head.weight` (transformers 5 saves every T5 tied; it loads this form untied and unscaled)."""
    def patch(d):
        cfg = json.loads((d / "config.json").read_text())
        cfg["tie_word_embeddings"] = False
        cfg.pop("scale_decoder_outputs", None)
        (d / "config.json").write_text(json.dumps(cfg, indent=2) + "\n")
        tensors = load_file(str(d / "model.safetensors"))
        gen = torch.Generator().manual_seed(seed)
        tensors["lm_head.weight"] = torch.randn(tensors["shared.weight"].shape, generator=gen)
        save_file(tensors, str(d / "model.safetensors"), metadata={"format": "pt"})
    return patch


def tiny_bart():
    tok = bart_tokenizer()
    torch.manual_seed(SEED)
    cfg = BartConfig(vocab_size=tok.get_vocab_size(), d_model=32, encoder_layers=2, decoder_layers=2,
                     encoder_attention_heads=4, decoder_attention_heads=4, encoder_ffn_dim=64, decoder_ffn_dim=64,
                     max_position_embeddings=64, activation_function="gelu", pad_token_id=1, bos_token_id=0,
                     eos_token_id=2, decoder_start_token_id=2, forced_eos_token_id=None, forced_bos_token_id=None,
                     scale_embedding=False, dropout=0.0, attention_dropout=0.0, activation_dropout=0.0)
    model = BartForConditionalGeneration(cfg).eval()
    spread_weights(model, torch.Generator().manual_seed(SEED), 0.25)
    model = save_folder("tiny-bart", model, tok, BartForConditionalGeneration)
    run_cases("tiny-bart", model, tok, 1, 2)


def tiny_t5(name, ff, tied, seed):
    tok = unigram_tokenizer(["<pad>", "</s>", "<unk>"], "</s>")
    torch.manual_seed(seed)
    cfg = T5Config(vocab_size=tok.get_vocab_size(), d_model=32, d_kv=16, num_heads=4, d_ff=64, num_layers=2,
                   num_decoder_layers=2, relative_attention_num_buckets=32, relative_attention_max_distance=20,
                   feed_forward_proj=ff, tie_word_embeddings=tied, pad_token_id=0, eos_token_id=1,
                   decoder_start_token_id=0, dropout_rate=0.0, layer_norm_epsilon=1e-6)
    model = T5ForConditionalGeneration(cfg).eval()
    spread_weights(model, torch.Generator().manual_seed(seed), 0.08)
    model = save_folder(name, model, tok, T5ForConditionalGeneration, None if tied else untie_t5(seed))
    assert model.config.scale_decoder_outputs == tied
    run_cases(name, model, tok, 0, 0)


def tiny_marian():
    specials = ["</s>", "<unk>"]
    tok = unigram_tokenizer(specials, "</s>")
    tok.add_special_tokens(["<pad>"])  # Marian puts <pad> last; it is also the decoder start
    pad = tok.token_to_id("<pad>")
    torch.manual_seed(SEED + 3)
    cfg = MarianConfig(vocab_size=tok.get_vocab_size(), d_model=32, encoder_layers=2, decoder_layers=2,
                       encoder_attention_heads=4, decoder_attention_heads=4, encoder_ffn_dim=64, decoder_ffn_dim=64,
                       max_position_embeddings=64, activation_function="swish", pad_token_id=pad, eos_token_id=0,
                       decoder_start_token_id=pad, forced_eos_token_id=None, scale_embedding=True,
                       share_encoder_decoder_embeddings=True, dropout=0.0, attention_dropout=0.0,
                       activation_dropout=0.0)
    model = MarianMTModel(cfg).eval()
    spread_weights(model, torch.Generator().manual_seed(SEED + 3), 0.25, skip=("embed_positions",))
    model = save_folder("tiny-marian", model, tok, MarianMTModel)
    run_cases("tiny-marian", model, tok, pad, pad)


def main() -> int:
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    tiny_bart()
    tiny_t5("tiny-t5", "relu", True, SEED + 1)
    tiny_t5("tiny-t5-gated", "gated-gelu", False, SEED + 2)
    tiny_marian()
    for name in ["tiny-bart", "tiny-t5", "tiny-t5-gated", "tiny-marian"]:
        size = sum(p.stat().st_size for p in (FIX / name).rglob("*")) + sum(
            p.stat().st_size for p in (GOLD / name).rglob("*"))
        print(f"{name}: {size / 1e3:.0f} kB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
