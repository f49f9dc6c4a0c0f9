"""Held-out dev benchmarks scored as lm-evaluation-harness scores multiple choice.

The model ranks the true response among distractors by log-likelihood per character given the
prompt (the harness's length-normalised `acc_norm`, so a shorter distractor gains nothing from its
length); AvgDev = mean accuracy x 100 (the paper's metric). Beside it a continuous score, the margin: the
true response's log-likelihood per character minus the best distractor's, which moves before
accuracy does and so carries more signal per proxy run."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from causalmix.data.corrupt import distractors
from causalmix.lm.train import choice_logprobs


@dataclass(frozen=True)
class Item:
    domain: str
    prompt: str
    choices: tuple[str, ...]
    answer: int


def build(domain: str, fam: str, samples: list, n_items: int, seed: int) -> list[Item]:
    """Items from the domain's bench split only, which shares no document with any pool."""
    rng = np.random.default_rng(seed)
    if len(samples) < 2:
        from causalmix.errors import ConfigError
        raise ConfigError(f"domain {domain!r} has {len(samples)} benchmark samples: expected at least 2")
    idx = rng.choice(len(samples), size=min(n_items, len(samples)), replace=False)
    items = []
    for i in idx:
        s = samples[i]
        other = samples[(i + 1 + rng.integers(len(samples) - 1)) % len(samples)].response
        choices = [s.response, *distractors(s.response, fam, rng, other)]
        order = rng.permutation(len(choices))
        items.append(Item(domain, s.prompt, tuple(choices[j] for j in order), int(np.argmax(order == 0))))
    return items


def evaluate(model, benches: dict[str, list[Item]], device: str = "cpu", precision: str = "fp32") -> dict[str, float]:
    """acc_<domain>, margin_<domain>, avg_dev and avg_margin for one model; each prompt is run once."""
    items = [it for d in benches for it in benches[d]]
    stats = choice_logprobs(model, [it.prompt for it in items], [it.choices for it in items], device=device,
                            precision=precision)
    per_char = np.array([lp.mean() if len(lp) else 0.0 for lps in stats for lp in lps])
    out, pos = {}, 0
    for d, items in benches.items():
        acc, margin = [], []
        for it in items:
            n = len(it.choices)
            pc = per_char[pos: pos + n]
            acc.append(float(np.argmax(pc) == it.answer))
            margin.append(float(pc[it.answer] - np.delete(pc, it.answer).max()))
            pos += n
        out[f"acc_{d}"] = 100.0 * float(np.mean(acc))
        out[f"margin_{d}"] = float(np.mean(margin))
    out["avg_dev"] = float(np.mean([out[f"acc_{d}"] for d in benches]))
    out["avg_margin"] = float(np.mean([out[f"margin_{d}"] for d in benches]))
    return out


def describe(benches: dict[str, list[Item]]) -> pd.DataFrame:
    rows = [{"domain": d, "items": len(v), "choices": len(v[0].choices) if v else 0,
             "example_prompt": v[0].prompt if v else "", "example_answer": v[0].choices[v[0].answer] if v else ""}
            for d, v in benches.items()]
    return pd.DataFrame(rows)
