#!/usr/bin/env python3
"""Samples of SmolLM2-135M's dequantized tensors, read with the `gguf` Python package, for tests/gguf_real.rs.

fixtures/gguf/smollm2_samples.json: for a few tensors of each type in the file (Q4_1, Q8_0, F32): name, type, GGUF
dims, absolute data offset, the first 40 values of the first and last rows, and the sum of all values (float64).

Run (needs models/smollm2.gguf): python3 scripts/golden/make_smollm2_gguf_samples.py
"""
import json
import os

import numpy as np
import gguf

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NAMES = ["token_embd.weight", "blk.0.attn_q.weight", "blk.0.attn_k.weight", "blk.29.ffn_down.weight",
         "blk.0.attn_norm.weight", "output_norm.weight"]


def main():
    r = gguf.GGUFReader(os.path.join(ROOT, "models", "smollm2.gguf"))
    by_name = {t.name: t for t in r.tensors}
    out = []
    for name in NAMES:
        t = by_name[name]
        v = gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32)
        v = v.reshape(-1, int(t.shape[0]))
        out.append({"name": name, "type": t.tensor_type.name, "dims": [int(d) for d in t.shape],
                    "offset": int(t.data_offset), "first_row": [float(x) for x in v[0, :40]],
                    "last_row": [float(x) for x in v[-1, :40]], "sum": float(v.astype(np.float64).sum())})
    with open(os.path.join(ROOT, "fixtures", "gguf", "smollm2_samples.json"), "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
