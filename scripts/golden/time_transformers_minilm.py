#!/usr/bin/env python3
"""Time transformers on all-MiniLM-L6-v2 for the sentences of benches/hf.rs (5, 40 and 458 tokens).

Measures, on this machine: Python start-up + `import torch, transformers`; loading the model folder
(BertModel.from_pretrained, eager attention, float32); and one forward pass with output_attentions and
output_hidden_states (torch.no_grad, default torch threads), reporting the median and minimum over repeats.

Run: HF_HUB_OFFLINE=1 python3 scripts/golden/time_transformers_minilm.py [models/minilm]
Set TORCH_THREADS=1 to compare with attn on one thread (ATTN_THREADS=1).
"""
import time

T0 = time.perf_counter()
import os  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402

os.environ.setdefault("HF_HUB_OFFLINE", "1")
import torch  # noqa: E402
from transformers import AutoTokenizer, BertModel  # noqa: E402

IMPORT_S = time.perf_counter() - T0

MID = ("The quick brown fox jumps over the lazy dog while the cat sleeps on the warm mat, and attention heads in a "
       "transformer decide which words matter most to each other today in the lab.")
SENTENCES = [(5, "I love AI"), (40, MID), (458, " ".join([MID] * 12))]


def timed(fn, repeats):
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e3, min(times) * 1e3


def main() -> None:
    torch.manual_seed(0)
    if os.environ.get("TORCH_THREADS"):
        torch.set_num_threads(int(os.environ["TORCH_THREADS"]))
    src = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "..", "models", "minilm")
    tok = AutoTokenizer.from_pretrained(src)
    load_med, load_min = timed(lambda: BertModel.from_pretrained(src, attn_implementation="eager",
                                                                  dtype=torch.float32), 5)
    model = BertModel.from_pretrained(src, attn_implementation="eager", dtype=torch.float32).eval()
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}; python start-up + imports "
          f"{IMPORT_S * 1e3:.0f} ms; load median {load_med:.1f} ms (min {load_min:.1f})")
    for n_want, text in SENTENCES:
        enc = tok(text, return_tensors="pt", truncation=False)
        n = enc["input_ids"].shape[1]
        assert n == n_want, f"sentence has {n} tokens, expected {n_want}"

        def fwd():
            with torch.no_grad():
                out = model(**enc, output_attentions=True, output_hidden_states=True)
            return out

        for _ in range(3):
            fwd()
        repeats = 30 if n < 100 else 10
        med, mn = timed(fwd, repeats)
        print(f"{n:4d} tokens: forward median {med:.1f} ms (min {mn:.1f}) over {repeats} runs")


if __name__ == "__main__":
    main()
