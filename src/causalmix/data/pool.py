"""Pools whose state varies: per domain an amount, a noise rate, a duplicate rate, a truncation rate
and a difficulty. The knobs are latent (recorded for analysis, never shown to the estimator); the
estimator only sees what covariates.py measures from the pool's text."""
from __future__ import annotations

import dataclasses

import numpy as np

from causalmix.data.corrupt import corrupt, truncate

KNOBS = ("amount", "noise", "dup", "trunc", "difficulty")


def draw_state(domains: list[str], state_cfg, rng: np.random.Generator, fixed: dict | None = None) -> dict:
    """One latent state: {domain: {knob: value}}. `fixed` pins some knobs (e.g. the target pool)."""
    state = {}
    for d in domains:
        lo, hi = state_cfg["amount"]
        knobs = {"amount": float(np.exp(rng.uniform(np.log(lo), np.log(hi))))}
        for k in ("noise", "dup", "trunc", "difficulty"):
            lo, hi = state_cfg[k]
            knobs[k] = float(rng.uniform(lo, hi))
        knobs.update({k: float(v) for k, v in (fixed or {}).get(d, {}).items()})
        state[d] = knobs
    return state


def flat_state(state: dict) -> dict:
    return {f"state_{k}_{d}": v[k] for d, v in state.items() for k in KNOBS}


def composition(state: dict) -> dict[str, float]:
    """The pool's natural proportions: what the 'Natural' baseline trains on."""
    total = sum(v["amount"] for v in state.values())
    return {d: v["amount"] / total for d, v in state.items()}


def build(pool_samples: dict[str, list], state: dict, size: int, families: dict[str, str],
          rng: np.random.Generator, width: float = 0.25) -> dict[str, list]:
    """Draw a pool of `size` samples in the given state, per domain."""
    share = composition(state)
    counts = rng.multinomial(size, [share[d] for d in state])
    pool = {}
    for (d, knobs), n in zip(state.items(), counts):
        cands = pool_samples[d]
        n = max(int(n), 2)
        diff = np.array([s.difficulty for s in cands])
        w = np.exp(-0.5 * ((diff - knobs["difficulty"]) / width) ** 2) + 1e-9
        n_unique = max(1, min(len(cands), int(round(n * (1 - knobs["dup"])))))
        unique = []
        for i in rng.choice(len(cands), size=n_unique, replace=False, p=w / w.sum()):
            s = cands[i]
            if rng.random() < knobs["noise"]:
                s = dataclasses.replace(s, response=corrupt(s.response, families[d], rng))
            if rng.random() < knobs["trunc"]:
                s = dataclasses.replace(s, response=truncate(s.response, rng))
            unique.append(s)
        out = unique + [unique[i] for i in rng.choice(len(unique), size=n - n_unique, replace=True)]  # copies
        pool[d] = [out[i] for i in rng.permutation(len(out))]
    return pool


def draw_training_set(pool: dict[str, list], mixture: dict[str, float], n: int,
                      rng: np.random.Generator) -> list[str]:
    """n training texts with the mixture's proportions; a domain asked for more than the pool holds
    is repeated, which is how a scarce domain's returns diminish."""
    domains = list(pool)
    w = np.array([mixture[d] for d in domains], dtype=float)
    raw = w / w.sum() * n
    counts = np.floor(raw).astype(int)
    counts[np.argsort(raw - counts)[::-1][: n - counts.sum()]] += 1    # largest remainder
    texts = []
    for d, k in zip(domains, counts):
        have = pool[d]
        reps, rest = divmod(int(k), len(have))
        idx = list(np.tile(np.arange(len(have)), reps)) + list(rng.choice(len(have), rest, replace=False))
        texts += [have[i].text for i in idx]
    return [texts[i] for i in rng.permutation(len(texts))]
