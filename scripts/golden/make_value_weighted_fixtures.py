#!/usr/bin/env python3
"""Value-weighted attention norms (Kobayashi et al., 2020) from transformers, for tests/explain.rs.

For every layer, head, query i and key j: ‖α_ij · v_j W_O^h‖, where α is the attention probability (eager, fp32),
v_j the value vector of key j (the value projection's output, bias included, captured with a forward hook on it)
and W_O^h head h's columns of the output projection (its bias is not per key and is left out).

Reads the committed fixtures (the same token ids as the parity fixtures) and writes
  fixtures/golden/tiny-bert/<case>_value_weighted.npy     [layers, heads, n, n]
  fixtures/golden/tiny-gpt2/<case>_value_weighted.npy
  fixtures/golden/tiny_llama_<case>_value_weighted.npy
  fixtures/golden/minilm/<case>_value_weighted.npy        (when models/minilm exists)

Run from the repository root:  python3 scripts/golden/make_value_weighted_fixtures.py
"""
import json
import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np
import torch
from transformers import AutoModelForCausalLM, BertModel, GPT2LMHeadModel

ROOT = Path(__file__).resolve().parents[2]
FIX = ROOT / "fixtures"
GOLD = FIX / "golden"
MODELS = Path(os.environ.get("ATTN_MODELS_DIR", ROOT / "models"))
torch.manual_seed(0)


def norms(att, v, w_o, n_heads, n_kv):
    """att [H, n, n]; v [n, n_kv·dh]; w_o [d_model, H·dh] (nn.Linear layout) → [H, n, n]."""
    n = v.shape[0]
    dh = v.shape[1] // n_kv
    v = v.reshape(n, n_kv, dh).permute(1, 0, 2)  # [kv, n, dh]
    out = torch.zeros(n_heads, n, n)
    group = n_heads // n_kv
    for h in range(n_heads):
        proj = v[h // group] @ w_o[:, h * dh:(h + 1) * dh].T  # [n, d_model]
        fx = proj.norm(dim=-1)  # ‖v_j W_O^h‖ per key
        out[h] = att[h].abs() * fx[None, :]
    return out.numpy().astype(np.float32)


def run(model, layers, value_module, w_o_of, n_heads, n_kv, ids, kwargs):
    captured = {}
    hooks = [value_module(l).register_forward_hook(
        lambda _m, _i, o, l=l: captured.__setitem__(l, o.detach()[0])) for l in range(layers)]
    with torch.no_grad():
        res = model(torch.tensor([ids]), output_attentions=True, **kwargs)
    for h in hooks:
        h.remove()
    out = []
    for l in range(layers):
        v = captured[l]
        att = res.attentions[l][0]
        out.append(norms(att, v, w_o_of(l), n_heads, n_kv))
    return np.stack(out)


def bert_like(folder: Path, gold: Path):
    model = BertModel.from_pretrained(folder, attn_implementation="eager", torch_dtype=torch.float32).eval()
    cfg = model.config
    layer = lambda l: model.encoder.layer[l].attention
    for case in json.loads((gold / "cases.json").read_text()):
        name = case["name"]
        ids = np.load(gold / f"{name}_ids.npy").tolist()
        types = np.load(gold / f"{name}_type_ids.npy").tolist()
        vw = run(model, cfg.num_hidden_layers, lambda l: layer(l).self.value,
                 lambda l: layer(l).output.dense.weight.detach(), cfg.num_attention_heads, cfg.num_attention_heads,
                 ids, {"token_type_ids": torch.tensor([types])})
        np.save(gold / f"{name}_value_weighted.npy", vw)
        print(gold / f"{name}_value_weighted.npy", vw.shape)



def gpt2(folder: Path, gold: Path):
    model = GPT2LMHeadModel.from_pretrained(folder, attn_implementation="eager", torch_dtype=torch.float32).eval()
    cfg = model.config
    d = cfg.n_embd
    for case in json.loads((gold / "cases.json").read_text()):
        name = case["name"]
        ids = np.load(gold / f"{name}_ids.npy").tolist()
        captured = {}
        hooks = [model.transformer.h[l].attn.c_attn.register_forward_hook(
            lambda _m, _i, o, l=l: captured.__setitem__(l, o.detach()[0, :, 2 * d:])) for l in range(cfg.n_layer)]
        with torch.no_grad():
            res = model(torch.tensor([ids]), output_attentions=True)
        for h in hooks:
            h.remove()
        # Conv1D stores [in, out]: the nn.Linear-layout W_O is its transpose.
        vw = np.stack([norms(res.attentions[l][0], captured[l],
                             model.transformer.h[l].attn.c_proj.weight.detach().T, cfg.n_head, cfg.n_head)
                       for l in range(cfg.n_layer)])
        np.save(gold / f"{name}_value_weighted.npy", vw)
        print(gold / f"{name}_value_weighted.npy", vw.shape)


def tiny_llama():
    model = AutoModelForCausalLM.from_pretrained(
        FIX, gguf_file="tiny-llama.gguf", attn_implementation="eager", torch_dtype=torch.float32).eval()
    cfg = model.config
    layer = lambda l: model.model.layers[l].self_attn
    for case in ["s0", "s1", "s2"]:
        ids = np.load(GOLD / f"tiny_llama_{case}_ids.npy").tolist()
        vw = run(model, cfg.num_hidden_layers, lambda l: layer(l).v_proj, lambda l: layer(l).o_proj.weight.detach(),
                 cfg.num_attention_heads, cfg.num_key_value_heads, ids, {})
        np.save(GOLD / f"tiny_llama_{case}_value_weighted.npy", vw)
        print(GOLD / f"tiny_llama_{case}_value_weighted.npy", vw.shape)


def main():
    bert_like(FIX / "tiny-bert", GOLD / "tiny-bert")
    gpt2(FIX / "tiny-gpt2", GOLD / "tiny-gpt2")
    tiny_llama()
    if (MODELS / "minilm").is_dir():
        bert_like(MODELS / "minilm", GOLD / "minilm")


if __name__ == "__main__":
    main()
