"""Greedy decoding with a key/value cache: what a benchmark that checks a final answer needs."""
from __future__ import annotations

import torch

from causalmix.lm.model import CHARS, PAD, encode
from causalmix.lm.train import autocast


def decode(ids) -> str:
    return "".join(CHARS[i - 1] for i in ids if i != PAD)


@torch.no_grad()
def greedy(model, prompts: list[str], max_new: int, stop: str = ".", device: str = "cpu",
           precision: str = "fp32", batch_size: int = 512) -> list[str]:
    """Each prompt's greedy continuation, up to `max_new` characters or through the first `stop`.

    Prompts are left-padded into one batch: each keeps its own positions (0 at its first character), and
    the mask hides the padding from every query. Each step then runs one character per prompt against
    the cached keys and values, so a batch costs one prompt pass plus max_new one-character passes."""
    model.eval()
    ctx = model.config.context
    out: list[str] = [""] * len(prompts)
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    for b in range(0, len(order), batch_size):
        chunk = order[b: b + batch_size]
        ids = [encode(prompts[i])[-(ctx - 1):] for i in chunk]
        P = max(len(s) for s in ids)
        steps = min(max_new, ctx - P)
        off = torch.tensor([P - len(s) for s in ids], device=device)
        x = torch.tensor([[PAD] * (P - len(s)) + s for s in ids], device=device)
        pos = (torch.arange(P, device=device)[None] - off[:, None]).clamp(min=0)
        keys = torch.arange(P + steps, device=device)
        seen = (keys[None, :] >= off[:, None])                                       # (B, K): not padding
        causal = torch.ones(P, P, dtype=torch.bool, device=device).tril()
        mask = _additive(causal[None] & seen[:, None, :P])
        with autocast(device, precision):
            h, kv = model.hidden(x, pos, mask)
        past = [(k, v) for k, v in kv]
        nxt = model.head(h[:, -1]).float().argmax(-1)
        gen = [nxt]
        for t in range(1, steps):
            p = (P - 1 + t - off)[:, None]
            m = _additive(seen[:, None, : P + t])
            with autocast(device, precision):
                h, kv = model.hidden(nxt[:, None], p, m, past)
            past = [(torch.cat([pk, k], 2), torch.cat([pv, v], 2)) for (pk, pv), (k, v) in zip(past, kv)]
            nxt = model.head(h[:, -1]).float().argmax(-1)
            gen.append(nxt)
        g = torch.stack(gen, 1).cpu().numpy()
        for r, i in enumerate(chunk):
            text = decode(g[r])
            cut = text.find(stop)
            out[i] = text if cut < 0 else text[: cut + 1]
    return out


def _additive(sees: torch.Tensor) -> torch.Tensor:
    """(B, Q, K) bool -> (B, 1, Q, K) additive mask (0 where seen, -inf elsewhere)."""
    return torch.zeros(sees.shape, device=sees.device).masked_fill_(~sees, float("-inf"))[:, None]

