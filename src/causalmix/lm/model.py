"""A character-level GPT in one page (after nanoGPT): small enough to train hundreds of proxies on a CPU."""
from __future__ import annotations

import math
import string
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

# A fixed vocabulary shared by every model, so any base can score any text: pad, newline, printable ASCII.
PAD = 0
CHARS = "\n" + "".join(c for c in string.printable if c.isprintable())
STOI = {c: i + 1 for i, c in enumerate(CHARS)}
VOCAB = len(CHARS) + 1
UNK = STOI["?"]


def encode(text: str) -> list[int]:
    return [STOI.get(c, UNK) for c in text]


@dataclass
class GPTConfig:
    n_layer: int = 2
    n_head: int = 4
    n_embd: int = 64
    context: int = 128
    dropout: float = 0.0


class Block(nn.Module):
    def __init__(self, c: GPTConfig):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(c.n_embd), nn.LayerNorm(c.n_embd)
        self.qkv = nn.Linear(c.n_embd, 3 * c.n_embd)
        self.proj = nn.Linear(c.n_embd, c.n_embd)
        self.mlp = nn.Sequential(nn.Linear(c.n_embd, 4 * c.n_embd), nn.GELU(), nn.Linear(4 * c.n_embd, c.n_embd))
        self.n_head, self.dropout = c.n_head, c.dropout

    def forward(self, x, mask=None, past=None):
        """x (B, T, C) -> (x, this pass's keys and values). `past`: keys and values of an earlier pass that
        come first (a shared prompt); `mask` (B, 1, T, T'): which keys each query sees (default causal)."""
        B, T, C = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(C, dim=2)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))
        kv = (k, v)
        if past is not None:
            k, v = torch.cat([past[0], k], dim=2), torch.cat([past[1], v], dim=2)
        y = attend(q, k, v, mask, self.dropout if self.training else 0.0)
        x = x + self.proj(y.transpose(1, 2).reshape(B, T, C))
        return x + self.mlp(self.ln2(x)), kv


def attend(q, k, v, mask=None, dropout=0.0):
    """Causal (or masked) attention. Under CPU bf16 autocast it runs in fp32: at head size 16 the CPU's
    bf16 attention kernels are slower than fp32 (its backward about 5x); the matmuls around it stay bf16."""
    if q.device.type == "cpu" and torch.is_autocast_enabled("cpu"):
        with torch.autocast("cpu", enabled=False):
            return attend(q.float(), k.float(), v.float(), mask, dropout)
    if mask is not None and mask.is_floating_point():   # additive (0 / -inf): faster on CPU than a bool mask
        mask = mask.to(q.dtype)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=mask is None, dropout_p=dropout)


class GPT(nn.Module):
    def __init__(self, c: GPTConfig):
        super().__init__()
        self.config = c
        self.tok = nn.Embedding(VOCAB, c.n_embd)
        self.pos = nn.Embedding(c.context, c.n_embd)
        self.blocks = nn.ModuleList(Block(c) for _ in range(c.n_layer))
        self.ln_f = nn.LayerNorm(c.n_embd)
        self.head = nn.Linear(c.n_embd, VOCAB, bias=False)
        self.head.weight = self.tok.weight  # weight tying, as in GPT-2
        self.apply(self._init)
        for n, p in self.named_parameters():
            if n.endswith("proj.weight") or n.endswith("mlp.2.weight"):
                nn.init.normal_(p, std=0.02 / math.sqrt(2 * c.n_layer))

    @staticmethod
    def _init(m):
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, std=0.02)
        if isinstance(m, nn.Linear) and m.bias is not None:
            nn.init.zeros_(m.bias)

    def n_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def forward(self, idx):
        """Logits for the next character at every position of idx (B, T)."""
        return self.head(self.hidden(idx)[0])

    def hidden(self, idx, pos=None, mask=None, past=None):
        """Final hidden states (B, T, C) and each block's keys and values. Scoring passes each character's
        position `pos` (B, T), the `mask` of keys each query sees, and `past`: per block, the keys and values
        of an earlier pass (a prompt that several continuations share) that come before this pass's own."""
        x = self.tok(idx) + self.pos(torch.arange(idx.shape[1], device=idx.device) if pos is None else pos)
        kvs = []
        for i, b in enumerate(self.blocks):
            x, kv = b(x, mask, None if past is None else past[i])
            kvs.append(kv)
        return self.ln_f(x), kvs


class Stack(nn.Module):
    """M GPTs of one config as one model: each weight stacked on a leading model dim, each matmul batched.

    Trains many proxies at once (train.fit_many): per model it computes exactly what GPT.forward does, so
    the models stay independent; only the arithmetic is shared."""

    def __init__(self, models: list[GPT]):
        super().__init__()
        self.config = c = models[0].config
        self.names = [n for n, _ in models[0].named_parameters()]     # the tied head is tok.weight
        self.w = nn.ParameterList(torch.stack([dict(m.named_parameters())[n].detach() for m in models])
                                  for n in self.names)
        self.n_head, self.dropout = c.n_head, c.dropout

    def unstack(self, models: list[GPT]) -> None:
        """Copy each model's trained weights back into `models`."""
        with torch.no_grad():
            for i, m in enumerate(models):
                own = dict(m.named_parameters())
                for n, w in zip(self.names, self.w):
                    own[n].copy_(w[i])

    def forward(self, idx):
        """Logits (M, B, T, V) for idx (M, B, T): model m reads idx[m]."""
        p = dict(zip(self.names, self.w))
        M, B, T = idx.shape
        C, H = self.config.n_embd, self.n_head

        def linear(x, name):
            return torch.baddbmm(p[f"{name}.bias"].unsqueeze(1), x, p[f"{name}.weight"].transpose(1, 2))

        def norm(x, name):
            return torch.addcmul(p[f"{name}.bias"].unsqueeze(1), F.layer_norm(x, (C,)), p[f"{name}.weight"].unsqueeze(1))

        x = p["tok.weight"][torch.arange(M, device=idx.device)[:, None, None], idx] + p["pos.weight"][:, None, :T]
        x = x.view(M, B * T, C)
        for i in range(self.config.n_layer):
            q, k, v = linear(norm(x, f"blocks.{i}.ln1"), f"blocks.{i}.qkv").view(M * B, T, 3, H, C // H).permute(2, 0, 3, 1, 4)
            y = attend(q, k, v, dropout=self.dropout if self.training else 0.0)
            x = x + linear(y.transpose(1, 2).reshape(M, B * T, C), f"blocks.{i}.proj")
            x = x + linear(F.gelu(linear(norm(x, f"blocks.{i}.ln2"), f"blocks.{i}.mlp.0")), f"blocks.{i}.mlp.2")
        return torch.bmm(norm(x, "ln_f"), p["tok.weight"].transpose(1, 2)).view(M, B, T, -1)
