#!/usr/bin/env python3
"""attn against PyTorch (transformers, eager, fp32) and llama.cpp (llama-cpp-python) on the same texts, in one run.

Each engine is loaded once; then, for every round, every text is run once by every engine in a shuffled order, so
the engines share the machine's state (load, temperature, other processes) equally. Printed: the token counts, the
median forward time per engine and text, and the ratios attn / peer. Also timed: the whole `attn show` process
(wall and peak RSS, via /usr/bin/time -v) and the load times.

What is timed, per engine (all with 2 threads unless ATTN_BENCH_THREADS says otherwise):
- attn: `examples/bench_forward.rs` — tokenize + forward recording every attention matrix and, for decoders, the
  top-5 next tokens at every position (a persistent child process fed over stdin; times measured inside it);
- PyTorch: tokenize + `model(ids, output_attentions=True, output_hidden_states=True)` under no_grad, and for
  decoders softmax + top-5 of the logits at every position;
- llama.cpp: tokenize + `eval` of all tokens with logits at every position (`logits_all=True`), the KV cache reset
  first; it does not expose attention matrices.

Run from the repository root after scripts/bench/setup.sh:
    cargo build --release --example bench_forward --bin attn
    $VENV/bin/python scripts/bench/compare.py [--models models] [--rounds 10] [--only smollm2|minilm]
"""

import argparse
import json
import os
import random
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
THREADS = int(os.environ.get("ATTN_BENCH_THREADS", "2"))
# Idle time before every timed run: the previous engine's worker threads (llama.cpp's pool, OpenMP's) busy-wait for a
# while after their work, and would otherwise share the cores with the next engine's run. Each run thus starts as a
# single request does on an idle machine, for every engine alike.
SETTLE_S = float(os.environ.get("ATTN_BENCH_SETTLE", "0.2"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ["RAYON_NUM_THREADS"] = str(THREADS)
os.environ["OMP_NUM_THREADS"] = str(THREADS)


def texts():
    return json.loads((ROOT / "scripts" / "bench" / "texts.json").read_text())


class Attn:
    name = "attn"

    def __init__(self, spec, binary, extra_args=()):
        t = time.perf_counter()
        self.p = subprocess.Popen([str(binary), spec, *extra_args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  text=True, bufsize=1)
        line = self.p.stdout.readline().split()
        if not line or line[0] != "ready":
            raise SystemExit(f"attn bench_forward failed to start for {spec}")
        self.load_ms = float(line[1])
        self.start_ms = (time.perf_counter() - t) * 1e3

    def run(self, text):
        self.p.stdin.write(json.dumps(text) + "\n")
        n, ms = self.p.stdout.readline().split()
        return int(n), float(ms)

    def close(self):
        self.p.stdin.close()
        self.p.wait()


class Torch:
    name = "pytorch"

    def __init__(self, kind, path):
        import torch
        torch.set_num_threads(THREADS)
        from transformers import AutoModel, AutoModelForCausalLM, AutoTokenizer
        self.torch = torch
        self.decoder = kind == "smollm2"
        t = time.perf_counter()
        if self.decoder:
            p = Path(path)
            self.tok = AutoTokenizer.from_pretrained(str(p.parent), gguf_file=p.name)
            self.model = AutoModelForCausalLM.from_pretrained(
                str(p.parent), gguf_file=p.name, attn_implementation="eager", dtype=torch.float32).eval()
        else:
            self.tok = AutoTokenizer.from_pretrained(path)
            self.model = AutoModel.from_pretrained(path, attn_implementation="eager", dtype=torch.float32).eval()
        self.load_ms = (time.perf_counter() - t) * 1e3

    def run(self, text):
        torch = self.torch
        s = time.perf_counter()
        ids = self.tok(text, return_tensors="pt")["input_ids"]
        with torch.no_grad():
            out = self.model(ids, output_attentions=True, output_hidden_states=True)
            if self.decoder:
                out.logits.softmax(-1).topk(5, dim=-1)
        return ids.shape[1], (time.perf_counter() - s) * 1e3


class LlamaCpp:
    name = "llama.cpp"

    def __init__(self, path, n_ctx):
        from llama_cpp import Llama
        t = time.perf_counter()
        self.llm = Llama(model_path=str(path), n_threads=THREADS, n_threads_batch=THREADS, n_ctx=n_ctx,
                         n_batch=n_ctx, n_ubatch=n_ctx, logits_all=True, verbose=False)
        self.load_ms = (time.perf_counter() - t) * 1e3

    def run(self, text):
        s = time.perf_counter()
        ids = self.llm.tokenize(text.encode(), add_bos=False, special=False)
        self.llm.reset()
        self.llm.eval(ids)
        return len(ids), (time.perf_counter() - s) * 1e3


def interleave(engines, items, rounds):
    times = {(e.name, i): [] for e in engines for i in range(len(items))}
    tokens = {}
    for e in engines:  # warm-up: one run of everything
        for i, it in enumerate(items):
            tokens[(e.name, i)] = e.run(it["text"])[0]
    rng = random.Random(0)
    for _ in range(rounds):
        for i, it in enumerate(items):
            order = list(engines)
            rng.shuffle(order)
            for e in order:
                time.sleep(SETTLE_S)
                times[(e.name, i)].append(e.run(it["text"])[1])
    return tokens, {k: statistics.median(v) for k, v in times.items()}


def table(title, engines, items, tokens, med):
    names = [e.name for e in engines]
    print(f"\n## {title}\n")
    head = "| text | " + " | ".join(f"{n}: tokens, median ms" for n in names)
    ratios = [n for n in names if n != "attn"]
    head += "".join(f" | attn / {n}" for n in ratios) + " |"
    print(head)
    print("|" + "---|" * (1 + len(names) + len(ratios)))
    for i, it in enumerate(items):
        row = f"| {it['name']} | " + " | ".join(f"{tokens[(n, i)]}: {med[(n, i)]:.1f}" for n in names)
        row += "".join(f" | {med[('attn', i)] / med[(n, i)]:.2f}" for n in ratios) + " |"
        print(row)
    print("\nload: " + ", ".join(f"{e.name} {e.load_ms:.0f} ms" for e in engines))


def show_process(binary, spec, text, runs):
    """Median wall time and the largest peak RSS of `attn show` (the whole process) over `runs` runs."""
    walls, rss = [], []
    for _ in range(runs):
        r = subprocess.run(["/usr/bin/time", "-v", str(binary), "show", "--model", spec, "--text", text,
                            "--color", "never"], capture_output=True, text=True)
        if r.returncode != 0:
            raise SystemExit(f"attn show failed: {r.stderr[-500:]}")
        m = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (?:(\d+):)?(\d+):([\d.]+)", r.stderr)
        walls.append(int(m.group(1) or 0) * 3600 + int(m.group(2)) * 60 + float(m.group(3)))
        rss.append(int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", r.stderr).group(1)) / 1024)
    return statistics.median(walls), max(rss)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default=os.environ.get("ATTN_MODELS_DIR", str(ROOT / "models")))
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--only", choices=["smollm2", "minilm"])
    args = ap.parse_args()
    models = Path(args.models)
    target = ROOT / "target" / "release"
    server = target / "examples" / "bench_forward"
    items = texts()
    print(f"# attn vs PyTorch vs llama.cpp, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    print(f"machine: {os.cpu_count()} cores, {platform_cpu()}; threads per engine {THREADS}; "
          f"load average {os.getloadavg()[0]:.1f}; rounds {args.rounds}")
    if args.only != "minilm":
        gguf = models / "smollm2.gguf"
        engines = [Attn(str(gguf), server), Torch("smollm2", gguf), LlamaCpp(gguf, 1024)]
        tokens, med = interleave(engines, items, args.rounds)
        table("SmolLM2-135M (Q4_1 GGUF): forward, every attention + top-5 at every position", engines, items,
              tokens, med)
        for e in engines:
            if isinstance(e, Attn):
                e.close()
        wall, rss = show_process(target / "attn", str(gguf), items[0]["text"], 5)
        print(f"\n`attn show` whole process, SmolLM2, {items[0]['name']}: median wall {wall:.2f} s, "
              f"peak RSS {rss:.0f} MiB")
        del engines
    if args.only != "smollm2":
        folder = models / "minilm"
        engines = [Attn(str(folder), server), Torch("minilm", folder)]
        tokens, med = interleave(engines, items, args.rounds)
        table("all-MiniLM-L6-v2: forward, every attention", engines, items, tokens, med)
        engines[0].close()
        wall, rss = show_process(target / "attn", str(folder), items[0]["text"], 5)
        print(f"\n`attn show` whole process, MiniLM, {items[0]['name']}: median wall {wall:.2f} s, "
              f"peak RSS {rss:.0f} MiB")


def platform_cpu():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


if __name__ == "__main__":
    sys.exit(main())
