#!/usr/bin/env python3
"""Golden cross-attention hook points for attn's `cross.q/k/v/z` (tests/parity_encdec.rs).

Reads the tiny encoder–decoder folders and the cases written by make_encdec_fixtures.py (fixtures/tiny-bart,
tiny-t5, tiny-marian; fixtures/golden/<model>/<case>_src_ids.npy and _dec_in_ids.npy), runs transformers (eager,
float32) with forward hooks on every decoder layer's cross-attention projections, and writes
fixtures/golden/<model>/<case>_cross_{q,k,v,z}.npy, each [layers, heads, n, d_head]:
  q: the query projection of the decoder stream (after the cross-attention norm for T5), unscaled
  k, v: the key and value projections of the encoder output (n = source length)
  z: what enters the output projection (per head: Σ_j α_ij v_j)
Nothing is random here (the weights are the folders'); nothing is downloaded.

Run from the repository root:  python3 scripts/golden/make_cross_hook_fixtures.py
"""
import json
import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np
import torch
from transformers import AutoModelForSeq2SeqLM

ROOT = Path(__file__).resolve().parents[2]
GOLD = ROOT / "fixtures" / "golden"


def cross_modules(model):
    """Per decoder layer: the (q, k, v, o) projections of its cross-attention."""
    if hasattr(model, "decoder") and hasattr(model.decoder, "block"):  # T5
        return [(b.layer[1].EncDecAttention.q, b.layer[1].EncDecAttention.k, b.layer[1].EncDecAttention.v,
                 b.layer[1].EncDecAttention.o) for b in model.decoder.block], model.config.num_heads
    layers = model.model.decoder.layers  # BART, Marian
    return [(l.encoder_attn.q_proj, l.encoder_attn.k_proj, l.encoder_attn.v_proj, l.encoder_attn.out_proj)
            for l in layers], model.config.decoder_attention_heads


def heads(x, h):
    """[1, n, h·d] → [h, n, d]."""
    _, n, hd = x.shape
    return x[0].reshape(n, h, hd // h).permute(1, 0, 2).detach().numpy().astype(np.float32)


def main():
    torch.manual_seed(0)
    for name in ["tiny-bart", "tiny-t5", "tiny-marian"]:
        model = AutoModelForSeq2SeqLM.from_pretrained(ROOT / "fixtures" / name, attn_implementation="eager",
                                                      torch_dtype=torch.float32).eval()
        mods, h = cross_modules(model)
        cases = json.loads((GOLD / name / "cases.json").read_text(encoding="utf-8"))
        for case in cases:
            c = case["name"]
            src = torch.tensor(np.load(GOLD / name / f"{c}_src_ids.npy")).long().reshape(1, -1)
            dec = torch.tensor(np.load(GOLD / name / f"{c}_dec_in_ids.npy")).long().reshape(1, -1)
            got = {w: [None] * len(mods) for w in "qkvz"}
            hooks = []
            for l, (q, k, v, o) in enumerate(mods):
                for w, m in (("q", q), ("k", k), ("v", v)):
                    hooks.append(m.register_forward_hook(
                        lambda _m, _i, out, w=w, l=l: got[w].__setitem__(l, heads(out, h))))
                hooks.append(o.register_forward_pre_hook(
                    lambda _m, inp, l=l: got["z"].__setitem__(l, heads(inp[0], h))))
            with torch.no_grad():
                model(input_ids=src, decoder_input_ids=dec)
            for hk in hooks:
                hk.remove()
            for w in "qkvz":
                np.save(GOLD / name / f"{c}_cross_{w}.npy", np.ascontiguousarray(np.stack(got[w])))
        print(name, "ok")


if __name__ == "__main__":
    main()
