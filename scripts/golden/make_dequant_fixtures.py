#!/usr/bin/env python3
"""Reference data for the GGUF reader, made with the `gguf` Python package (fixed seed).

fixtures/dequant/<TYPE>.bin   raw blocks of one GGML type (random but valid: the f16 scales are finite)
fixtures/dequant/<TYPE>.npy   gguf.quants.dequantize of those bytes, float32, flat
fixtures/gguf/small.gguf      a tiny GGUF v3 file written by gguf.GGUFWriter: every metadata value type, nested
                              arrays, UTF-8 strings, a custom alignment, tensors of several types
fixtures/gguf/small.json      what a reader must find in small.gguf (read back with gguf.GGUFReader)

Run: python3 scripts/golden/make_dequant_fixtures.py   (from the repository root)
"""
import json
import os
import sys

import numpy as np
import gguf
from gguf import GGMLQuantizationType as T
from gguf.constants import GGML_QUANT_SIZES

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEQ = os.path.join(ROOT, "fixtures", "dequant")
GG = os.path.join(ROOT, "fixtures", "gguf")

# byte offsets of the f16 scale fields inside one block, per type
F16_FIELDS = {
    T.Q4_0: [0], T.Q4_1: [0, 2], T.Q5_0: [0], T.Q5_1: [0, 2], T.Q8_0: [0],
    T.Q2_K: [80, 82], T.Q3_K: [108], T.Q4_K: [0, 2], T.Q5_K: [0, 2], T.Q6_K: [208],
}
# types gguf can quantize from floats (realistic blocks in addition to random ones)
QUANTIZABLE = {T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.Q8_0}


def random_blocks(rng, qtype, n_blocks):
    block, size = GGML_QUANT_SIZES[qtype]
    raw = rng.integers(0, 256, size=(n_blocks, size), dtype=np.uint8)
    for off in F16_FIELDS[qtype]:
        scale = (rng.normal(size=n_blocks) * 0.05).astype(np.float16)
        scale[0] = 0.0  # a zero scale
        raw[:, off:off + 2] = scale.view(np.uint8).reshape(n_blocks, 2)
    if qtype in QUANTIZABLE:
        floats = rng.normal(size=(n_blocks // 2, block)).astype(np.float32)
        raw[n_blocks // 2:] = gguf.quants.quantize(floats, qtype).reshape(n_blocks // 2, size)
    return raw


def special_floats():
    return np.array([0.0, -0.0, np.inf, -np.inf, 6.0e-8, -6.0e-8, 1.0e-40, 65504.0, -65504.0, 1.0, -1.5],
                    dtype=np.float32)


def write_dequant(rng):
    os.makedirs(DEQ, exist_ok=True)
    for qtype in [T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.Q8_0, T.Q2_K, T.Q3_K, T.Q4_K, T.Q5_K, T.Q6_K]:
        block, _ = GGML_QUANT_SIZES[qtype]
        raw = random_blocks(rng, qtype, 64 if block == 32 else 16)
        out = gguf.quants.dequantize(raw.reshape(-1), qtype).astype(np.float32).reshape(-1)
        assert out.size == raw.shape[0] * block and np.all(np.isfinite(out))
        raw.tofile(os.path.join(DEQ, f"{qtype.name}.bin"))
        np.save(os.path.join(DEQ, f"{qtype.name}.npy"), out)
    # F16: normal values, subnormals, infinities, signed zeros (no NaN: NaN payloads are not compared)
    f = np.concatenate([rng.normal(size=1000).astype(np.float32) * 100, special_floats()]).astype(np.float16)
    f.view(np.uint8).tofile(os.path.join(DEQ, "F16.bin"))
    np.save(os.path.join(DEQ, "F16.npy"), gguf.quants.dequantize(f.view(np.uint8), T.F16).astype(np.float32))
    # BF16: random bit patterns with NaNs turned into infinities
    bits = rng.integers(0, 1 << 16, size=1024, dtype=np.uint16)
    nan = ((bits & 0x7F80) == 0x7F80) & ((bits & 0x007F) != 0)
    bits[nan] &= 0xFF80
    bits.view(np.uint8).tofile(os.path.join(DEQ, "BF16.bin"))
    np.save(os.path.join(DEQ, "BF16.npy"), gguf.quants.dequantize(bits.view(np.uint8), T.BF16).astype(np.float32))


def write_small(rng):
    os.makedirs(GG, exist_ok=True)
    path = os.path.join(GG, "small.gguf")
    w = gguf.GGUFWriter(path, arch="testarch")
    w.add_custom_alignment(64)
    w.add_uint8("test.u8", 200)
    w.add_int8("test.i8", -100)
    w.add_uint16("test.u16", 60000)
    w.add_int16("test.i16", -30000)
    w.add_uint32("test.u32", 4000000000)
    w.add_int32("test.i32", -2000000000)
    w.add_float32("test.f32", 0.1)
    w.add_bool("test.bool_true", True)
    w.add_bool("test.bool_false", False)
    w.add_string("test.string", "héllo, 세계 🌍")
    w.add_uint64("test.u64", 18000000000000000000)
    w.add_int64("test.i64", -9000000000000000000)
    w.add_float64("test.f64", 2.718281828459045)
    w.add_array("test.str_array", ["a", "", "토큰", "Ġthe", "🙂"])
    w.add_array("test.i32_array", [1, -2, 3, 2147483647])
    w.add_array("test.f32_array", [0.5, -1.25, 3.0e-5])
    w.add_key_value("test.u8_array", [0, 1, 255], gguf.GGUFValueType.ARRAY, sub_type=gguf.GGUFValueType.UINT8)
    nested = [[1, 2], [3], [4, 5, 6]]
    w.add_array("test.nested", nested)
    w.add_array("test.bool_array", [True, False, True])

    tensors = {}
    a = rng.normal(size=(3, 5)).astype(np.float32)  # GGUF dims [5, 3]
    w.add_tensor("t.f32", a)
    tensors["t.f32"] = a
    b = rng.normal(size=(2, 4)).astype(np.float16)
    w.add_tensor("t.f16", b)
    tensors["t.f16"] = b.astype(np.float32)
    c = rng.normal(size=(4, 64)).astype(np.float32)
    for name, qtype in [("t.q8_0", T.Q8_0), ("t.q4_1", T.Q4_1), ("t.bf16", T.BF16)]:
        q = gguf.quants.quantize(c, qtype)
        w.add_tensor(name, q, raw_dtype=qtype)
        tensors[name] = gguf.quants.dequantize(q, qtype).astype(np.float32)
    raw = random_blocks(rng, T.Q4_K, 2)  # one row of 512 elements
    w.add_tensor("t.q4_k", raw.reshape(1, -1), raw_dtype=T.Q4_K)
    tensors["t.q4_k"] = gguf.quants.dequantize(raw.reshape(1, -1), T.Q4_K).astype(np.float32)
    v = np.arange(7, dtype=np.float32)
    w.add_tensor("t.vec", v)
    tensors["t.vec"] = v
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()

    # read it back with the reference reader
    r = gguf.GGUFReader(path)
    meta = []
    for name, field in r.fields.items():
        if name.startswith("GGUF."):
            continue
        types = [gguf.GGUFValueType(t).name for t in field.types]
        # GGUFReader flattens nested arrays; the nested value is the one written above
        value = nested if name == "test.nested" else field.contents()
        meta.append({"key": name, "type": types, "value": value})
    ts = []
    for t in r.tensors:
        vals = gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32)
        assert np.array_equal(vals.reshape(-1), tensors[t.name].reshape(-1)), t.name
        ts.append({"name": t.name, "dims": [int(d) for d in t.shape], "type": t.tensor_type.name,
                   "offset": int(t.data_offset), "n_bytes": int(t.n_bytes),
                   "shape": list(vals.shape), "values": [float(x) for x in vals.reshape(-1)]})
    expected = {"version": 3, "alignment": 64, "metadata": meta, "tensors": ts,
                "file_size": os.path.getsize(path)}
    with open(os.path.join(GG, "small.json"), "w") as f:
        json.dump(expected, f, indent=1, ensure_ascii=False)
        f.write("\n")


def main():
    rng = np.random.default_rng(20261121)
    write_dequant(rng)
    write_small(rng)
    print("wrote", DEQ, "and", GG, file=sys.stderr)


if __name__ == "__main__":
    main()
