#!/usr/bin/env python3
"""Goldens for attn's hook points and head ablation (tests/parity_hooks.rs), from transformers itself.

For each model (the tiny BERT / GPT-2 / Llama fixtures, and all-MiniLM-L6-v2 and SmolLM2-135M when fetched) and the
ids of one committed golden input, with attn_implementation="eager" in float32:
  <model>_q.npy, _k.npy, _v.npy, _z.npy   [layers kept, heads (k, v: kv_heads), n, d_head]
      q/k/v as they enter the dot product: after the projection bias, after RoPE (Llama), not scaled;
      z = the input of the attention output projection, split into heads.
  <model>_ablate_hidden.npy   hidden_states with heads zeroed by a forward_pre_hook on the output projection
                              (layers 0..L-1: the stream entering each block)
  <model>_ablate_last.npy     encoders: the last hidden state; decoders: the logits of the last position
  <model>_ablate_attn.npy     every layer's attention [L, H, n, n] of the ablated run
  <model>_mean_hidden.npy / _mean_last.npy / _mean_attn.npy   the same with mean-ablation (the slice replaced by its mean over positions)
  hooks.json                  ids, the layers kept, the ablated heads
Run from the repository root:  python3 scripts/golden/make_hook_fixtures.py
"""
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np
import torch
from transformers import AutoModelForCausalLM, BertModel, GPT2LMHeadModel
from transformers.models.llama.modeling_llama import apply_rotary_pos_emb

ROOT = Path(__file__).resolve().parents[2]
FIX = ROOT / "fixtures"
GOLD = FIX / "golden"
OUT = GOLD / "hooks"
MODELS = Path(os.environ.get("ATTN_MODELS_DIR", ROOT / "models"))

torch.manual_seed(0)


def heads_of(x, n_heads):
    """[1, n, H·hd] → [H, n, hd]."""
    n = x.shape[1]
    return x[0].reshape(n, n_heads, -1).transpose(0, 1).contiguous()


def save(name, arr):
    np.save(OUT / f"{name}.npy", np.ascontiguousarray(np.asarray(arr, dtype=np.float32)))


class Spec:
    """Where a family keeps its attention modules."""

    def __init__(self, kind, model):
        self.kind = kind
        self.model = model
        cfg = model.config
        if kind == "bert":
            self.layers = model.encoder.layer
            self.n_heads = cfg.num_attention_heads
            self.n_kv = self.n_heads
        elif kind == "gpt2":
            self.layers = model.transformer.h
            self.n_heads = cfg.n_head
            self.n_kv = self.n_heads
        else:
            self.layers = model.model.layers
            self.n_heads = cfg.num_attention_heads
            self.n_kv = cfg.num_key_value_heads

    def out_proj(self, l):
        layer = self.layers[l]
        return {"bert": lambda: layer.attention.output.dense,
                "gpt2": lambda: layer.attn.c_proj,
                "llama": lambda: layer.self_attn.o_proj}[self.kind]()

    def run(self, ids):
        t = torch.tensor([ids])
        kw = {"output_hidden_states": True, "output_attentions": True}
        if self.kind == "bert":
            kw["token_type_ids"] = torch.zeros_like(t)
            kw["attention_mask"] = torch.ones_like(t)
        return self.model(t, **kw)


@torch.no_grad()
def capture_qkvz(spec, ids, keep):
    got = {"q": {}, "k": {}, "v": {}, "z": {}}
    hooks = []
    for l in keep:
        layer = spec.layers[l]
        if spec.kind == "bert":
            a = layer.attention.self
            for name, mod in (("q", a.query), ("k", a.key), ("v", a.value)):
                hooks.append(mod.register_forward_hook(
                    lambda _m, _i, o, name=name, l=l: got[name].__setitem__(l, heads_of(o, spec.n_heads))))
        elif spec.kind == "gpt2":
            def split(_m, _i, o, l=l):
                q, k, v = o.split(o.shape[-1] // 3, dim=-1)
                got["q"][l], got["k"][l], got["v"][l] = (heads_of(x, spec.n_heads) for x in (q, k, v))
            hooks.append(layer.attn.c_attn.register_forward_hook(split))
        else:
            attn = layer.self_attn

            def pre(_m, args, kwargs, attn=attn, l=l):
                h = kwargs.get("hidden_states", args[0] if args else None)
                cos, sin = kwargs["position_embeddings"]
                n = h.shape[1]
                q = attn.q_proj(h).view(1, n, -1, attn.head_dim).transpose(1, 2)
                k = attn.k_proj(h).view(1, n, -1, attn.head_dim).transpose(1, 2)
                v = attn.v_proj(h).view(1, n, -1, attn.head_dim).transpose(1, 2)
                q, k = apply_rotary_pos_emb(q, k, cos, sin)
                got["q"][l], got["k"][l], got["v"][l] = q[0], k[0], v[0]
            hooks.append(attn.register_forward_pre_hook(pre, with_kwargs=True))
        hooks.append(spec.out_proj(l).register_forward_pre_hook(
            lambda _m, args, l=l: got["z"].__setitem__(l, heads_of(args[0], spec.n_heads))))
    spec.run(ids)
    for h in hooks:
        h.remove()
    return {k: torch.stack([v[l] for l in keep]).numpy() for k, v in got.items()}


@torch.no_grad()
def ablated(spec, ids, heads, mean):
    """heads: [(layer, head)]; zero (or mean-replace) each head's slice of the output projection's input."""
    hooks = []
    by_layer = {}
    for l, h in heads:
        by_layer.setdefault(l, []).append(h)
    for l, hs in by_layer.items():
        hd = spec.model.config.hidden_size // spec.n_heads if hasattr(spec.model.config, "hidden_size") else None

        def pre(mod, args, hs=hs):
            x = args[0].clone()
            d = x.shape[-1] // spec.n_heads
            for h in hs:
                sl = x[..., h * d:(h + 1) * d]
                x[..., h * d:(h + 1) * d] = sl.mean(dim=1, keepdim=True).expand_as(sl) if mean else 0.0
            return (x,) + tuple(args[1:])
        del hd
        hooks.append(spec.out_proj(l).register_forward_pre_hook(pre))
    out = spec.run(ids)
    for h in hooks:
        h.remove()
    hidden = torch.stack([h[0] for h in out.hidden_states[:-1]]).numpy()
    attn = torch.stack([a[0] for a in out.attentions]).numpy()
    if spec.kind == "bert":
        last = out.hidden_states[-1][0].numpy()
    else:
        last = out.logits[0, -1].numpy()
    return hidden, last, attn


def family(name, kind, model, ids, keep, heads, meta):
    spec = Spec(kind, model.eval())
    cap = capture_qkvz(spec, ids, keep)
    for k, v in cap.items():
        save(f"{name}_{k}", v)
    for mean in (False, True):
        hidden, last, attn = ablated(spec, ids, heads, mean)
        tag = "mean" if mean else "ablate"
        save(f"{name}_{tag}_hidden", hidden)
        save(f"{name}_{tag}_last", last)
        save(f"{name}_{tag}_attn", attn)
    meta[name] = {"ids": [int(i) for i in ids], "layers": keep, "ablate": [list(h) for h in heads]}
    print(f"{name}: {len(ids)} tokens, layers {keep}, ablated {heads}")


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    meta = {}
    ids = np.load(GOLD / "tiny-bert" / "cat_ids.npy").tolist()
    family("tiny_bert", "bert", BertModel.from_pretrained(FIX / "tiny-bert", attn_implementation="eager"),
           ids, [0, 1], [(0, 1), (1, 2), (1, 3)], meta)
    ids = np.load(GOLD / "tiny-gpt2" / "cat_ids.npy").tolist()
    family("tiny_gpt2", "gpt2", GPT2LMHeadModel.from_pretrained(FIX / "tiny-gpt2", attn_implementation="eager"),
           ids, [0, 1], [(0, 0), (1, 3)], meta)
    ids = np.load(GOLD / "tiny_llama_s1_ids.npy").tolist()
    llama = AutoModelForCausalLM.from_pretrained(FIX, gguf_file="tiny-llama.gguf", attn_implementation="eager",
                                                 torch_dtype=torch.float32)
    n_layers = llama.config.num_hidden_layers
    family("tiny_llama", "llama", llama, ids, list(range(n_layers)), [(0, 1), (n_layers - 1, 0)], meta)
    if (MODELS / "minilm" / "config.json").exists():
        ids = np.load(GOLD / "minilm" / "english_ids.npy").tolist()
        family("minilm", "bert", BertModel.from_pretrained(MODELS / "minilm", attn_implementation="eager"),
               ids, [0, 3, 5], [(2, 8), (4, 1)], meta)
    else:
        print("note: models/minilm missing; MiniLM hook goldens not regenerated", file=sys.stderr)
    if (MODELS / "smollm2.gguf").exists():
        ids = np.load(GOLD / "smollm2_s0_ids.npy").tolist()
        sm = AutoModelForCausalLM.from_pretrained(MODELS, gguf_file="smollm2.gguf", attn_implementation="eager",
                                                  torch_dtype=torch.float32)
        family("smollm2", "llama", sm, ids, [0, 1, 15, 29], [(3, 0), (3, 5), (12, 2)], meta)
    else:
        print("note: models/smollm2.gguf missing; SmolLM2 hook goldens not regenerated", file=sys.stderr)
    (OUT / "hooks.json").write_text(json.dumps(meta, indent=1) + "\n")


if __name__ == "__main__":
    main()
