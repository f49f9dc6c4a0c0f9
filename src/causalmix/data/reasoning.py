"""A reasoning pool for the long chain-of-thought experiment: generated multi-step problems whose samples
carry worked solutions of varied length, ending in a final answer `#N.` that a benchmark checks.

Task kinds (a domain names one in `task`; its samples are the kind's problems):
- chain:  add 2..max_terms numbers in 1..max_value, writing every running sum ('3+4=7;7+2=9;#9.');
- direct: the same problems answered at once ('#16.'): the short-thought contrast;
- count:  count one letter in a word of `letters`, writing the running count at every letter ('a0;b1;b2;#2.');
- max:    the largest of 2..max_terms numbers in 0..max_value, writing the running maximum ('3;8;8;#8.').
The number of terms (or letters) sets a solution's length and a sample's difficulty.

A pool's noise here is a reasoning error: one step is wrong by a small amount and every later step
carries it, so the final answer is wrong while the solution still reads as a solution (a running maximum
can absorb the error when a later number is larger: a flawed solution with the right answer). The quality a
practitioner can measure (the `ws_` covariate of this experiment) is the share of a pool's samples whose
worked solution checks."""
from __future__ import annotations

import random
import re

import numpy as np

from causalmix.data.domains import Sample
from causalmix.errors import ConfigError

TASKS = ("chain", "direct", "count", "max")
_ANSWER = re.compile(r"#(\d+)\.")


def problem(task: str, rng: random.Random, max_terms: int, max_value: int = 9, letters: str = "ab") -> list:
    k = rng.randint(2, max_terms)
    if task in ("chain", "direct"):
        return [rng.randint(1, max_value) for _ in range(k)]
    if task == "count":
        return [rng.choice(letters)] + [rng.choice(letters) for _ in range(k + 2)]   # target letter, word
    if task == "max":
        return [rng.randint(0, max_value) for _ in range(k)]
    raise ConfigError(f"reasoning task {task!r}: expected one of {list(TASKS)}")


def prompt(task: str, tag: str, p: list) -> str:
    if task in ("chain", "direct"):
        return f"{tag}{'+'.join(map(str, p))}="
    if task == "count":
        return f"{tag}{p[0]} in {''.join(p[1:])}="
    return f"{tag}{' '.join(map(str, p))}="


def solve(task: str, p: list, err_step: int | None = None, delta: int = 0) -> str:
    """The worked solution; with err_step, that step is off by `delta` and every later step carries it."""
    if task in ("chain", "direct"):
        acc, steps = p[0], []
        for i, x in enumerate(p[1:]):
            new = acc + x + (delta if i == err_step else 0)
            steps.append(f"{acc}+{x}={new}")
            acc = new
        return ("" if task == "direct" else ";".join(steps) + ";") + f"#{acc}."
    if task == "count":
        n, steps = 0, []
        for i, c in enumerate(p[1:]):
            n += int(c == p[0]) + (delta if i == err_step else 0)
            steps.append(f"{c}{n}")
        return ";".join(steps) + f";#{n}."
    best, steps = p[0], [str(p[0])]
    for i, x in enumerate(p[1:]):
        best = max(best, x) + (delta if i == err_step else 0)
        steps.append(str(best))
    return ";".join(steps) + f";#{best}."


def parse_problem(task: str, tag: str, text: str) -> list:
    body = text[len(tag):].rstrip("=")
    if task in ("chain", "direct"):
        return [int(x) for x in body.split("+")]
    if task == "count":
        letter, word = body.split(" in ")
        return [letter, *word]
    return [int(x) for x in body.split()]


def answer(text: str) -> int | None:
    """The final answer a solution (or a model's continuation) states, or None."""
    m = _ANSWER.search(text)
    return int(m.group(1)) if m else None


def samples(name: str, spec: dict, seed: int) -> list[Sample]:
    """A domain's samples: spec = {task, n, max_terms, max_value, letters, tag}; one problem is one document."""
    task, n, k = spec["task"], int(spec.get("n", 20000)), int(spec.get("max_terms", 5))
    tag = spec.get("tag", f"{name}: ")
    rng = random.Random(f"reasoning:{name}:{seed}")
    seen, rows = set(), []
    for _ in range(20 * n):
        if len(rows) >= n:
            break
        p = problem(task, rng, k, int(spec.get("max_value", 9)), str(spec.get("letters", "ab")))
        text = prompt(task, tag, p)
        if text in seen:
            continue
        seen.add(text)
        size = len(p) - (3 if task == "count" else 0)      # terms, or letters less two: 2..max_terms
        rows.append(Sample(name, text, text, solve(task, p), (size - 2) / max(1, k - 2)))
    if len(rows) < 10:
        raise ConfigError(f"reasoning domain {name!r}: only {len(rows)} distinct problems; raise max_terms")
    return rows


def corrupt(sample: Sample, task: str, tag: str, rng: np.random.Generator) -> Sample:
    """A reasoning error: one step off by 1..3 (up or down), carried to the end."""
    p = parse_problem(task, tag, sample.prompt)
    err = int(rng.integers(max(1, len(p) - 1)))
    delta = int(rng.choice([-3, -2, -1, 1, 2, 3]))
    return Sample(sample.domain, sample.doc, sample.prompt, solve(task, p, err, delta), sample.difficulty)


def checks(sample: Sample, task: str, tag: str) -> bool:
    try:
        return solve(task, parse_problem(task, tag, sample.prompt)) == sample.response
    except (ValueError, IndexError):
        return False
