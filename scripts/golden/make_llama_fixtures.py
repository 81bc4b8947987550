#!/usr/bin/env python3
"""Fixtures and goldens for the Llama-from-GGUF parity tests (issue 4).

1. A small byte-level BPE vocabulary trained with `tokenizers` on mixed English/Korean/emoji/code text.
2. A tiny random LlamaForCausalLM (2 layers, 6 query heads / 2 KV heads, hidden 96, untied LM head) written as
   GGUF the way llama.cpp's converter writes one: `llama.*` metadata, `tokenizer.ggml.*` metadata (model "gpt2",
   pre "llama-bpe", BOS added), Q and K rows permuted for llama.cpp's adjacent-pair RoPE, and a mix of Q8_0, Q4_1,
   F16 and F32 tensors → fixtures/tiny-llama.gguf.
3. Broken variants of a 1-layer copy (unsupported tokenizer model / pre-tokenizer, a missing tensor, a wrong shape,
   a head count that does not divide) → fixtures/bad-llama/*.gguf, for the error tests.
4. transformers' outputs from loading fixtures/tiny-llama.gguf (eager attention, fp32) → fixtures/golden/tiny_llama_*,
   and tokenizer-only files for other pre-tokenizers (gpt2, default, llama3, qwen2, gpt-4o, tekken) with
   transformers' ids → fixtures/tokenizers/, fixtures/golden/pre_variants_tokenizer.json.
5. When models/smollm2.gguf (or $SMOLLM2_GGUF) exists: transformers' outputs for 3 short sentences and
   tokenizer ids for English, Korean, emoji, digits, code and whitespace-heavy text → fixtures/golden/smollm2_*.

Run from the repository root with the venv: `HF_HUB_OFFLINE=1 python scripts/golden/make_llama_fixtures.py`.
Tests never run Python; they read what this writes.
"""

import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import numpy as np
import torch
import gguf
from gguf import GGMLQuantizationType as Q
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

SEED = 1234
ROOT = Path(__file__).resolve().parents[2]
FIX = ROOT / "fixtures"
GOLD = FIX / "golden"
BAD = FIX / "bad-llama"
SMOLLM2 = Path(os.environ.get("SMOLLM2_GGUF", "models/smollm2.gguf"))

CORPUS = [
    "The cat sat on the mat. The dog sat on the log. Attention is all you need.",
    "Transformers read a sentence, split it into tokens, and let every token look at the others.",
    "Each head of multi-head attention learns its own pattern: previous token, first token, itself.",
    "The quick brown fox jumps over the lazy dog while the model predicts the next word.",
    "안녕하세요, 만나서 반갑습니다. 오늘 날씨가 정말 좋네요. 트랜스포머는 주의 메커니즘을 사용합니다.",
    "저는 한국어와 영어를 모두 좋아합니다. 고양이가 매트 위에 앉았습니다.",
    "I love pizza 🍕 and coding 💻! Robots 🤖 party 🎉 with hearts ❤️ and stars ⭐.",
    "def softmax(x):\n    e = np.exp(x - x.max())\n    return e / e.sum()\n",
    "for i in range(10):\n    print(i ** 2, end=', ')\n",
    "fn main() { let v: Vec<u32> = (0..10).collect(); println!(\"{:?}\", v); }",
    "Numbers: 0 1 2 3 4 5 6 7 8 9 10 42 100 2024 3.14159 1,000,000",
    "    indented   text\twith\ttabs\n\n\nand blank lines   ",
]
# Control tokens (token type 3) and one user-defined token (type 4), in id order at the start of the vocabulary.
SPECIALS = ["<|endoftext|>", "<|begin_of_text|>", "<|end_of_text|>", "<|im_start|>", "<|im_end|>"]
USER_DEFINED = ["<think>"]
VOCAB_SIZE = 420

# Tiny model: hidden 96 (every quantized row must be a multiple of the 32-element block), 6 query heads of 16 dims
# sharing 2 KV heads.
TINY = dict(hidden=96, intermediate=160, layers=2, heads=6, kv_heads=2, rope_theta=10000.0, eps=1e-5, ctx=256)

TINY_SENTENCES = [
    "The cat sat on the mat.",
    "안녕하세요, 만나서 반갑습니다 🤖🎉",
    "def f(x):\n    return x ** 2  # square",
]
TINY_TOKENIZER_TEXTS = {
    "english": "Attention is all you need, said the quick brown fox.",
    "korean": "트랜스포머는 주의 메커니즘을 사용합니다.",
    "emoji": "Robots 🤖 party 🎉 with hearts ❤️ and flags 🇰🇷!",
    "digits": "1234567 3.14159 2024-11-21 1,000,000",
    "code": "for i in range(10):\n    print(i ** 2, end=', ')",
    "whitespace": "  leading\t\ttabs   and\n\n\n  newlines   ",
    "specials": "<|im_start|>user\nhi<|im_end|><think>ok",
}

SMOLLM2_SENTENCES = [
    "The cat sat on the mat because it was tired.",
    "안녕, 세계!",
    "I love pizza 🍕 and robots 🤖",
]
SMOLLM2_TOKENIZER_TEXTS = {
    "english": "The quick brown fox jumps over the lazy dog. Isn't it?",
    "korean": "안녕하세요, 만나서 반갑습니다. 오늘 날씨가 좋네요.",
    "emoji": "I love 🤖 robots 🎉🎉 and flags 🇰🇷 ❤️ 👨‍👩‍👧",
    "digits": "12345 3.14159 2024-11-21 1,000,000 007",
    "code": "def f(x):\n    return x**2  # square\n\nfn main() { println!(\"{}\", 1 + 2); }",
    "whitespace": "  a   b\t\tc\n\n\n d  \r\n end   ",
    "specials": "<|im_start|>user\nHello!<|im_end|>\n<|im_start|>assistant\n",
    "mixed": "Hello 세계! 🌍 x=42; print('héllo')",
}


def save(name, arr):
    GOLD.mkdir(parents=True, exist_ok=True)
    np.save(GOLD / f"{name}.npy", arr)


# --------------------------------------------------------------------------------------------------- tokenizer


def train_tokenizer():
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        special_tokens=SPECIALS + USER_DEFINED,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(CORPUS * 3, trainer=trainer)
    model = json.loads(tok.to_str())["model"]
    vocab = model["vocab"]
    tokens = [None] * len(vocab)
    for t, i in vocab.items():
        tokens[i] = t
    assert all(t is not None for t in tokens)
    merges = [m if isinstance(m, str) else " ".join(m) for m in model["merges"]]
    types = [3 if t in SPECIALS else 4 if t in USER_DEFINED else 1 for t in tokens]
    return tokens, merges, types


# --------------------------------------------------------------------------------------------------- model


def llama_cpp_permute(w, n_head):
    """llama.cpp's convert_hf_to_gguf permutation of Q/K rows: within each head, rotate-half pairs (i, i + d/2)
    become adjacent rows (2i, 2i+1)."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def tiny_model(vocab_size, layers, tied):
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=TINY["hidden"],
        intermediate_size=TINY["intermediate"],
        num_hidden_layers=layers,
        num_attention_heads=TINY["heads"],
        num_key_value_heads=TINY["kv_heads"],
        max_position_embeddings=TINY["ctx"],
        rms_norm_eps=TINY["eps"],
        rope_theta=TINY["rope_theta"],
        tie_word_embeddings=tied,
        attention_bias=False,
        mlp_bias=False,
    )
    torch.manual_seed(SEED)
    model = LlamaForCausalLM(cfg).eval()
    g = torch.Generator().manual_seed(SEED)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=g))
            elif "q_proj" in name or "k_proj" in name:
                # Large enough that the attention is far from uniform (a real test of the scores).
                p.copy_(0.35 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(0.12 * torch.randn(p.shape, generator=g))
    return model


# Which GGML type each tensor gets in the tiny file: a mix of Q8_0, Q4_1, F16 and F32 (norms stay F32).
def tiny_qtype(gguf_name, layer):
    if gguf_name.endswith("norm.weight"):
        return Q.F32
    if gguf_name == "token_embd.weight":
        return Q.Q8_0
    if gguf_name == "output.weight":
        return Q.Q4_1
    kind = gguf_name.split(".")[2]
    table = {
        0: {"attn_q": Q.Q4_1, "attn_k": Q.Q8_0, "attn_v": Q.Q4_1, "attn_output": Q.Q8_0,
            "ffn_gate": Q.Q4_1, "ffn_up": Q.Q8_0, "ffn_down": Q.Q4_1},
        1: {"attn_q": Q.Q8_0, "attn_k": Q.Q4_1, "attn_v": Q.F16, "attn_output": Q.Q4_1,
            "ffn_gate": Q.Q8_0, "ffn_up": Q.Q4_1, "ffn_down": Q.F32},
    }
    return table[layer % 2][kind]


HF_TO_GGUF = {
    "self_attn.q_proj": "attn_q",
    "self_attn.k_proj": "attn_k",
    "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output",
    "mlp.gate_proj": "ffn_gate",
    "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down",
    "input_layernorm": "attn_norm",
    "post_attention_layernorm": "ffn_norm",
}


def gguf_tensors(model):
    """(gguf name, f32 numpy array [out, in], layer) in llama.cpp's naming and Q/K layout."""
    cfg = model.config
    out = []
    for name, p in model.state_dict().items():
        w = p.detach().float().numpy().copy()
        if name == "model.embed_tokens.weight":
            out.append(("token_embd.weight", w, -1))
        elif name == "model.norm.weight":
            out.append(("output_norm.weight", w, -1))
        elif name == "lm_head.weight":
            if not cfg.tie_word_embeddings:
                out.append(("output.weight", w, -1))
        else:
            parts = name.split(".")  # model.layers.{i}.{module...}.weight
            layer = int(parts[2])
            module = ".".join(parts[3:-1])
            g = HF_TO_GGUF[module]
            if g == "attn_q":
                w = llama_cpp_permute(w, cfg.num_attention_heads)
            elif g == "attn_k":
                w = llama_cpp_permute(w, cfg.num_key_value_heads)
            out.append((f"blk.{layer}.{g}.weight", w, layer))
    return out


def write_gguf(path, model, tokens, merges, types, *, tok_model="gpt2", pre="llama-bpe", add_bos=True,
               head_count=None, head_count_kv=None, drop=(), reshape=None):
    cfg = model.config
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_name("tiny-llama (random weights, attn test fixture)")
    w.add_context_length(cfg.max_position_embeddings)
    w.add_embedding_length(cfg.hidden_size)
    w.add_block_count(cfg.num_hidden_layers)
    w.add_feed_forward_length(cfg.intermediate_size)
    w.add_head_count(head_count or cfg.num_attention_heads)
    w.add_head_count_kv(head_count_kv or cfg.num_key_value_heads)
    w.add_rope_freq_base(cfg.rope_theta if hasattr(cfg, "rope_theta") else TINY["rope_theta"])
    w.add_layer_norm_rms_eps(cfg.rms_norm_eps)
    w.add_rope_dimension_count(cfg.hidden_size // cfg.num_attention_heads)
    w.add_vocab_size(cfg.vocab_size)
    w.add_file_type(gguf.LlamaFileType.MOSTLY_Q8_0)
    w.add_tokenizer_model(tok_model)
    w.add_tokenizer_pre(pre)
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(merges)
    w.add_bos_token_id(tokens.index("<|begin_of_text|>"))
    w.add_eos_token_id(tokens.index("<|end_of_text|>"))
    w.add_pad_token_id(tokens.index("<|endoftext|>"))
    w.add_add_bos_token(add_bos)
    w.add_quantization_version(gguf.GGML_QUANT_VERSION)
    for name, arr, layer in gguf_tensors(model):
        if name in drop:
            continue
        if reshape and name in reshape:
            arr = arr[: reshape[name]]
        qt = tiny_qtype(name, layer)
        if qt == Q.F32:
            w.add_tensor(name, arr.astype(np.float32))
        elif qt == Q.F16:
            w.add_tensor(name, arr.astype(np.float16))
        else:
            w.add_tensor(name, gguf.quants.quantize(arr.astype(np.float32), qt), raw_dtype=qt)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


# --------------------------------------------------------------------------------------------------- goldens


def load_hf(path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    d, f = str(path.parent), path.name
    tok = AutoTokenizer.from_pretrained(d, gguf_file=f)
    model = AutoModelForCausalLM.from_pretrained(
        d, gguf_file=f, attn_implementation="eager", torch_dtype=torch.float32
    ).eval()
    return tok, model


@torch.no_grad()
def run_hf(model, ids):
    """Attentions [L, H, n, n], hidden [L+1, n, d] (the last one BEFORE the final norm, as attn records it),
    logits [n, V]."""
    captured = {}
    hook = model.model.norm.register_forward_hook(lambda m, inp, out: captured.__setitem__("pre_norm", inp[0]))
    out = model(torch.tensor([ids]), output_attentions=True, output_hidden_states=True)
    hook.remove()
    att = torch.stack([a[0] for a in out.attentions]).float().numpy()
    hs = [h[0] for h in out.hidden_states[:-1]] + [captured["pre_norm"][0]]
    hidden = torch.stack(hs).float().numpy()
    logits = out.logits[0].float().numpy()
    return att, hidden, logits


@torch.no_grad()
def logit_lens_top(model, hidden, k):
    """Top-k ids of final norm + LM head applied to every layer's stream: [L+1, n, k]."""
    h = torch.from_numpy(hidden)
    logits = model.lm_head(model.model.norm(h))
    return torch.topk(logits, k, dim=-1).indices.numpy().astype(np.int64)


def top_k_ids(logits, k):
    return torch.topk(torch.from_numpy(logits), k, dim=-1).indices.numpy().astype(np.int64)


def tokenizer_goldens(tok, texts, name):
    rows = [{"name": k, "text": t, "ids": tok(t)["input_ids"]} for k, t in texts.items()]
    (GOLD / f"{name}_tokenizer.json").write_text(json.dumps(rows, ensure_ascii=False, indent=1) + "\n")
    return rows


def tiny_goldens(path):
    tok, model = load_hf(path)
    meta = {"sentences": []}
    for i, s in enumerate(TINY_SENTENCES):
        ids = tok(s)["input_ids"]
        att, hidden, logits = run_hf(model, ids)
        save(f"tiny_llama_s{i}_ids", np.array(ids, dtype=np.int64))
        save(f"tiny_llama_s{i}_attn", att.astype(np.float32))
        save(f"tiny_llama_s{i}_hidden", hidden.astype(np.float32))
        save(f"tiny_llama_s{i}_logits", logits.astype(np.float32))
        save(f"tiny_llama_s{i}_lens_top5", logit_lens_top(model, hidden, 5))
        meta["sentences"].append({"text": s, "n": len(ids)})
        print(f"tiny s{i}: {len(ids)} tokens {ids}")
    (GOLD / "tiny_llama_sentences.json").write_text(json.dumps(meta, ensure_ascii=False, indent=1) + "\n")
    tokenizer_goldens(tok, TINY_TOKENIZER_TEXTS, "tiny_llama")


def smollm2_goldens():
    if not SMOLLM2.exists():
        print(f"note: {SMOLLM2} is missing; SmolLM2 goldens not regenerated", file=sys.stderr)
        return
    tok, model = load_hf(SMOLLM2)
    meta = {"sentences": []}
    for i, s in enumerate(SMOLLM2_SENTENCES):
        ids = tok(s)["input_ids"]
        att, _, logits = run_hf(model, ids)
        save(f"smollm2_s{i}_ids", np.array(ids, dtype=np.int64))
        save(f"smollm2_s{i}_attn", att.astype(np.float32))
        top = top_k_ids(logits[-1:], 10)[0]
        save(f"smollm2_s{i}_top5", top[:5])
        probs = torch.softmax(torch.from_numpy(logits[-1]), -1)
        meta["sentences"].append({
            "text": s, "n": len(ids),
            # Ten, so the margin between the 5th and the 6th is on record.
            "top10": [{"id": int(t), "token": tok.convert_ids_to_tokens(int(t)), "prob": float(probs[t])} for t in top],
        })
        print(f"smollm2 s{i}: {len(ids)} tokens; next {[tok.decode([int(t)]) for t in top[:5]]}")
    (GOLD / "smollm2_sentences.json").write_text(json.dumps(meta, ensure_ascii=False, indent=1) + "\n")
    tokenizer_goldens(tok, SMOLLM2_TOKENIZER_TEXTS, "smollm2")


# Tokenizer-only files (no tensors) for the other pre-tokenizers attn supports; transformers' ids are the goldens.
PRE_VARIANTS = ["gpt2", "default", "llama3", "qwen2", "gpt-4o", "tekken"]


def tokenizer_variants(tokens, merges, types):
    from transformers import AutoTokenizer

    out = FIX / "tokenizers"
    if out.exists():
        shutil.rmtree(out)
    out.mkdir()
    rows = []
    for pre in PRE_VARIANTS:
        path = out / f"pre-{pre}.gguf"
        w = gguf.GGUFWriter(str(path), "llama")
        w.add_name(f"tokenizer only, pre {pre}")
        w.add_block_count(1)
        w.add_embedding_length(32)
        w.add_head_count(1)
        w.add_tokenizer_model("gpt2")
        w.add_tokenizer_pre(pre)
        w.add_token_list(tokens)
        w.add_token_types(types)
        w.add_token_merges(merges)
        w.add_bos_token_id(tokens.index("<|begin_of_text|>"))
        w.add_eos_token_id(tokens.index("<|end_of_text|>"))
        w.add_add_bos_token(pre == "llama3")
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()
        tok = AutoTokenizer.from_pretrained(str(out), gguf_file=path.name)
        for name, text in TINY_TOKENIZER_TEXTS.items():
            rows.append({"file": path.name, "name": name, "text": text, "ids": tok(text)["input_ids"]})
    (GOLD / "pre_variants_tokenizer.json").write_text(json.dumps(rows, ensure_ascii=False, indent=1) + "\n")
    print(f"wrote {len(PRE_VARIANTS)} tokenizer-only files in {out}")


def main():
    np.random.seed(SEED)
    torch.manual_seed(SEED)
    FIX.mkdir(exist_ok=True)
    tokens, merges, types = train_tokenizer()
    print(f"vocabulary: {len(tokens)} tokens, {len(merges)} merges")

    model = tiny_model(len(tokens), TINY["layers"], tied=False)
    tiny = FIX / "tiny-llama.gguf"
    write_gguf(tiny, model, tokens, merges, types)
    print(f"wrote {tiny} ({tiny.stat().st_size} bytes)")

    # Broken 1-layer copies (tied LM head) for the error tests.
    if BAD.exists():
        shutil.rmtree(BAD)
    BAD.mkdir()
    small = tiny_model(len(tokens), 1, tied=True)
    write_gguf(BAD / "ok-1layer.gguf", small, tokens, merges, types, pre="smollm", add_bos=False)
    write_gguf(BAD / "tokenizer-model-rwkv.gguf", small, tokens, merges, types, tok_model="rwkv")
    write_gguf(BAD / "pre-chatglm-bpe.gguf", small, tokens, merges, types, pre="chatglm-bpe")
    write_gguf(BAD / "missing-ffn-up.gguf", small, tokens, merges, types, drop={"blk.0.ffn_up.weight"})
    # attn_k with 16 output rows where 2 KV heads × 16 = 32 are expected (quantized blocks stay whole: the row
    # length is unchanged).
    write_gguf(BAD / "wrong-shape-attn-k.gguf", small, tokens, merges, types,
               reshape={"blk.0.attn_k.weight": 16})
    write_gguf(BAD / "heads-kv-4-of-6.gguf", small, tokens, merges, types, head_count_kv=4)
    write_gguf(BAD / "heads-7.gguf", small, tokens, merges, types, head_count=7, head_count_kv=7)
    print(f"wrote {len(list(BAD.iterdir()))} files in {BAD}")

    tiny_goldens(tiny)
    tokenizer_variants(tokens, merges, types)
    smollm2_goldens()


if __name__ == "__main__":
    main()
