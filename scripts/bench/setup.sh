#!/usr/bin/env bash
# Set up the peers for scripts/bench/compare.py in a Python venv: PyTorch (CPU) + transformers + gguf (to read the
# GGUF file in transformers) and llama-cpp-python, which compiles llama.cpp natively for this CPU (a few minutes).
# Usage: scripts/bench/setup.sh [venv dir]   (default: $VENV or .venv-bench); then build attn:
#   cargo build --release --example bench_forward --bin attn
set -euo pipefail
VENV="${1:-${VENV:-.venv-bench}}"
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
fi
"$VENV/bin/pip" install --quiet --upgrade pip
"$VENV/bin/python" -c "import torch" 2>/dev/null ||
    "$VENV/bin/pip" install --quiet torch --index-url https://download.pytorch.org/whl/cpu
"$VENV/bin/pip" install --quiet transformers accelerate gguf sentencepiece protobuf numpy
"$VENV/bin/python" -c "import llama_cpp" 2>/dev/null ||
    CMAKE_ARGS="-DGGML_NATIVE=on" "$VENV/bin/pip" install llama-cpp-python
"$VENV/bin/python" -c "import torch, transformers, llama_cpp; print('torch', torch.__version__, \
'transformers', transformers.__version__, 'llama_cpp', llama_cpp.__version__)"
