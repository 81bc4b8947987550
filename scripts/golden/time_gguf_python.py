#!/usr/bin/env python3
"""Time the `gguf` Python package reading models/smollm2.gguf and dequantizing every tensor (for docs/performance.md).

Run: python3 scripts/golden/time_gguf_python.py [path]
"""
import sys
import time

import gguf
from importlib.metadata import version


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else "models/smollm2.gguf"
    runs = []
    for _ in range(3):
        t0 = time.perf_counter()
        r = gguf.GGUFReader(path)
        t1 = time.perf_counter()
        n = 0
        for t in r.tensors:
            n += gguf.quants.dequantize(t.data, t.tensor_type).size
        t2 = time.perf_counter()
        runs.append((t1 - t0, t2 - t0))
    parse, total = min(runs, key=lambda x: x[1])
    print(f"gguf {version('gguf')} GGUFReader: {parse * 1000:.0f} ms; + dequantize all tensors ({n} values): "
          f"{total * 1000:.0f} ms (best of 3)")


if __name__ == "__main__":
    main()
