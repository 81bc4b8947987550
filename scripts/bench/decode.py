#!/usr/bin/env python3
"""One generated token of SmolLM2 with a KV cache: attn against llama.cpp (llama-cpp-python), interleaved, in one run.

For every round, in a shuffled order:
- attn: `attn generate --model GGUF --text PROMPT --max-new N` (release build; a new process per round); the time
  read is the mean of its N − 1 incremental steps, each a KV-cache step with the new token's attention row recorded,
  which `attn generate` prints ("… ms per token with the KV cache");
- llama.cpp: the same GGUF, n_threads as attn's rayon threads, the KV cache reset, the prompt evaluated, then N
  single-token `eval` calls of the greedy continuation (each timed); the time is their mean.
With more than one thread, llama.cpp also runs with one thread (its threads spin while they wait for each other, which
a busy machine punishes). Printed: the prompt's length in tokens, the median over rounds of each engine's per-token
mean, and the ratios.

Run from the repository root (llama-cpp-python from scripts/bench/setup.sh):
    cargo build --release --bin attn
    $VENV/bin/python scripts/bench/decode.py [--model models/smollm2.gguf] [--rounds 7] [--max-new 20]
"""

import argparse
import os
import random
import re
import statistics
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
THREADS = int(os.environ.get("ATTN_BENCH_THREADS", "2"))
os.environ["RAYON_NUM_THREADS"] = str(THREADS)

PROMPT = ("The quick brown fox jumps over the lazy dog while the cat sat on the mat, and a small language model "
          "tried to predict every next word of this long sentence, one token at a time, again and again until the "
          "end of the afternoon.")


def attn_step_ms(binary, model, max_new):
    p = subprocess.run([str(binary), "generate", "--model", model, "--text", PROMPT, "--max-new", str(max_new)],
                       capture_output=True, text=True, check=True)
    m = re.search(r"([0-9.]+) ms per token with the KV cache", p.stdout + p.stderr)
    if not m:
        raise SystemExit(f"attn generate printed no per-token time:\n{p.stdout}\n{p.stderr}")
    return float(m.group(1))


class LlamaCpp:
    def __init__(self, model, threads):
        from llama_cpp import Llama
        self.llm = Llama(model_path=model, n_threads=threads, n_threads_batch=threads, n_ctx=512, verbose=False)
        self.prompt = self.llm.tokenize(PROMPT.encode(), add_bos=False)

    def step_ms(self, max_new):
        llm = self.llm
        llm.reset()
        llm.eval(self.prompt)
        times = []
        for _ in range(max_new):
            nxt = int(llm.scores[llm.n_tokens - 1].argmax())
            t = time.perf_counter()
            llm.eval([nxt])
            times.append((time.perf_counter() - t) * 1e3)
        return statistics.mean(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="models/smollm2.gguf")
    ap.add_argument("--binary", default=str(ROOT / "target" / "release" / "attn"))
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--max-new", type=int, default=20)
    a = ap.parse_args()
    llama = LlamaCpp(a.model, THREADS)
    runs = {"attn": lambda: attn_step_ms(a.binary, a.model, a.max_new), "llama.cpp": lambda: llama.step_ms(a.max_new)}
    if THREADS > 1:
        # llama.cpp's threads wait for each other by spinning, which a busy machine punishes: one thread as well.
        llama1 = LlamaCpp(a.model, 1)
        runs["llama.cpp, 1 thread"] = lambda: llama1.step_ms(a.max_new)
    res = {name: [] for name in runs}
    random.seed(0)
    for _ in range(a.rounds):
        order = list(runs)
        random.shuffle(order)
        for name in order:
            res[name].append(runs[name]())
    load = os.getloadavg()[0]
    print(f"# one generated token, KV cache, {a.max_new} new tokens after a {len(llama.prompt)}-token prompt")
    print(f"threads {THREADS}; rounds {a.rounds}; load average (1 min) at the end {load:.2f}")
    for name, v in res.items():
        print(f"{name}: median {statistics.median(v):.1f} ms per token (rounds: {', '.join(f'{x:.1f}' for x in v)})")
    for name in res:
        if name != "attn":
            print(f"attn / {name}: {statistics.median(res['attn']) / statistics.median(res[name]):.2f}")


if __name__ == "__main__":
    main()
