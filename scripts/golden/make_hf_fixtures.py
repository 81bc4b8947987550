#!/usr/bin/env python3
"""Make the Hugging Face parity fixtures for attn (tests/parity_hf.rs).

Writes, with fixed seeds:
  fixtures/tiny-bert/   a tiny random BertModel (2 layers, 4 heads, d 32) + a tiny WordPiece tokenizer.json
  fixtures/tiny-gpt2/   a tiny random GPT2LMHeadModel (2 layers, 4 heads, d 32) + a tiny byte-level BPE tokenizer.json
  fixtures/golden/<model>/<case>_{ids,type_ids,attentions,hidden,...}.npy + cases.json
      transformers' outputs (attn_implementation="eager", float32, output_attentions/output_hidden_states)
  fixtures/tiny-bert-f16/, fixtures/tiny-gpt2-bf16/  the same two models saved in half precision (F16, BF16), and
      transformers' float32 outputs on them (the half weights upcast) in fixtures/golden/tiny-*-f16|bf16/:
      `python3 scripts/golden/make_hf_fixtures.py half` makes only these, from the committed tiny models
  fixtures/golden/minilm/...  the same for the real all-MiniLM-L6-v2 in models/minilm (3 sentences: English,
      Korean, emoji), when that folder exists (run scripts/fetch-models first).

Run from the repository root with the project venv:  HF_HUB_OFFLINE=1 python3 scripts/golden/make_hf_fixtures.py
Nothing is downloaded: the tokenizers are trained here on the small corpus below.
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
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import BertConfig, BertModel, GPT2Config, GPT2LMHeadModel

ROOT = Path(__file__).resolve().parents[2]
FIX = ROOT / "fixtures"
GOLD = FIX / "golden"
SEED = 20261121

CORPUS = [
    "The cat sat on the mat.",
    "The dog sat on the log.",
    "Attention is all you need.",
    "A transformer reads every token of the sentence at once.",
    "Each head of the attention layer looks at other tokens.",
    "Hello, world! How are you today?",
    "Learning how language models work is fun.",
    "The quick brown fox jumps over the lazy dog.",
    "Residual connections and layer normalization keep training stable.",
    "Queries, keys and values are projections of the hidden states.",
    "Position embeddings tell the model where each token is.",
    "Numbers like 42 and 123 appear in text too.",
    "She said that the weather was nice in Seoul.",
    "Café, naïve and résumé have accents.",
]

BERT_CASES = [
    {"name": "cat", "text": "the cat sat on the mat"},
    {"name": "attention", "text": "Attention is all you need!"},
    {"name": "pair", "text": "The cat sat.", "text_b": "The dog sat on the log."},
    {"name": "unknown", "text": "Héllo wörld 42 ✓"},
]
GPT2_CASES = [
    {"name": "cat", "text": "The cat sat on the mat"},
    {"name": "hello", "text": "Hello, world! How are you?"},
    {"name": "numbers", "text": "Numbers like 42 appear, café ✓"},
]
MINILM_CASES = [
    {"name": "english", "text": "The quick brown fox jumps over the lazy dog."},
    {"name": "korean", "text": "안녕하세요, 세계! 오늘 날씨가 정말 좋네요."},
    {"name": "emoji", "text": "I love pizza 🍕 and coffee ☕, don't you? 🤖🎉"},
]


def wordpiece_tokenizer() -> Tokenizer:
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]", max_input_chars_per_word=100))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True, strip_accents=None, clean_text=True,
                                                handle_chinese_chars=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece(prefix="##")
    trainer = trainers.WordPieceTrainer(vocab_size=160, min_frequency=1, special_tokens=specials,
                                        show_progress=False)
    tok.train_from_iterator(CORPUS, trainer=trainer)
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls), ("[SEP]", sep)])
    return tok


def bytelevel_bpe_tokenizer() -> Tokenizer:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(vocab_size=320, min_frequency=1, special_tokens=["<|endoftext|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(CORPUS, trainer=trainer)
    return tok


def spread_weights(model: torch.nn.Module, gen: torch.Generator) -> None:
    """Replace the tiny default init (std 0.02, which makes every attention row nearly uniform) with larger random
    values, so the attention patterns and LayerNorms are exercised."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "LayerNorm.weight" in name or ".ln_" in name and name.endswith("weight"):
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=gen))
            elif "embeddings" in name or name.endswith("wte.weight") or name.endswith("wpe.weight"):
                p.copy_(torch.randn(p.shape, generator=gen))
            else:
                p.copy_(0.25 * torch.randn(p.shape, generator=gen))


def save_npy(path: Path, arr) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, np.ascontiguousarray(arr))


def run_cases(model, encode, cases, out: Path, decoder: bool) -> None:
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    meta = []
    for case in cases:
        ids, type_ids = encode(case)
        ids_t = torch.tensor([ids], dtype=torch.long)
        kwargs = {"output_attentions": True, "output_hidden_states": True}
        if not decoder:
            kwargs["token_type_ids"] = torch.tensor([type_ids], dtype=torch.long)
            kwargs["attention_mask"] = torch.ones_like(ids_t)
        raw_last = {}
        hook = None
        if decoder:
            # transformers' last hidden_states entry has ln_f applied; attn's hidden[L] is the raw stream.
            block = model.transformer.h[-1]
            hook = block.register_forward_hook(
                lambda _m, _i, o: raw_last.__setitem__("x", (o[0] if isinstance(o, tuple) else o).detach()))
        with torch.no_grad():
            res = model(ids_t, **kwargs)
        if hook is not None:
            hook.remove()
        name = case["name"]
        att = torch.stack([a[0] for a in res.attentions]).numpy().astype(np.float32)  # [L, H, n, n]
        hid = torch.stack([h[0] for h in res.hidden_states]).numpy().astype(np.float32)  # [L+1, n, d]
        save_npy(out / f"{name}_ids.npy", np.array(ids, dtype=np.int64))
        save_npy(out / f"{name}_type_ids.npy", np.array(type_ids, dtype=np.int64))
        save_npy(out / f"{name}_attentions.npy", att)
        if decoder:
            raw = hid.copy()
            raw[-1] = raw_last["x"][0].numpy()
            save_npy(out / f"{name}_hidden.npy", raw)
            save_npy(out / f"{name}_hidden_lnf.npy", hid[-1])
            save_npy(out / f"{name}_logits.npy", res.logits[0].numpy().astype(np.float32))
        else:
            save_npy(out / f"{name}_hidden.npy", hid)
        meta.append({k: v for k, v in case.items()} | {"n_tokens": len(ids)})
    (out / "cases.json").write_text(json.dumps(meta, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


def tiny_bert() -> None:
    tok = wordpiece_tokenizer()
    d = FIX / "tiny-bert"
    if d.exists():
        shutil.rmtree(d)
    torch.manual_seed(SEED)
    cfg = BertConfig(vocab_size=tok.get_vocab_size(), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                     intermediate_size=64, max_position_embeddings=48, type_vocab_size=2, hidden_act="gelu",
                     layer_norm_eps=1e-12)
    model = BertModel(cfg, add_pooling_layer=False)
    spread_weights(model, torch.Generator().manual_seed(SEED))
    model.save_pretrained(d, safe_serialization=True)
    tok.save(str(d / "tokenizer.json"))
    model = BertModel.from_pretrained(d, attn_implementation="eager", torch_dtype=torch.float32).eval()

    def encode(case):
        e = tok.encode(case["text"], case.get("text_b")) if case.get("text_b") else tok.encode(case["text"])
        return e.ids, e.type_ids

    run_cases(model, encode, BERT_CASES, GOLD / "tiny-bert", decoder=False)


def tiny_gpt2() -> None:
    tok = bytelevel_bpe_tokenizer()
    d = FIX / "tiny-gpt2"
    if d.exists():
        shutil.rmtree(d)
    torch.manual_seed(SEED + 1)
    eot = tok.token_to_id("<|endoftext|>")
    cfg = GPT2Config(vocab_size=tok.get_vocab_size(), n_embd=32, n_layer=2, n_head=4, n_positions=48,
                     activation_function="gelu_new", layer_norm_epsilon=1e-5, bos_token_id=eot, eos_token_id=eot)
    model = GPT2LMHeadModel(cfg)
    spread_weights(model, torch.Generator().manual_seed(SEED + 1))
    model.save_pretrained(d, safe_serialization=True)
    tok.save(str(d / "tokenizer.json"))
    model = GPT2LMHeadModel.from_pretrained(d, attn_implementation="eager", torch_dtype=torch.float32).eval()

    def encode(case):
        e = tok.encode(case["text"])
        return e.ids, e.type_ids

    run_cases(model, encode, GPT2_CASES, GOLD / "tiny-gpt2", decoder=True)


def half_variant(name: str, cls, dtype, cases, decoder: bool, suffix: str, **kw) -> None:
    """fixtures/<name>-<suffix>: the committed tiny model saved with its weights in `dtype`; golden outputs of
    transformers on it in float32 (the half values upcast exactly), as attn must reproduce them."""
    src, d = FIX / name, FIX / f"{name}-{suffix}"
    if d.exists():
        shutil.rmtree(d)
    model = cls.from_pretrained(src, torch_dtype=torch.float32, **kw)
    model.to(dtype).save_pretrained(d, safe_serialization=True)
    shutil.copy(src / "tokenizer.json", d / "tokenizer.json")
    tok = Tokenizer.from_file(str(d / "tokenizer.json"))
    model = cls.from_pretrained(d, attn_implementation="eager", torch_dtype=torch.float32, **kw).eval()

    def encode(case):
        e = tok.encode(case["text"], case.get("text_b")) if case.get("text_b") else tok.encode(case["text"])
        return e.ids, e.type_ids

    run_cases(model, encode, cases, GOLD / f"{name}-{suffix}", decoder=decoder)


def half_variants() -> None:
    half_variant("tiny-bert", BertModel, torch.float16, BERT_CASES, False, "f16", add_pooling_layer=False)
    half_variant("tiny-gpt2", GPT2LMHeadModel, torch.bfloat16, GPT2_CASES, True, "bf16")


def minilm() -> None:
    src = Path(os.environ.get("ATTN_MODELS_DIR", ROOT / "models")) / "minilm"
    if not (src / "model.safetensors").exists():
        print(f"note: {src} is missing; skipping the MiniLM golden outputs (run scripts/fetch-models)")
        return
    from transformers import AutoTokenizer
    tok = AutoTokenizer.from_pretrained(src)
    model = BertModel.from_pretrained(src, attn_implementation="eager", torch_dtype=torch.float32).eval()

    def encode(case):
        e = tok(case["text"], truncation=False)
        return e["input_ids"], e["token_type_ids"]

    run_cases(model, encode, MINILM_CASES, GOLD / "minilm", decoder=False)


def main() -> int:
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    if sys.argv[1:] == ["half"]:
        half_variants()
        print("wrote fixtures/tiny-bert-f16, fixtures/tiny-gpt2-bf16 and their golden outputs")
        return 0
    tiny_bert()
    tiny_gpt2()
    half_variants()
    minilm()
    total = sum(p.stat().st_size for p in FIX.rglob("*") if p.is_file() and (
        "tiny-" in str(p) or "golden" in str(p)))
    print(f"wrote fixtures/tiny-bert, fixtures/tiny-gpt2, fixtures/golden ({total / 1e6:.2f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
