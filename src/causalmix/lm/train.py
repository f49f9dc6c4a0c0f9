"""The training and scoring loops: one page, no framework. Used for pretraining, proxies and targets."""
from __future__ import annotations

import math
import time

import numpy as np
import torch
import torch.nn.functional as F

from causalmix.errors import ConfigError
from causalmix.lm.model import GPT, PAD, Stack, encode

PRECISIONS = ("fp32", "bf16")


def autocast(device: str, precision: str):
    """bf16: matmuls in bfloat16 under autocast (weights, optimizer state and losses stay fp32); fp32: off."""
    if precision not in PRECISIONS:
        raise ConfigError(f"precision={precision!r}: expected one of {list(PRECISIONS)}")
    return torch.autocast(torch.device(device).type, dtype=torch.bfloat16, enabled=precision == "bf16")


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
        lr: float = 2e-3, weight_decay: float = 0.0, seed: int = 0, device: str = "cpu",
        precision: str = "fp32") -> dict:
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
        with autocast(device, precision):
            loss = F.cross_entropy(model(x).flatten(0, 1).float(), y.reshape(-1), ignore_index=PAD)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        tokens += int((y != PAD).sum())
        losses.append(loss.item())
    model.eval()
    return {"steps": steps, "tokens": tokens, "train_seconds": time.perf_counter() - t0,
            "final_loss": float(np.mean(losses[-max(1, steps // 10):]))}


def fit_many(models: list[GPT], texts: list[list[str]], seeds: list[int], *, epochs: float = 1.0,
             batch_size: int = 16, lr: float = 2e-3, weight_decay: float = 0.0, device: str = "cpu",
             precision: str = "fp32") -> list[dict]:
    """fit() for models of one size at once, trained as one Stack: model m sees texts[m] in the order its
    seeds[m] draws, with its own loss, gradient clipping and AdamW state (the schedule is the same for all,
    as their step counts must be). Gives each model what fit() would, up to float rounding (dropout aside)."""
    M = len(models)
    steps = {max(1, math.ceil(epochs * len(t) / batch_size)) for t in texts}
    if len(steps) != 1:
        raise ValueError(f"fit_many needs one step count for all models, got {sorted(steps)}")
    if len({min(batch_size, len(t)) for t in texts}) != 1:
        raise ValueError("fit_many needs the same batch size for all models: give each at least batch_size texts")
    steps = steps.pop()
    net = Stack(models).to(device)
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=weight_decay, betas=(0.9, 0.99))
    warm = max(1, steps // 20)
    gens = [np.random.default_rng(s) for s in seeds]
    orders, pos = [g.permutation(len(t)) for g, t in zip(gens, texts)], [0] * M
    tokens, t0, losses = torch.zeros(M, dtype=torch.long, device=device), time.perf_counter(), []
    net.train()
    for step in range(steps):
        chunk = []
        for m in range(M):
            if pos[m] + batch_size > len(orders[m]):
                orders[m], pos[m] = gens[m].permutation(len(texts[m])), 0
            chunk += [texts[m][i] for i in orders[m][pos[m]: pos[m] + batch_size]]
            pos[m] += batch_size
        x, y = batch(chunk, net.config.context, device)
        x, y = x.view(M, -1, x.shape[1]), y.view(M, -1, y.shape[1])
        for group in opt.param_groups:
            group["lr"] = lr * min(1.0, (step + 1) / warm) * 0.5 * (1 + math.cos(math.pi * step / steps))
        with autocast(device, precision):
            logits = net(x)
        ce = F.cross_entropy(logits.flatten(0, 2).float(), y.reshape(-1), ignore_index=PAD, reduction="none")
        n = (y != PAD).flatten(1).sum(1)
        loss = ce.view(M, -1).sum(1) / n.clamp(min=1)          # each model's own mean loss
        opt.zero_grad(set_to_none=True)
        loss.sum().backward()
        norm = torch.stack([p.grad.flatten(1).pow(2).sum(1) for p in net.parameters()]).sum(0).sqrt()
        clip = (1.0 / (norm + 1e-6)).clamp(max=1.0)          # clip_grad_norm_(max_norm=1), per model
        for p in net.parameters():
            p.grad.mul_(clip.view(-1, *[1] * (p.dim() - 1)))
        opt.step()
        tokens += n                    # kept on the device: no sync per step on a GPU
        losses.append(loss.detach())
    net.unstack(models)
    for m in models:
        m.eval()
    seconds, last = time.perf_counter() - t0, torch.stack(losses[-max(1, steps // 10):]).mean(0).cpu()
    tokens = tokens.cpu()
    return [{"steps": steps, "tokens": int(tokens[m]), "train_seconds": seconds / M, "final_loss": float(last[m])}
            for m in range(M)]


@torch.no_grad()
def char_stats(model: GPT, texts: list[str], start: list[int] | None = None, batch_size: int = 256,
               device: str = "cpu", precision: str = "fp32") -> list[tuple[np.ndarray, np.ndarray]]:
    """Per text: log-prob of each character from position `start` on, and the model's entropy there.

    `start` marks where the scored part begins (the response of a prompt+response pair); the first
    character of a text is never scored, having no context. Texts run in batches of similar length."""
    model.eval()
    start = start or [1] * len(texts)
    out = [None] * len(texts)
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    for b in range(0, len(texts), batch_size):
        chunk = order[b: b + batch_size]
        x, y = batch([texts[i] for i in chunk], model.config.context, device)
        with autocast(device, precision):
            logp = F.log_softmax(model(x).float(), dim=-1)
        tok = logp.gather(-1, y.unsqueeze(-1)).squeeze(-1)
        ent = -(logp.exp() * logp).sum(-1)
        tok, ent = tok.cpu().numpy(), ent.cpu().numpy()
        for r, i in enumerate(chunk):
            n = min(len(texts[i]), model.config.context + 1) - 1
            s = max(start[i] - 1, 0)
            out[i] = (tok[r, s:n], ent[r, s:n])
    return out


@torch.no_grad()
def choice_logprobs(model: GPT, prompts: list[str], choices: list[tuple[str, ...]], tokens: int = 32768,
                    device: str = "cpu", precision: str = "fp32") -> list[list[np.ndarray]]:
    """Per item, per choice: the log-prob of each character of the choice after the prompt, as
    char_stats(prompt + choice, start=len(prompt)) gives it, but with each prompt run once.

    A first pass runs the prompts and keeps their keys and values; a second runs every choice against
    its own prompt's (the first character of each choice is predicted by the prompt's last position).
    Items are batched by length, about `tokens` characters a batch."""
    model.eval()
    ctx = model.config.context
    out: list = [None] * len(prompts)
    odd = [i for i, p in enumerate(prompts) if not 0 < len(p) < ctx]   # no prompt to share: score whole texts
    if odd:
        flat = [(i, c) for i in odd for c in choices[i]]
        st = char_stats(model, [prompts[i] + c for i, c in flat], [len(prompts[i]) for i, _ in flat],
                        device=device, precision=precision)
        for i in odd:
            out[i] = [lp for (j, _), (lp, _) in zip(flat, st) if j == i]
    ids = {i: (encode(prompts[i]), [encode(c)[: ctx + 1 - len(prompts[i])] for c in choices[i]])
           for i in range(len(prompts)) if out[i] is None}
    order = sorted(ids, key=lambda i: (len(ids[i][0]), max(map(len, ids[i][1]), default=0)))
    while order:
        items, width = [], 0
        while order and (not items or (len(items) + 1) * max(width, _width(ids[order[0]])) <= tokens):
            items.append(order.pop(0))
            width = max(width, _width(ids[items[-1]]))
        with autocast(device, precision):
            scored = _score_items(model, [ids[i] for i in items], device)
        for i, lps in zip(items, scored):
            out[i] = lps
    return out


def _width(item) -> int:
    prompt, conts = item
    return len(prompt) + len(conts) * max(map(len, conts), default=0)


def _padded(rows: list[list[int]], width: int) -> torch.Tensor:
    a = np.full((len(rows), width), PAD, dtype=np.int64)
    for r, s in enumerate(rows):
        a[r, : len(s)] = s
    return torch.from_numpy(a)


def _score_items(model: GPT, items, device, groups: int = 4) -> list[list[np.ndarray]]:
    prompts = [p for p, _ in items]
    P = torch.tensor([len(p) for p in prompts], device=device)
    h, past = model.hidden(_padded(prompts, int(P.max())).to(device))
    first = F.log_softmax(model.head(h[torch.arange(len(items), device=device), P - 1]).float(), -1).cpu()
    conts = [c for _, cs in items for c in cs]
    owner = torch.tensor([b for b, (_, cs) in enumerate(items) for _ in cs], device=device)
    rest: list = [None] * len(conts)        # log-probs of each continuation's 2nd, 3rd, ... character
    rows = sorted((r for r, c in enumerate(conts) if len(c) > 1), key=lambda r: len(conts[r]))
    for g in np.array_split(np.array(rows, dtype=np.int64), min(groups, len(rows))) if rows else []:
        own = owner[torch.from_numpy(g).to(device)]
        lp = _continuations(model, [conts[r] for r in g], P[own], [(k[own], v[own]) for k, v in past])
        for r, x in zip(g, lp):
            rest[r] = x
    res, r = [], 0
    for b, (_, cs) in enumerate(items):
        res.append([])
        for c in cs:
            lps = np.zeros(len(c), dtype=np.float32)
            if len(c):
                lps[0] = first[b, c[0]]
            if len(c) > 1:
                lps[1:] = rest[r]
            res[-1].append(lps)
            r += 1
    return res


def _continuations(model: GPT, conts: list[list[int]], P: torch.Tensor, past) -> list[np.ndarray]:
    """Continuations of similar length, each against its own prompt's keys and values (padding masked)."""
    device, C = P.device, max(len(c) for c in conts) - 1
    xc, yc = _padded([c[:-1] for c in conts], C).to(device), _padded([c[1:] for c in conts], C).to(device)
    pos = (P[:, None] + torch.arange(C, device=device)).clamp(max=model.config.context - 1)
    sees = torch.cat([(torch.arange(past[0][0].shape[2], device=device) < P[:, None])[:, None, :].expand(-1, C, -1),
                      torch.ones(C, C, dtype=torch.bool, device=device).tril().expand(len(conts), -1, -1)], 2)
    mask = torch.zeros(sees.shape, device=device).masked_fill_(~sees, float("-inf"))[:, None]
    h, _ = model.hidden(xc, pos, mask, past)
    valid = yc != PAD
    got = F.log_softmax(model.head(h[valid]).float(), -1).gather(-1, yc[valid][:, None]).squeeze(-1)
    lp = torch.zeros(yc.shape, device=device).masked_scatter_(valid, got).cpu().numpy()
    return [lp[i, : len(c) - 1] for i, c in enumerate(conts)]
