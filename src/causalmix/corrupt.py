"""Damage that a pool's state does to samples, and the same damage as benchmark distractors.

The pilot (shared/PILOT.md) found that a benchmark whose distractors differ from the answer only in
format cannot see noisy training data. So each domain family has corruptions that break the skill
the benchmark tests, and the benchmark offers exactly those corruptions as wrong answers."""
from __future__ import annotations

import re
import string

import numpy as np

FAMILIES = {"math": "math", "stdlib": "code"}          # every other kind (jsonl included) is text
LETTERS = string.ascii_lowercase
_STEP = re.compile(r"(\d+)\+(\d+)(?:\+(\d+))?=(\d+)")


def family(kind: str) -> str:
    return FAMILIES.get(kind, "text")


OCR = [("rn", "m"), ("m", "rn"), ("l", "1"), ("I", "l"), ("O", "0"), ("o", "0"), ("e", "c"), ("h", "b"),
       ("u", "v"), ("cl", "d"), ("d", "cl"), ("S", "5"), ("B", "8"), ("a", "o"), ("t", "f")]


def ocr_noise(s: str, rng: np.random.Generator, rate: float = 0.35) -> str:
    """Systematic OCR confusions (rn->m, l->1, e->c, ...) at a share of the places they can occur:
    the damage of a badly scanned source. Being systematic, a model that trains on it learns it."""
    out, i = [], 0
    while i < len(s):
        for a, b in OCR:
            if s.startswith(a, i) and rng.random() < rate:
                out.append(b)
                i += len(a)
                break
        else:
            out.append(s[i])
            i += 1
    t = "".join(out)
    return t if t != s else char_noise(s, rng)


def lowercase(s: str, rng: np.random.Generator | None = None) -> str:
    """Case damage (a lowercased scrape, a broken converter): every word right, the style wrong."""
    t = s.lower()
    return t if t != s else s.upper()


def char_noise(s: str, rng: np.random.Generator, rate: float = 0.06) -> str:
    """Replace a share of the letters with random letters: misspellings, OCR-like garbage."""
    chars = list(s)
    idx = [i for i, c in enumerate(chars) if c.isalpha()]
    if not idx:
        return s
    k = max(1, int(round(rate * len(idx))))
    for i in rng.choice(idx, size=min(k, len(idx)), replace=False):
        new = LETTERS[rng.integers(26)]
        chars[i] = new.upper() if chars[i].isupper() else new
    out = "".join(chars)
    return out if out != s else s[::-1]


def swap_words(s: str, rng: np.random.Generator) -> str:
    """Swap two adjacent words: every word is right, the syntax is not (a subtle, local error)."""
    words = s.split(" ")
    cand = [i for i in range(len(words) - 1) if words[i] and words[i + 1] and words[i] != words[i + 1]]
    if not cand:
        return shuffle_words(s, rng)
    i = int(rng.choice(cand))
    words[i], words[i + 1] = words[i + 1], words[i]
    return " ".join(words)


def shuffle_words(s: str, rng: np.random.Generator) -> str:
    """Keep every word but break the order: fluent-looking words, broken syntax."""
    lead = len(s) - len(s.lstrip())
    words = s.split(" ")
    if len(words) < 3:
        return s[::-1]
    for _ in range(10):
        perm = [words[i] for i in rng.permutation(len(words))]
        if perm != words:
            break
    return s[:lead] + " ".join(perm).lstrip() if lead else " ".join(perm)


def math_steps(response: str) -> tuple[list[tuple[int, int, int, int]], str] | None:
    """Parse '7+8=15;4+3+1=8;85' into steps (x, y, carry, sum) and the answer string."""
    parts = response.split(";")
    steps = []
    for p in parts[:-1]:
        m = _STEP.fullmatch(p)
        if not m:
            return None
        x, y, c, s = m.groups()
        steps.append((int(x), int(y), int(c or 0), int(s)))
    return (steps, parts[-1]) if steps else None


def render_math(steps, answer: str) -> str:
    return "".join(f"{x}+{y}{'+%d' % c if c else ''}={s};" for x, y, c, s in steps) + answer


def math_near_miss(response: str, rng: np.random.Generator, position: int | None = None,
                   delta: int | None = None) -> str:
    """A wrong worked solution one digit-fact away from the right one: step i's sum and the
    answer's digit i shift by +-1, so only a model that knows the addition facts can tell."""
    parsed = math_steps(response)
    if parsed is None:
        return char_noise(response, rng)
    steps, answer = parsed
    i = int(rng.integers(len(steps))) if position is None else position
    d = int(rng.choice([-1, 1])) if delta is None else delta
    x, y, c, s = steps[i]
    if s + d < 0:
        d = 1
    steps = list(steps)
    steps[i] = (x, y, c, s + d)
    digits = list(answer)
    j = len(digits) - 1 - i
    if 0 <= j < len(digits) and digits[j].isdigit():
        digits[j] = str((int(digits[j]) + d) % 10)
    return render_math(steps, "".join(digits))


def corrupt(response: str, fam: str, rng: np.random.Generator) -> str:
    """The pool's noise: one corruption of the family's kinds, chosen at random."""
    if fam == "math":
        return math_near_miss(response, rng)
    kind = rng.integers(3)
    return lowercase(response) if kind == 0 else swap_words(response, rng) if kind == 1 else ocr_noise(response, rng)


def truncate(response: str, rng: np.random.Generator) -> str:
    """A response cut short, as from a broken scrape: keeps 30-60% of it."""
    keep = max(1, int(len(response) * rng.uniform(0.3, 0.6)))
    return response[:keep]


def distractors(response: str, fam: str, rng: np.random.Generator, other: str) -> list[str]:
    """Three wrong answers, each a damaged copy of the right one, of exactly the kinds the pool's noise
    does (PILOT.md: distractors that differ only in format, or come from another passage, cannot see
    noisy training data). `other` (another passage) is kept only as a fallback for odd responses."""
    if fam == "math":
        parsed = math_steps(response)
        n = len(parsed[0]) if parsed else 1
        cands = [math_near_miss(response, rng, position=p % n, delta=d)
                 for p, d in [(0, 1), (0, -1), (1, 1), (1, -1), (2, 1), (2, -1)]]
        cands = [c for c in cands if c != response]
        uniq = list(dict.fromkeys(cands))
        rng.shuffle(uniq)
        out = uniq[:3]
        while len(out) < 3:
            out.append(char_noise(response, rng, 0.3))
        return out
    other = (other + " " + other)[: len(response)]
    out = [lowercase(response), swap_words(response, rng), ocr_noise(response, rng)]
    return [o if o != response else other for o in out]
