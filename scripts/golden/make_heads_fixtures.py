#!/usr/bin/env python3
"""Reference numbers from transformers for issue 13 (generation, ablation, direct logit attribution, rollout).

For each model — the tiny GPT-2 (fixtures/tiny-gpt2), the tiny Llama (fixtures/tiny-llama.gguf) and, when it exists,
SmolLM2 (models/smollm2.gguf, or $SMOLLM2_GGUF) — loaded with attn_implementation="eager" in float32:

1. Greedy generation: `generate(do_sample=False)` with the EOS stop switched off, so exactly N new ids are produced
   → `generate`: prompt ids and new ids.
2. Ablation of chosen heads: a forward_pre_hook on the attention output projection (GPT-2 `attn.c_proj`, Llama
   `self_attn.o_proj`) sets that head's slice of z (columns h·d_head..(h+1)·d_head of the projection's input) to 0
   (zero-ablation) or to its mean over positions (mean-ablation) → the residual stream entering every block
   `[L, n, d]` (the stream after the last block, before the final norm, as `[L+1]`-th row) and the last position's
   logits `[V]`.
3. Direct logit attribution at the last position for the clean top token: every head's z through its slice of the
   output projection, the output-projection bias, each MLP's output, the token (and position) embeddings; the final
   norm's scale frozen at the clean run (LayerNorm: also its mean-centring, applied to each component) and its bias
   (+ any LM-head bias) as one more component → components that sum to the logit.
4. Attention rollout (Abnar & Zuidema 2020) of the tiny GPT-2, recomputed in numpy from transformers' attentions:
   Ã_l = 0.5·mean_h(A_l) + 0.5·I, rows renormalised; R_0 = Ã_0; R_l = Ã_l·R_{l−1}.

Writes fixtures/golden/heads/<model>.json and <model>_<case>_{hidden,logits}.npy, tiny_gpt2_rollout.npy.
Run from the repository root: `HF_HUB_OFFLINE=1 python3 scripts/golden/make_heads_fixtures.py`.
"""

import json
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import numpy as np
import torch

torch.manual_seed(0)
ROOT = Path(__file__).resolve().parents[2]
FIX = ROOT / "fixtures"
OUT = FIX / "golden" / "heads"
SMOLLM2 = Path(os.environ.get("SMOLLM2_GGUF", ROOT / "models" / "smollm2.gguf"))

MODELS = {
    "tiny_gpt2": dict(
        prompt="The cat sat on the mat", max_new=10, ablations=[("zero", 1, [2]), ("mean", 0, [1, 3])]
    ),
    "tiny_llama": dict(
        prompt="The cat sat on the mat.", max_new=10, ablations=[("zero", 1, [4]), ("mean", 0, [0, 5])]
    ),
    "smollm2": dict(
        prompt="The capital of France is", max_new=12, ablations=[("zero", 3, [2]), ("mean", 9, [0, 7])]
    ),
}


def save(name, arr):
    OUT.mkdir(parents=True, exist_ok=True)
    np.save(OUT / f"{name}.npy", arr)


def load(name):
    from transformers import AutoModelForCausalLM, AutoTokenizer, GPT2LMHeadModel

    if name == "tiny_gpt2":
        from tokenizers import Tokenizer

        tok = Tokenizer.from_file(str(FIX / "tiny-gpt2" / "tokenizer.json"))
        model = GPT2LMHeadModel.from_pretrained(
            FIX / "tiny-gpt2", attn_implementation="eager", torch_dtype=torch.float32
        ).eval()
        return (lambda s: tok.encode(s).ids), model
    path = FIX / "tiny-llama.gguf" if name == "tiny_llama" else SMOLLM2
    d, f = str(path.parent), path.name
    tok = AutoTokenizer.from_pretrained(d, gguf_file=f)
    model = AutoModelForCausalLM.from_pretrained(
        d, gguf_file=f, attn_implementation="eager", torch_dtype=torch.float32
    ).eval()
    return (lambda s: tok(s)["input_ids"]), model


class Parts:
    """The pieces of a decoder-only model that the hooks and the attribution need, for GPT-2 and Llama."""

    def __init__(self, model):
        self.model = model
        self.gpt2 = hasattr(model, "transformer")
        cfg = model.config
        self.n_layers = cfg.num_hidden_layers
        self.n_heads = cfg.num_attention_heads
        self.d_head = cfg.hidden_size // self.n_heads
        if self.gpt2:
            t = model.transformer
            self.blocks = list(t.h)
            self.final_norm = t.ln_f
        else:
            self.blocks = list(model.model.layers)
            self.final_norm = model.model.norm

    def o_proj(self, l):
        b = self.blocks[l]
        return b.attn.c_proj if self.gpt2 else b.self_attn.o_proj

    def o_weight_in_out(self, l):
        """The output projection as [in = heads·d_head, out = d_model]."""
        p = self.o_proj(l)
        return p.weight if self.gpt2 else p.weight.T  # Conv1D stores [in, out]; nn.Linear [out, in]

    def mlp(self, l):
        return self.blocks[l].mlp


def ablate_hook(kind, heads, dh):
    def hook(module, args):
        (z,) = args
        z = z.clone()
        for h in heads:
            s = slice(h * dh, (h + 1) * dh)
            if kind == "zero":
                z[..., s] = 0.0
            else:
                z[..., s] = z[..., s].mean(dim=1, keepdim=True)
        return (z,)

    return hook


@torch.no_grad()
def run(parts, ids, ablation=None):
    """Residual stream entering each block + after the last (before the final norm) [L+1, n, d]; logits [n, V]."""
    handles, captured = [], {}
    if ablation:
        kind, layer, heads = ablation
        handles.append(parts.o_proj(layer).register_forward_pre_hook(ablate_hook(kind, heads, parts.d_head)))
    handles.append(
        parts.final_norm.register_forward_hook(lambda m, inp, out: captured.__setitem__("pre_norm", inp[0]))
    )
    out = parts.model(torch.tensor([ids]), output_hidden_states=True)
    for h in handles:
        h.remove()
    hs = [h[0] for h in out.hidden_states[:-1]] + [captured["pre_norm"][0]]
    return torch.stack(hs).float().numpy(), out.logits[0].float().numpy()


@torch.no_grad()
def attribution(parts, ids, pos):
    """Direct logit attribution at `pos` for the clean top token."""
    m = parts.model
    zs, mlps, captured = {}, {}, {}
    handles = []
    for l in range(parts.n_layers):
        handles.append(parts.o_proj(l).register_forward_pre_hook(lambda mod, a, l=l: zs.__setitem__(l, a[0][0])))
        handles.append(parts.mlp(l).register_forward_hook(lambda mod, a, o, l=l: mlps.__setitem__(l, o[0])))
    handles.append(
        parts.final_norm.register_forward_hook(lambda mod, inp, out: captured.__setitem__("x", inp[0][0]))
    )
    out = m(torch.tensor([ids]))
    for h in handles:
        h.remove()
    logits = out.logits[0, pos].double()
    target = int(torch.argmax(logits))
    comps = []  # (name, vector [d])
    if parts.gpt2:
        comps.append(("embed", m.transformer.wte.weight[ids[pos]]))
        comps.append(("pos_embed", m.transformer.wpe.weight[pos]))
    else:
        comps.append(("embed", m.model.embed_tokens.weight[ids[pos]]))
    dh = parts.d_head
    for l in range(parts.n_layers):
        w = parts.o_weight_in_out(l)
        z = zs[l][pos]
        for h in range(parts.n_heads):
            s = slice(h * dh, (h + 1) * dh)
            comps.append((f"L{l}.H{h}", z[s] @ w[s, :]))
        if parts.o_proj(l).bias is not None:
            comps.append((f"L{l}.attn_bias", parts.o_proj(l).bias))
        comps.append((f"L{l}.MLP", mlps[l][pos]))
    x = captured["x"][pos].double()
    total = sum(c.double() for _, c in comps)
    assert torch.allclose(total, x, atol=1e-3), float((total - x).abs().max())
    norm = parts.final_norm
    u = m.lm_head.weight[target].double()
    if parts.gpt2:  # LayerNorm: (x − mean)/σ·g + b
        mu = x.mean()
        sigma = torch.sqrt(((x - mu) ** 2).mean() + norm.eps)
        g = norm.weight.double()
        values = [(n, float((((c.double() - c.double().mean()) / sigma) * g) @ u)) for n, c in comps]
        values.append(("final_norm_bias", float(norm.bias.double() @ u)))
    else:  # RMSNorm: x/rms·g
        eps = norm.variance_epsilon
        rms = torch.sqrt((x**2).mean() + eps)
        g = norm.weight.double()
        values = [(n, float(((c.double() / rms) * g) @ u)) for n, c in comps]
    if getattr(m.lm_head, "bias", None) is not None:
        values.append(("unembed_bias", float(m.lm_head.bias[target])))
    s = sum(v for _, v in values)
    assert abs(s - float(logits[target])) < 1e-3, (s, float(logits[target]))
    return {
        "position": pos,
        "token": target,
        "logit": float(logits[target]),
        "components": [{"name": n, "value": v} for n, v in values],
    }


@torch.no_grad()
def greedy(parts, ids, n):
    m = parts.model
    out = m.generate(
        torch.tensor([ids]),
        do_sample=False,
        max_new_tokens=n,
        eos_token_id=None,
        pad_token_id=0,
        attention_mask=torch.ones(1, len(ids), dtype=torch.long),
    )
    new = out[0, len(ids) :].tolist()
    # Cross-check: each new id is the argmax of a full forward pass over everything before it.
    seq = list(ids)
    for t in new:
        _, logits = run(parts, seq)
        assert int(np.argmax(logits[-1])) == t
        seq.append(t)
    return new


def rollout(att):
    """att [L, H, n, n] → R [L, n, n]."""
    n = att.shape[-1]
    out, r = [], None
    for layer in att.astype(np.float64):
        a = 0.5 * layer.mean(axis=0) + 0.5 * np.eye(n)
        a = a / a.sum(axis=-1, keepdims=True)
        r = a if r is None else a @ r
        out.append(r)
    return np.stack(out).astype(np.float32)


@torch.no_grad()
def main():
    OUT.mkdir(parents=True, exist_ok=True)
    for name, spec in MODELS.items():
        if name == "smollm2" and not SMOLLM2.exists():
            print(f"note: {SMOLLM2} is missing; SmolLM2 references not regenerated", file=sys.stderr)
            continue
        encode, model = load(name)
        parts = Parts(model)
        ids = encode(spec["prompt"])
        doc = {"prompt": spec["prompt"], "ids": ids}
        doc["generate"] = {"max_new": spec["max_new"], "new_ids": greedy(parts, ids, spec["max_new"])}
        hidden, logits = run(parts, ids)
        doc["clean_top"] = int(np.argmax(logits[-1]))
        doc["ablations"] = []
        for i, (kind, layer, heads) in enumerate(spec["ablations"]):
            h, lg = run(parts, ids, (kind, layer, heads))
            save(f"{name}_ablate{i}_hidden", h.astype(np.float32))
            save(f"{name}_ablate{i}_logits", lg[-1].astype(np.float32))
            doc["ablations"].append({"kind": kind, "layer": layer, "heads": heads, "file": f"{name}_ablate{i}"})
            print(f"{name}: {kind}-ablate L{layer} {heads}: Δlogit(top) {lg[-1][doc['clean_top']] - logits[-1][doc['clean_top']]:+.4f}")
        doc["attribution"] = attribution(parts, ids, len(ids) - 1)
        if name == "tiny_gpt2":
            out = model(torch.tensor([ids]), output_attentions=True)
            att = torch.stack([a[0] for a in out.attentions]).float().numpy()
            save(f"{name}_rollout", rollout(att))
        (OUT / f"{name}.json").write_text(json.dumps(doc, indent=1) + "\n")
        print(f"{name}: ids {ids} → greedy {doc['generate']['new_ids']}; top {doc['clean_top']}")


if __name__ == "__main__":
    main()
