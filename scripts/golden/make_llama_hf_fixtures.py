#!/usr/bin/env python3
"""Fixtures for Llama from Hugging Face folders (tests/parity_llama_hf.rs).

Writes, with fixed seeds:
  fixtures/tiny-llama-hf/       a tiny random LlamaForCausalLM (2 layers, 4 query heads / 2 KV heads, hidden 32,
                                untied LM head) saved by transformers in F32, with fixtures/tiny-gpt2's byte-level
                                BPE tokenizer.json
  fixtures/tiny-llama-hf-bf16/  the same architecture with a tied LM head, saved in BF16 (as SmolLM2's own folder is)
  fixtures/golden/<folder>/<case>_{ids,attentions,hidden,logits}.npy + cases.json: transformers' outputs
      (attn_implementation="eager", float32; hidden[L] is the raw stream before the final norm, as attn records it)

Run from the repository root with the project venv:  python3 scripts/golden/make_llama_hf_fixtures.py
"""
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import torch
from tokenizers import Tokenizer
from transformers import LlamaConfig, LlamaForCausalLM

ROOT = Path(__file__).resolve().parents[2]
FIX = ROOT / "fixtures"
GOLD = FIX / "golden"
SEED = 20261122
CASES = [
    {"name": "cat", "text": "The cat sat on the mat"},
    {"name": "hello", "text": "Hello, world! How are you?"},
    {"name": "numbers", "text": "Numbers like 42 appear, café ✓"},
]


def tiny(vocab: int, tied: bool, seed: int) -> LlamaForCausalLM:
    cfg = LlamaConfig(vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64, rms_norm_eps=1e-5,
                      rope_theta=10000.0, tie_word_embeddings=tied, attention_bias=False, mlp_bias=False)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(cfg).eval()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=g))
            elif "q_proj" in name or "k_proj" in name:
                # Large enough that the attention is far from uniform.
                p.copy_(0.5 * torch.randn(p.shape, generator=g))
            elif "embed_tokens" in name:
                p.copy_(torch.randn(p.shape, generator=g))
            else:
                p.copy_(0.15 * torch.randn(p.shape, generator=g))
    return model


@torch.no_grad()
def goldens(folder: Path, tok: Tokenizer) -> None:
    model = LlamaForCausalLM.from_pretrained(folder, attn_implementation="eager", torch_dtype=torch.float32).eval()
    out_dir = GOLD / folder.name
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    meta = []
    for case in CASES:
        ids = tok.encode(case["text"]).ids
        captured = {}
        hook = model.model.norm.register_forward_hook(lambda m, i, o: captured.__setitem__("x", i[0]))
        res = model(torch.tensor([ids]), output_attentions=True, output_hidden_states=True)
        hook.remove()
        att = torch.stack([a[0] for a in res.attentions]).numpy().astype(np.float32)
        hidden = torch.stack([h[0] for h in res.hidden_states[:-1]] + [captured["x"][0]]).numpy().astype(np.float32)
        np.save(out_dir / f"{case['name']}_ids.npy", np.array(ids, dtype=np.int64))
        np.save(out_dir / f"{case['name']}_attentions.npy", att)
        np.save(out_dir / f"{case['name']}_hidden.npy", hidden)
        np.save(out_dir / f"{case['name']}_logits.npy", res.logits[0].numpy().astype(np.float32))
        meta.append(case | {"n_tokens": len(ids)})
    (out_dir / "cases.json").write_text(json.dumps(meta, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


def main() -> int:
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    tok_path = FIX / "tiny-gpt2" / "tokenizer.json"
    tok = Tokenizer.from_file(str(tok_path))
    for name, tied, dtype, seed in [("tiny-llama-hf", False, torch.float32, SEED),
                                    ("tiny-llama-hf-bf16", True, torch.bfloat16, SEED + 1)]:
        d = FIX / name
        if d.exists():
            shutil.rmtree(d)
        tiny(tok.get_vocab_size(), tied, seed).to(dtype).save_pretrained(d, safe_serialization=True)
        shutil.copy(tok_path, d / "tokenizer.json")
        goldens(d, tok)
    print("wrote fixtures/tiny-llama-hf, fixtures/tiny-llama-hf-bf16 and fixtures/golden/tiny-llama-hf*")
    return 0


if __name__ == "__main__":
    sys.exit(main())
