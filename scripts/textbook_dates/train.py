#!/usr/bin/env python3
"""Train `textbook-dates`: the encoder–decoder of "Attention Is All You Need", small, on English dates → Korean dates.

    November 22, 2026   ─┐
    22 November 2026    ─┴─►  2026년 11월 22일

The model is written out plainly below (no nn.Transformer) so that attn's Rust engine can reproduce it exactly:

  * source and target token embeddings (separate tables) × √d_model + sinusoidal positions, computed exactly as
    attn's `numeric::ops::sinusoidal_positions`: angle = pos / 10000^(i/d) for even i (in f64), pe[pos, i] = sin,
    pe[pos, i+1] = cos (interleaved), cast to f32;
  * post-LN blocks (LayerNorm eps 1e-5), nn.Linear with bias for Q, K, V, O and both FFN matrices, ReLU FFN,
    attention scale 1/√d_head;
  * encoder block = self-attention → add & norm → FFN → add & norm;
  * decoder block = masked self-attention → add & norm → cross-attention (queries from the decoder, keys and values
    from the encoder output) → add & norm → FFN → add & norm;
  * a final nn.Linear (with bias) from d_model to the target vocabulary; no final LayerNorm (post-LN blocks end in one).

Tokenizers (built here with the `tokenizers` library, saved as tokenizer.json):
  * source: word level, lowercased, digits split one by one (so a year is 4 tokens), `,` its own token, `</s>`
    appended by the post-processor;
  * target: character level (digits, 년, 월, 일 and the space), `</s>` appended by the post-processor.
  Both share the special ids <pad> 0, <s> 1 (decoder start), </s> 2 (EOS), <unk> 3.
  The decoder input is `shift_tokens_right(target ids)`: <s> in front, the last id (the EOS) dropped.

Outputs (relative to the repository root):
  fixtures/textbook-dates/{model.safetensors, config.json, source_tokenizer.json, target_tokenizer.json}
  fixtures/golden/textbook-dates/<case>_*.npy + cases.json   (eager fp32 outputs for the parity test)
  docs/textbook-dates.train.txt                               (the loss/accuracy table the docs quote)

Run from the repository root (CPU, 2 threads, a few minutes; same seed → same weights on the same machine/torch):
    python3 scripts/textbook_dates/train.py
"""
import calendar
import json
import math
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import save_file
from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "fixtures" / "textbook-dates"
GOLD = ROOT / "fixtures" / "golden" / "textbook-dates"
SEED = 20261122
# One thread: on a busy 2-core machine two OpenMP threads spin-wait and a step took 30× longer (measured); a fixed
# thread count also keeps the float reduction order, hence the weights, reproducible.
THREADS = 1

D_MODEL, HEADS, ENC_LAYERS, DEC_LAYERS, D_FF = 64, 4, 2, 2, 256
MAX_LEN = 32
LN_EPS = 1e-5

EPOCHS = 10
STEPS_PER_EPOCH = 200
BATCH = 64
LR = 2e-3
WARMUP = 200
HELD_OUT = 1000

MONTHS = [calendar.month_name[m] for m in range(1, 13)]
SPECIALS = ["<pad>", "<s>", "</s>", "<unk>"]
PAD, BOS, EOS, UNK = 0, 1, 2, 3

# ---------------------------------------------------------------------------------------------------------- data


def random_date(rng: random.Random):
    """A uniformly random valid date in 1900–2099 (leap years included)."""
    year = rng.randint(1900, 2099)
    month = rng.randint(1, 12)
    day = rng.randint(1, calendar.monthrange(year, month)[1])
    return year, month, day


def source_text(year, month, day, form):
    name = MONTHS[month - 1]
    return f"{name} {day}, {year}" if form == 0 else f"{day} {name} {year}"


def target_text(year, month, day):
    return f"{year}년 {month}월 {day}일"


# ---------------------------------------------------------------------------------------------------- tokenizers


def build_source_tokenizer() -> Tokenizer:
    vocab = SPECIALS + [str(d) for d in range(10)] + [","] + [m.lower() for m in MONTHS]
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(vocab)}, unk_token="<unk>"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Whitespace(), pre_tokenizers.Digits(individual_digits=True)]
    )
    tok.post_processor = processors.TemplateProcessing(
        single="$A </s>", pair="$A </s> $B </s>", special_tokens=[("</s>", EOS)]
    )
    tok.decoder = decoders.WordPiece(prefix="##", cleanup=False)  # joins words with spaces
    tok.add_special_tokens(SPECIALS)
    return tok


def build_target_tokenizer() -> Tokenizer:
    vocab = SPECIALS + [str(d) for d in range(10)] + ["년", "월", "일", " "]
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(vocab)}, unk_token="<unk>"))
    # One token per character, the space included.
    tok.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    tok.post_processor = processors.TemplateProcessing(
        single="$A </s>", pair="$A </s> $B </s>", special_tokens=[("</s>", EOS)]
    )
    tok.decoder = decoders.Fuse()
    tok.add_special_tokens(SPECIALS)
    return tok


# --------------------------------------------------------------------------------------------------------- model


def sinusoidal_positions(n, d):
    """attn's numeric::ops::sinusoidal_positions: interleaved sin/cos, angles in f64, stored as f32."""
    pe = np.zeros((n, d), dtype=np.float64)
    for pos in range(n):
        for i in range(0, d, 2):
            angle = pos / 10000.0 ** (i / d)
            pe[pos, i] = math.sin(angle)
            if i + 1 < d:
                pe[pos, i + 1] = math.cos(angle)
    return torch.from_numpy(pe.astype(np.float32))


class MultiHeadAttention(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.h, self.dh = heads, d // heads
        self.q_proj, self.k_proj, self.v_proj, self.o_proj = (nn.Linear(d, d) for _ in range(4))

    def forward(self, x, mem, mask):
        """x [B, n, d] queries, mem [B, m, d] keys/values, mask [B or 1, 1 or n, m] bool (True = may attend).
        Returns (output [B, n, d], pattern [B, H, n, m])."""
        b, n, _ = x.shape
        m = mem.shape[1]
        q = self.q_proj(x).view(b, n, self.h, self.dh).transpose(1, 2)
        k = self.k_proj(mem).view(b, m, self.h, self.dh).transpose(1, 2)
        v = self.v_proj(mem).view(b, m, self.h, self.dh).transpose(1, 2)
        scores = (q @ k.transpose(-1, -2)) * (1.0 / math.sqrt(self.dh))
        scores = scores.masked_fill(~mask.unsqueeze(1), float("-inf"))
        pattern = scores.softmax(-1)
        z = (pattern @ v).transpose(1, 2).reshape(b, n, self.h * self.dh)
        return self.o_proj(z), pattern


class FeedForward(nn.Module):
    def __init__(self, d, d_ff):
        super().__init__()
        self.up, self.down = nn.Linear(d, d_ff), nn.Linear(d_ff, d)

    def forward(self, x):
        return self.down(F.relu(self.up(x)))


class EncoderBlock(nn.Module):
    def __init__(self, d, heads, d_ff):
        super().__init__()
        self.self_attn, self.ln1 = MultiHeadAttention(d, heads), nn.LayerNorm(d, eps=LN_EPS)
        self.ffn, self.ln2 = FeedForward(d, d_ff), nn.LayerNorm(d, eps=LN_EPS)

    def forward(self, x, src_mask):
        a, pat = self.self_attn(x, x, src_mask)
        x = self.ln1(x + a)
        x = self.ln2(x + self.ffn(x))
        return x, pat


class DecoderBlock(nn.Module):
    def __init__(self, d, heads, d_ff):
        super().__init__()
        self.self_attn, self.ln1 = MultiHeadAttention(d, heads), nn.LayerNorm(d, eps=LN_EPS)
        self.cross_attn, self.ln2 = MultiHeadAttention(d, heads), nn.LayerNorm(d, eps=LN_EPS)
        self.ffn, self.ln3 = FeedForward(d, d_ff), nn.LayerNorm(d, eps=LN_EPS)

    def forward(self, y, mem, tgt_mask, src_mask):
        a, self_pat = self.self_attn(y, y, tgt_mask)
        y = self.ln1(y + a)
        c, cross_pat = self.cross_attn(y, mem, src_mask)
        y = self.ln2(y + c)
        y = self.ln3(y + self.ffn(y))
        return y, self_pat, cross_pat


class TextbookEncoderDecoder(nn.Module):
    def __init__(self, src_vocab, tgt_vocab):
        super().__init__()
        self.src_embed = nn.Embedding(src_vocab, D_MODEL)
        self.tgt_embed = nn.Embedding(tgt_vocab, D_MODEL)
        nn.init.normal_(self.src_embed.weight, std=D_MODEL**-0.5)
        nn.init.normal_(self.tgt_embed.weight, std=D_MODEL**-0.5)
        self.register_buffer("pe", sinusoidal_positions(MAX_LEN, D_MODEL), persistent=False)
        self.encoder = nn.ModuleList(EncoderBlock(D_MODEL, HEADS, D_FF) for _ in range(ENC_LAYERS))
        self.decoder = nn.ModuleList(DecoderBlock(D_MODEL, HEADS, D_FF) for _ in range(DEC_LAYERS))
        self.lm_head = nn.Linear(D_MODEL, tgt_vocab)
        self.scale = math.sqrt(D_MODEL)

    def embed(self, table, ids):
        return table(ids) * self.scale + self.pe[: ids.shape[1]]

    def encode(self, src, trace=None):
        src_mask = (src != PAD).unsqueeze(1)  # [B, 1, m]
        x = self.embed(self.src_embed, src)
        if trace is not None:
            trace["enc_hidden"].append(x)
        for blk in self.encoder:
            x, pat = blk(x, src_mask)
            if trace is not None:
                trace["enc_attn"].append(pat)
                trace["enc_hidden"].append(x)
        return x, src_mask

    def decode(self, tgt_in, mem, src_mask, trace=None):
        n = tgt_in.shape[1]
        causal = torch.ones(n, n, dtype=torch.bool).tril()
        tgt_mask = causal.unsqueeze(0) & (tgt_in != PAD).unsqueeze(1) | torch.eye(n, dtype=torch.bool)
        y = self.embed(self.tgt_embed, tgt_in)
        if trace is not None:
            trace["dec_hidden"].append(y)
        for blk in self.decoder:
            y, sp, cp = blk(y, mem, tgt_mask, src_mask)
            if trace is not None:
                trace["dec_attn"].append(sp)
                trace["cross_attn"].append(cp)
                trace["dec_hidden"].append(y)
        return self.lm_head(y)

    def forward(self, src, tgt_in, trace=None):
        mem, src_mask = self.encode(src, trace)
        return self.decode(tgt_in, mem, src_mask, trace)

    @torch.no_grad()
    def greedy(self, src, max_new=20):
        """Greedy decoding of a batch (recomputes the decoder each step: plain and exact)."""
        mem, src_mask = self.encode(src)
        out = torch.full((src.shape[0], 1), BOS, dtype=torch.long)
        done = torch.zeros(src.shape[0], dtype=torch.bool)
        for _ in range(max_new):
            nxt = self.decode(out, mem, src_mask)[:, -1].argmax(-1)
            nxt = torch.where(done, torch.full_like(nxt, PAD), nxt)
            out = torch.cat([out, nxt[:, None]], 1)
            done |= nxt == EOS
            if done.all():
                break
        return out[:, 1:]


# ------------------------------------------------------------------------------------------------------ training


def batch_tensors(pairs, src_tok, tgt_tok):
    src = [src_tok.encode(s).ids for s, _ in pairs]
    tgt = [tgt_tok.encode(t).ids for _, t in pairs]
    ms, mt = max(map(len, src)), max(map(len, tgt))
    src_t = torch.tensor([s + [PAD] * (ms - len(s)) for s in src])
    labels = torch.tensor([t + [PAD] * (mt - len(t)) for t in tgt])
    tgt_in = torch.cat([torch.full((len(pairs), 1), BOS), labels[:, :-1]], 1)  # shift_tokens_right
    tgt_in = tgt_in.masked_fill(tgt_in == EOS, PAD)
    return src_t, tgt_in, labels


def decode_ids(tok, ids):
    ids = list(ids)
    if EOS in ids:
        ids = ids[: ids.index(EOS)]
    return tok.decode([i for i in ids if i != PAD], skip_special_tokens=True)


def accuracy(model, pairs, src_tok, tgt_tok):
    model.eval()
    ok = 0
    for i in range(0, len(pairs), 500):
        chunk = pairs[i : i + 500]
        src, _, _ = batch_tensors(chunk, src_tok, tgt_tok)
        out = model.greedy(src)
        ok += sum(decode_ids(tgt_tok, o.tolist()) == t for o, (_, t) in zip(out, chunk))
    model.train()
    return ok / len(pairs)


def main():
    torch.manual_seed(SEED)
    torch.set_num_threads(THREADS)
    torch.use_deterministic_algorithms(True)
    rng = random.Random(SEED)

    src_tok, tgt_tok = build_source_tokenizer(), build_target_tokenizer()
    OUT.mkdir(parents=True, exist_ok=True)
    src_tok.save(str(OUT / "source_tokenizer.json"))
    tgt_tok.save(str(OUT / "target_tokenizer.json"))

    held = set()
    held_pairs = []
    while len(held_pairs) < HELD_OUT:
        y, m, d = random_date(rng)
        form = rng.randint(0, 1)
        if (y, m, d, form) in held:
            continue
        held.add((y, m, d, form))
        held_pairs.append((source_text(y, m, d, form), target_text(y, m, d)))

    def train_pair():
        while True:
            y, m, d = random_date(rng)
            form = rng.randint(0, 1)
            if (y, m, d, form) not in held:
                return source_text(y, m, d, form), target_text(y, m, d)

    model = TextbookEncoderDecoder(src_tok.get_vocab_size(), tgt_tok.get_vocab_size())
    opt = torch.optim.Adam(model.parameters(), lr=LR, betas=(0.9, 0.98), eps=1e-9)
    total = EPOCHS * STEPS_PER_EPOCH
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / WARMUP, 0.5 * (1 + math.cos(math.pi * min(s, total) / total)))
    )
    rows = []
    t0 = time.time()
    step = 0
    for epoch in range(1, EPOCHS + 1):
        losses = []
        for _ in range(STEPS_PER_EPOCH):
            src, tgt_in, labels = batch_tensors([train_pair() for _ in range(BATCH)], src_tok, tgt_tok)
            logits = model(src, tgt_in)
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=PAD)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            step += 1
            losses.append(loss.item())
        acc = accuracy(model, held_pairs, src_tok, tgt_tok)
        row = (epoch, step, float(np.mean(losses)), losses[-1], acc, time.time() - t0)
        rows.append(row)
        print("epoch %2d  step %5d  mean loss %.5f  last loss %.5f  held-out exact match %.4f  %.0f s" % row,
              flush=True)
    final_acc = rows[-1][4]
    if final_acc < 0.99:
        sys.exit(f"held-out exact match {final_acc:.4f} < 0.99: not writing the model")

    model.eval()
    save_model(model, src_tok, tgt_tok)
    write_table(rows)
    write_golden(model, src_tok, tgt_tok)


def save_model(model, src_tok, tgt_tok):
    tensors = {}
    for name, p in model.state_dict().items():
        tensors[name] = p.detach().contiguous().clone()
    save_file(tensors, str(OUT / "model.safetensors"), metadata={"format": "pt"})
    config = {
        "model_type": "textbook-encoder-decoder",
        "d_model": D_MODEL,
        "heads": HEADS,
        "encoder_layers": ENC_LAYERS,
        "decoder_layers": DEC_LAYERS,
        "d_ff": D_FF,
        "max_len": MAX_LEN,
        "layer_norm_eps": LN_EPS,
        "activation": "relu",
        "positions": "sinusoidal (interleaved sin/cos, attn numeric::ops::sinusoidal_positions)",
        "embedding_scale": "sqrt(d_model)",
        "lm_head_bias": True,
        "src_vocab_size": src_tok.get_vocab_size(),
        "tgt_vocab_size": tgt_tok.get_vocab_size(),
        "pad_token_id": PAD,
        "decoder_start_token_id": BOS,
        "eos_token_id": EOS,
        "unk_token_id": UNK,
        "seed": SEED,
    }
    (OUT / "config.json").write_text(json.dumps(config, indent=2) + "\n")


def write_table(rows):
    lines = ["| epoch | steps | mean loss | last batch loss | held-out exact match | seconds |",
             "|---:|---:|---:|---:|---:|---:|"]
    for e, s, ml, ll, acc, sec in rows:
        lines.append(f"| {e} | {s} | {ml:.5f} | {ll:.5f} | {acc * 100:.2f} % | {sec:.0f} |")
    (ROOT / "docs" / "textbook-dates.train.txt").write_text("\n".join(lines) + "\n")


GOLDEN_CASES = [
    {"name": "nov22", "source": "22 November 2026", "target": "2026년 11월 22일"},
    {"name": "feb29", "source": "February 29, 2000", "target": "2000년 2월 29일"},
    {"name": "may1", "source": "May 1, 1999", "target": "1999년 5월 1일"},
]


@torch.no_grad()
def write_golden(model, src_tok, tgt_tok):
    GOLD.mkdir(parents=True, exist_ok=True)
    for case in GOLDEN_CASES:
        src = torch.tensor([src_tok.encode(case["source"]).ids])
        labels = torch.tensor([tgt_tok.encode(case["target"]).ids])
        tgt_in = torch.cat([torch.tensor([[BOS]]), labels[:, :-1]], 1)
        trace = {"enc_hidden": [], "enc_attn": [], "dec_hidden": [], "dec_attn": [], "cross_attn": []}
        logits = model(src, tgt_in, trace)
        greedy = model.greedy(src)[0].tolist()
        if EOS in greedy:
            greedy = greedy[: greedy.index(EOS) + 1]
        arrays = {
            "src_ids": src[0].numpy().astype(np.int64),
            "tgt_in_ids": tgt_in[0].numpy().astype(np.int64),
            "encoder_attention": torch.cat(trace["enc_attn"]).numpy(),  # [L, H, n_src, n_src]
            "decoder_attention": torch.cat(trace["dec_attn"]).numpy(),  # [L, H, n_tgt, n_tgt]
            "cross_attention": torch.cat(trace["cross_attn"]).numpy(),  # [L, H, n_tgt, n_src]
            "encoder_hidden": torch.cat(trace["enc_hidden"]).numpy(),  # [L+1, n_src, d]
            "decoder_hidden": torch.cat(trace["dec_hidden"]).numpy(),  # [L+1, n_tgt, d]
            "logits": logits[0].numpy(),  # [n_tgt, vocab]
            "greedy_ids": np.array(greedy, dtype=np.int64),  # generated ids, no start token, EOS included
        }
        for k, v in arrays.items():
            np.save(GOLD / f"{case['name']}_{k}.npy", v.astype(np.float32) if v.dtype == np.float32 else v)
        case["greedy_text"] = decode_ids(tgt_tok, greedy)
        print(case["name"], case["source"], "→", case["greedy_text"])
    (GOLD / "cases.json").write_text(json.dumps(GOLDEN_CASES, ensure_ascii=False, indent=2) + "\n")


if __name__ == "__main__":
    main()
