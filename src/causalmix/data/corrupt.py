"""Damage that a pool's state does to samples, and the same damage as benchmark distractors.

A pilot run before this suite was built (the book's method page, 'Benchmarks') found that a benchmark
whose distractors differ from the answer only in format cannot see noisy training data. So each domain
family has corruptions that break the skill the benchmark tests, and the benchmark offers exactly those
corruptions as wrong answers."""
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
    """Parse '7+8=15;4+3+1=8;85' (or the fixed-width '7+8+0=15;4+3+1=08;085') into steps
    (x, y, carry, sum) and the answer string."""
    parts = response.split(";")
    steps = []
    for p in parts[:-1]:
        m = _STEP.fullmatch(p)
        if not m:
            return None
        x, y, c, s = m.groups()
        steps.append((int(x), int(y), int(c or 0), int(s)))
    return (steps, parts[-1]) if steps else None


_FIXED_STEP = re.compile(r"\d\+\d\+\d=\d\d")


def math_fixed(response: str) -> bool:
    """True for the fixed-width format (domains.math_response(fixed=True)): every step writes its carry and a
    two-digit sum, so every solution of a problem, right or wrong, has the same length."""
    parts = response.split(";")[:-1]
    return bool(parts) and all(_FIXED_STEP.fullmatch(p) for p in parts)


def math_answer(steps, fixed: bool = False) -> str:
    """The answer a worked solution's own steps imply: the last step's carry, then each sum's last digit, most
    significant first; zero-padded to len(steps) + 1 digits in the fixed format, without leading zeros otherwise."""
    digits = str(steps[-1][3] // 10) + "".join(str(s % 10) for *_, s in steps[::-1])
    return digits if fixed else (digits.lstrip("0") or "0")


def render_math(steps, answer: str | None = None, fixed: bool = False) -> str:
    """Steps (x, y, carry, sum) and an answer (default: the one the steps imply) as a worked solution."""
    answer = math_answer(steps, fixed) if answer is None else answer
    if fixed:
        return "".join(f"{x}+{y}+{c}={s:02d};" for x, y, c, s in steps) + answer
    return "".join(f"{x}+{y}{'+%d' % c if c else ''}={s};" for x, y, c, s in steps) + answer


def with_wrong_sum(steps, i: int, wrong: int) -> list[tuple[int, int, int, int]]:
    """The solution whose step i writes `wrong` as its sum and whose later steps follow from it correctly
    (the carry out of step i is wrong's, each later sum adds its carry right): one addition fact is wrong and
    the rest is consistent with it, so only a reader who knows that fact can tell."""
    x, y, c, _ = steps[i]
    out, carry = list(steps[:i]) + [(x, y, c, wrong)], wrong // 10
    for x, y, _, _ in steps[i + 1:]:
        s = x + y + carry
        out.append((x, y, carry, s))
        carry = s // 10
    return out


def misreadable_digits(steps) -> list[tuple[int, int, range]]:
    """(step, operand 0 or 1, the digit's range) for each digit of the problem's operands: a units digit is
    uniform over 0-9, a leading digit of a longer number over 1-9, a middle one over 0-9 (the generator's
    distribution, domains._rand_operand). Padding zeros (the missing digits of a shorter operand) are skipped."""
    out = []
    for o in (0, 1):
        col = [st[o] for st in steps]
        top = max((i for i, v in enumerate(col) if v), default=0)        # the operand's leading digit
        for i in range(top + 1):
            out.append((i, o, range(1, 10) if 0 < i == top else range(10)))
    return out


def _misread(steps, i: int, o: int, digit: int, fixed: bool) -> str:
    x, y, c, _ = steps[i]
    wrong = (digit + y if o == 0 else x + digit) + c
    return render_math(with_wrong_sum(steps, i, wrong), fixed=fixed)


def math_near_miss(response: str, rng: np.random.Generator, position: int | None = None,
                   delta: int | None = None) -> str:
    """A wrong worked solution one addition fact away from the right one: step i adds one operand's digit as
    if it were misread by delta (default 1-3 either way, round the digit's range), and the rest of the
    solution follows from that wrong sum (see with_wrong_sum)."""
    parsed = math_steps(response)
    if parsed is None:
        return char_noise(response, rng)
    steps, _ = parsed
    cands = misreadable_digits(steps)
    cands = [m for m in cands if position is None or m[0] == position % len(steps)] or cands
    i, o, rg = cands[int(rng.integers(len(cands)))]
    d = int(rng.choice([-3, -2, -1, 1, 2, 3])) if delta is None else delta
    j = rg.index(steps[i][o])
    return _misread(steps, i, o, rg[(j + d) % len(rg)], math_fixed(response))


def math_distractors(response: str, rng: np.random.Generator) -> list[str] | None:
    """Three near misses that no surface feature tells from the right answer. One digit of the problem (step i,
    operand o) is misread as each of the other three values of a window of four consecutive values (round
    the digit's range) in which the true digit is equally often first, second, third or fourth; step i's sum
    adds the misread digit, and the rest of each solution follows from that wrong sum (with_wrong_sum).

    As the true digit is uniform over its range, the four sums are exchangeable for any reader who does not
    relate the sum to the very digits it adds: value, length, digit frequencies, how common a sum is, all
    pick the right answer 25% of the time. The old distractors (a sum +1 and -1 around the right one) made the
    right answer the middle value, and the untrained base ranked it below chance (17.5%)."""
    parsed = math_steps(response)
    if parsed is None:
        return None
    steps, _ = parsed
    fixed = math_fixed(response)
    cands = misreadable_digits(steps)
    i, o, rg = cands[int(rng.integers(len(cands)))]
    j, k = rg.index(steps[i][o]), int(rng.integers(4))
    return [_misread(steps, i, o, rg[(j - k + t) % len(rg)], fixed) for t in range(4) if t != k]


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
    does (the pilot on the book's method page: distractors that differ only in format, or come from another
    passage, cannot see noisy training data). `other` (another passage) is kept only as a fallback for odd
    responses."""
    if fam == "math":
        out = math_distractors(response, rng)
        if out is not None:
            return out
        return [char_noise(response, rng, 0.3) for _ in range(3)]
    other = (other + " " + other)[: len(response)]
    out = [lowercase(response), swap_words(response, rng), ocr_noise(response, rng)]
    return [o if o != response else other for o in out]
