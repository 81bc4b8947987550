#!/usr/bin/env python3
"""F16/BF16 weights kept in their dtype against the same weights as F32, in one interleaved run.

Makes three copies of models/minilm in a temporary folder: its weights rounded to F16 and saved as F16, the same
rounded values saved as F32, and (for the BF16 line) rounded to BF16 and saved as BF16. The F16 and F32 copies hold
exactly the same numbers, so attn's outputs are identical and only memory and time differ. Then, for every round and
every text, `attn show` runs once per copy in a shuffled order; printed: the median wall time and peak RSS of each
(/usr/bin/time), and the ratios half / F32.

Run from the repository root after `cargo build --release --bin attn`, with a Python that has torch + safetensors:
    $VENV/bin/python scripts/bench/half_weights.py [--models models] [--rounds 7]
"""

import argparse
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

ROOT = Path(__file__).resolve().parents[2]
SENTENCE = "The quick brown fox jumps over the lazy dog near the river bank."


def copy_as(src: Path, dst: Path, round_to, save_as) -> None:
    dst.mkdir(parents=True)
    for f in src.iterdir():
        if f.name != "model.safetensors" and f.is_file():
            shutil.copy(f, dst / f.name)
    t = load_file(src / "model.safetensors")
    save_file({k: v.to(round_to).to(save_as).contiguous() for k, v in t.items()}, dst / "model.safetensors")


def run(folder: Path, text: str) -> tuple[float, int]:
    cmd = ["/usr/bin/time", "-f", "%e %M", str(ROOT / "target/release/attn"), "show", "--model", str(folder),
           "--text", text]
    p = subprocess.run(cmd, capture_output=True, text=True, check=True)
    wall, kib = p.stderr.strip().splitlines()[-1].split()
    return float(wall), int(kib)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default=str(ROOT / "models"))
    ap.add_argument("--rounds", type=int, default=7)
    a = ap.parse_args()
    src = Path(a.models) / "minilm"
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        copies = {
            "F16": (tmp / "f16", torch.float16, torch.float16),
            "F32 (F16 values)": (tmp / "f32", torch.float16, torch.float32),
            "BF16": (tmp / "bf16", torch.bfloat16, torch.bfloat16),
        }
        for path, round_to, save_as in copies.values():
            copy_as(src, path, round_to, save_as)
        texts = {f"{n}× sentence": " ".join([SENTENCE] * n) for n in (1, 30)}
        got = {(c, t): [] for c in copies for t in texts}
        for _ in range(a.rounds):
            jobs = [(c, t) for c in copies for t in texts]
            random.shuffle(jobs)
            for c, t in jobs:
                got[(c, t)].append(run(copies[c][0], texts[t]))
        print(f"{'copy':<18} {'text':<14} {'wall s':>8} {'peak MiB':>9} {'wall / F32':>11} {'peak / F32':>11}")
        for t in texts:
            base = got[("F32 (F16 values)", t)]
            bw = statistics.median(w for w, _ in base)
            bm = statistics.median(m for _, m in base)
            for c in copies:
                w = statistics.median(x for x, _ in got[(c, t)])
                m = statistics.median(x for _, x in got[(c, t)])
                print(f"{c:<18} {t:<14} {w:>8.3f} {m / 1024:>9.1f} {w / bw:>11.2f} {m / bm:>11.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
