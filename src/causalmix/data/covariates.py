"""Pool-state covariates measured from the text with the base (scoring) model.

Analogues of the paper's three features, per domain and for the whole pool:
- nl  (Normalized_Loss): mean per-character negative log-likelihood of a sample under the base model;
- hes (High-Entropy Sum): the sum of the base model's next-character entropies over the top `hes_top`
  share of a sample's positions (where the model is most unsure), averaged over samples;
- ws  (Writing_Style): a quality rating in [0, 1]: for text and code the share of words found, with
  their case, in the domain's clean reference vocabulary (its pretrain split); for math the share of worked solutions that
  check arithmetically.
plus what a data engineer would also measure: dup (share of exact duplicate samples), len (mean response
length in characters) and share (the pool's composition)."""
from __future__ import annotations

import re
from collections import Counter

import numpy as np

from causalmix.data.corrupt import math_answer, math_fixed, math_steps
from causalmix.lm.train import char_stats

_WORD = re.compile(r"[A-Za-z_]+")


def vocabulary(samples: list, min_count: int = 1) -> frozenset[str]:
    counts = Counter(w for s in samples for w in _WORD.findall(s.text))   # cased: case damage shows
    return frozenset(w for w, c in counts.items() if c >= min_count)


def math_ok(response: str) -> float:
    """1 if a worked solution checks: every column sum adds its carry right, each carry is the previous
    sum's, and the answer is the one the sums imply, written in the solution's own format."""
    parsed = math_steps(response)
    if parsed is None:
        return 0.0
    steps, answer = parsed
    carries = [0] + [s // 10 for *_, s in steps[:-1]]
    return float(all(x + y + c == s and c == want for (x, y, c, s), want in zip(steps, carries))
                 and answer == math_answer(steps, math_fixed(response)))


def rating(sample, fam: str, vocab: frozenset[str]) -> float:
    if fam == "math":
        return math_ok(sample.response)
    words = _WORD.findall(sample.response)
    return float(np.mean([w in vocab for w in words])) if words else 0.0


def measure(model, pool: dict[str, list], families: dict[str, str], vocabs: dict[str, frozenset],
            score_samples: int, hes_top: float, rng: np.random.Generator, device: str = "cpu",
            precision: str = "fp32") -> dict:
    """One row of covariates for a pool; the model scores a stratified subsample, the cheap
    statistics use every sample."""
    per = max(4, score_samples // len(pool))
    texts, owners = [], []
    for d, samples in pool.items():
        for i in rng.choice(len(samples), size=min(per, len(samples)), replace=False):
            texts.append(samples[i].text)
            owners.append(d)
    stats = char_stats(model, texts, device=device, precision=precision)
    nl = np.array([-lp.mean() for lp, _ in stats])
    hes = np.array([np.sort(e)[::-1][: max(1, int(round(hes_top * len(e))))].sum() for _, e in stats])
    owners = np.array(owners)
    total = sum(len(v) for v in pool.values())
    row, allws, alldup, alllen = {}, [], [], []
    for d, samples in pool.items():
        m = owners == d
        ws = [rating(s, families[d], vocabs[d]) for s in samples]
        texts_d = [s.text for s in samples]
        dup = 1 - len(set(texts_d)) / len(texts_d)
        row |= {f"nl_{d}": float(nl[m].mean()), f"hes_{d}": float(hes[m].mean()), f"ws_{d}": float(np.mean(ws)),
                f"dup_{d}": dup, f"len_{d}": float(np.mean([len(s.response) for s in samples])),
                f"share_{d}": len(samples) / total}
        allws += ws
        alldup.append(dup * len(samples))
        alllen += [len(s.response) for s in samples]
    row |= {"pool_nl": float(nl.mean()), "pool_hes": float(hes.mean()), "pool_ws": float(np.mean(allws)),
            "pool_dup": float(sum(alldup) / total), "pool_len": float(np.mean(alllen))}
    return row
