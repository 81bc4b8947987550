#!/usr/bin/env python3
"""Time transformers on SmolLM2-135M from the same GGUF file and sentences `benches/llama.rs` uses
(fixtures/smollm2_bench_texts.json): load (parse + dequantize + build the model), and one forward pass with every
attention recorded (eager attention, fp32, output_attentions + output_hidden_states, no grad), median of N runs.

Run from the repository root: `HF_HUB_OFFLINE=1 python scripts/golden/time_transformers_smollm2.py [path.gguf]`.
`TORCH_THREADS=N` sets torch's intra-op threads (default: torch's choice, the number of cores).
"""

import json
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

torch.manual_seed(0)
if os.environ.get("TORCH_THREADS"):
    torch.set_num_threads(int(os.environ["TORCH_THREADS"]))
ROOT = Path(__file__).resolve().parents[2]
GGUF = Path(sys.argv[1] if len(sys.argv) > 1 else os.environ.get("SMOLLM2_GGUF", ROOT / "models" / "smollm2.gguf"))
RUNS = 20


def main():
    texts = json.loads((ROOT / "fixtures" / "smollm2_bench_texts.json").read_text())
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, load average {os.getloadavg()[0]:.1f}")
    t0 = time.perf_counter()
    tok = AutoTokenizer.from_pretrained(str(GGUF.parent), gguf_file=GGUF.name)
    t1 = time.perf_counter()
    model = AutoModelForCausalLM.from_pretrained(
        str(GGUF.parent), gguf_file=GGUF.name, attn_implementation="eager", torch_dtype=torch.float32
    ).eval()
    t2 = time.perf_counter()
    print(f"load: tokenizer {t1 - t0:.2f} s, model {t2 - t1:.2f} s, total {t2 - t0:.2f} s")
    for item in texts:
        ids = tok(item["text"])["input_ids"]
        assert len(ids) == item["tokens"], f"{item['name']}: {len(ids)} tokens, expected {item['tokens']}"
        x = torch.tensor([ids])
        times = []
        with torch.no_grad():
            for i in range(RUNS + 3):
                s = time.perf_counter()
                out = model(x, output_attentions=True, output_hidden_states=True)
                _ = out.logits.softmax(-1).topk(5, dim=-1)
                e = time.perf_counter()
                if i >= 3:
                    times.append(e - s)
        print(f"forward {item['name']}: median {statistics.median(times) * 1e3:.1f} ms, "
              f"min {min(times) * 1e3:.1f} ms ({RUNS} runs)")


if __name__ == "__main__":
    main()
