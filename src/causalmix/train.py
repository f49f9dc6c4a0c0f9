"""The training and scoring loops: one page, no framework. Used for pretraining, proxies and targets."""
from __future__ import annotations

import math
import time

import numpy as np
import torch
import torch.nn.functional as F

from .model import GPT, PAD, encode


def batch(texts: list[str], context: int, device: str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded inputs and next-char targets; PAD targets are ignored by the loss."""
    ids = [encode(t)[: context + 1] for t in texts]
    T = max(len(s) for s in ids) - 1
    x = torch.full((len(ids), T), PAD, dtype=torch.long)
    y = torch.full((len(ids), T), PAD, dtype=torch.long)
    for i, s in enumerate(ids):
        s = torch.tensor(s)
        x[i, : len(s) - 1], y[i, : len(s) - 1] = s[:-1], s[1:]
    return x.to(device), y.to(device)


def fit(model: GPT, texts: list[str], *, epochs: float = 1.0, steps: int | None = None, batch_size: int = 16,
        lr: float = 2e-3, weight_decay: float = 0.0, seed: int = 0, device: str = "cpu") -> dict:
    """AdamW with warm-up and cosine decay over `steps` (default: `epochs` passes over `texts`)."""
    g = np.random.default_rng(seed)
    torch.manual_seed(seed)
    steps = steps or max(1, math.ceil(epochs * len(texts) / batch_size))
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay, betas=(0.9, 0.99))
    warm = max(1, steps // 20)
    order, pos, tokens, t0, losses = g.permutation(len(texts)), 0, 0, time.perf_counter(), []
    model.train()
    for step in range(steps):
        if pos + batch_size > len(order):
            order, pos = g.permutation(len(texts)), 0
        x, y = batch([texts[i] for i in order[pos: pos + batch_size]], model.config.context, device)
        pos += batch_size
        for group in opt.param_groups:
            group["lr"] = lr * min(1.0, (step + 1) / warm) * 0.5 * (1 + math.cos(math.pi * step / steps))
        loss = F.cross_entropy(model(x).flatten(0, 1), y.reshape(-1),
                               ignore_index=PAD)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        tokens += int((y != PAD).sum())
        losses.append(loss.item())
    model.eval()
    return {"steps": steps, "tokens": tokens, "train_seconds": time.perf_counter() - t0,
            "final_loss": float(np.mean(losses[-max(1, steps // 10):]))}


@torch.no_grad()
def char_stats(model: GPT, texts: list[str], start: list[int] | None = None, batch_size: int = 256,
               device: str = "cpu") -> list[tuple[np.ndarray, np.ndarray]]:
    """Per text: log-prob of each character from position `start` on, and the model's entropy there.

    `start` marks where the scored part begins (the response of a prompt+response pair); the first
    character of a text is never scored, having no context."""
    model.eval()
    start = start or [1] * len(texts)
    out = []
    for b in range(0, len(texts), batch_size):
        chunk = texts[b: b + batch_size]
        x, y = batch(chunk, model.config.context, device)
        logp = F.log_softmax(model(x).float(), dim=-1)
        tok = logp.gather(-1, y.unsqueeze(-1)).squeeze(-1)
        ent = -(logp.exp() * logp).sum(-1)
        tok, ent = tok.cpu().numpy(), ent.cpu().numpy()
        for i, t in enumerate(chunk):
            n = min(len(t), model.config.context + 1) - 1
            s = max(start[b + i] - 1, 0)
            out.append((tok[i, s:n], ent[i, s:n]))
    return out
