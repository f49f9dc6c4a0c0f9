"""Math benchmark and difficulty knob: distractors are near misses that no surface feature tells from the
answer, the math formats parse and check, training on math is what raises math accuracy, and the difficulty
knob (held fixed by default, book/method.md says why) still works when set."""
import collections
import copy
import random
import re

import numpy as np
import pytest

from causalmix.experiments import analysis
from causalmix.data import benchmarks, pool as pools
from causalmix.data.corrupt import distractors, math_fixed, math_near_miss, math_steps, misreadable_digits
from causalmix.data.covariates import math_ok
from causalmix.data.domains import load_domain, math_response, parse_math
from causalmix.errors import ConfigError

PADDED = {"kind": "math", "n": 6000, "max_digits": 4, "format": "padded"}
WORKED = {"kind": "math", "n": 6000, "max_digits": 2, "format": "worked"}


@pytest.fixture(scope="module")
def problems(tmp_path_factory):
    d = tmp_path_factory.mktemp("math")
    return {"padded": load_domain("math", PADDED, d), "worked": load_domain("math", WORKED, d)}


def test_formats_are_exact_and_check(problems):
    assert math_response(47, 38, fixed=True) == "7+8+0=15;4+3+1=08;085"
    assert math_response(47, 38, fixed=True, width=4) == "7+8+0=15;4+3+1=08;0+0+0=00;0+0+0=00;00085"
    assert math_response(5, 95, fixed=True, width=2) == "5+5+0=10;0+9+1=10;100"
    assert parse_math("7+8+0=15;4+3+1=08;085") == ([(7, 8, 0, 15), (4, 3, 1, 8)], 85)
    rng = random.Random(0)
    for _ in range(300):
        a, b = rng.randint(0, 9999), rng.randint(0, 9999)
        for r in (math_response(a, b), math_response(a, b, True), math_response(a, b, True, 4)):
            assert parse_math(r)[1] == a + b and math_ok(r) == 1.0
    ss = problems["padded"]
    assert len({len(s.text) for s in ss}) == 1                     # one layout for every padded sample
    for s in ss[:500]:
        a, b = re.fullmatch(r"math: (\d{4})\+(\d{4})=", s.prompt).groups()
        assert s.response == math_response(int(a), int(b), fixed=True, width=4) and math_fixed(s.response)
    with pytest.raises(ConfigError, match="format must be one of"):
        load_domain("math", {"kind": "math", "format": "roman"}, "/nonexistent")


def _wrong_steps(steps):
    return [i for i, (x, y, c, s) in enumerate(steps) if x + y + c != s]


@pytest.mark.parametrize("fmt", ["padded", "worked"])
def test_distractors_are_near_misses(problems, fmt):
    """Each distractor has exactly one wrong addition fact (a misread digit, 1-3 off round its range); every
    carry and later sum follows from it and the answer is the one its steps imply. In the fixed-width
    formats every choice has the answer's length."""
    rng = np.random.default_rng(0)
    near = []
    for s in problems[fmt][:1500]:
        right, _ = math_steps(s.response)
        ds = distractors(s.response, "math", rng, other="")
        assert len(set(ds)) == 3 and s.response not in ds
        for d in ds:
            steps, answer = math_steps(d)
            assert math_ok(d) == 0.0 and parse_math(d) and math_fixed(d) == math_fixed(s.response)
            wrong = _wrong_steps(steps)
            assert len(wrong) == 1
            i = wrong[0]
            assert steps[:i] == right[:i] and [st[:2] for st in steps] == [st[:2] for st in right]
            for (_, _, c, _), (_, _, _, prev) in zip(steps[1:], steps[:-1]):
                assert c == prev // 10                             # carries follow from the sums written
            x, y, c, wrong_sum = steps[i]
            ok = False
            for step, o, rg in misreadable_digits(right):
                if step == i:
                    digit = wrong_sum - c - (y if o == 0 else x)
                    if digit in rg:
                        gap = abs(rg.index(digit) - rg.index(right[i][o]))
                        ok = ok or min(gap, len(rg) - gap) in (1, 2, 3)
            assert ok, (s.response, d)
            near.append(abs(wrong_sum - right[i][3]) <= 3)
            if fmt == "padded":
                assert len(d) == len(s.response)
    assert np.mean(near) > 0.75                                    # most are 1-3 off (the rest wrap round)


@pytest.mark.parametrize("fmt", ["padded", "worked"])
def test_no_surface_feature_predicts_the_answer(problems, fmt):
    """Rules that read only the surface of the four choices pick the right one at chance (the landed
    distractors made the answer the middle value, and an untrained model scored 17.5%)."""
    rng = np.random.default_rng(1)
    ss = problems[fmt]
    ref, test = ss[:2000], ss[2000:6000]
    sums = collections.Counter(st[3] for s in ref for st in math_steps(s.response)[0])
    answers = collections.Counter(math_steps(s.response)[1] for s in ref)
    hits = collections.defaultdict(list)
    ranks = []
    for s in test:
        choices = [s.response, *distractors(s.response, "math", rng, other="")]
        value = [int(math_steps(c)[1]) for c in choices]
        ranks.append(sum(v < value[0] for v in value))
        rules = {"longest": [len(c) for c in choices], "largest": value, "smallest": [-v for v in value],
                 "common sums": [sum(np.log1p(sums[st[3]]) for st in math_steps(c)[0]) for c in choices],
                 "common answer": [answers[math_steps(c)[1]] for c in choices],
                 "digit sum": [sum(map(int, re.findall(r"\d", c))) for c in choices]}
        for name, score in rules.items():
            score = np.asarray(score, float) + rng.random(4) * 1e-6            # ties broken at random
            hits[name].append(int(np.argmax(score)) == 0)
    for name, h in hits.items():
        assert abs(np.mean(h) - 0.25) < 0.03, (name, np.mean(h))
    share = np.bincount(ranks, minlength=4) / len(ranks)               # the answer's rank among the values
    assert np.all(np.abs(share - 0.25) < 0.035), share


def test_pool_noise_is_the_same_damage(problems):
    rng = np.random.default_rng(2)
    for s in problems["padded"][:500] + problems["worked"][:500]:
        bad = math_near_miss(s.response, rng)
        steps, _ = math_steps(bad)
        assert math_ok(bad) == 0.0 and len(_wrong_steps(steps)) == 1 and math_fixed(bad) == math_fixed(s.response)


@pytest.mark.slow
def test_math_training_raises_math_accuracy(tmp_path):
    """A proxy-size model fine-tuned on math (a few hundred steps, the TINY world's nearly untrained base)
    ranks the right worked solution well above chance; the same steps on math-free text do not."""
    import torch
    from conftest import TINY
    from causalmix.config import compose
    from causalmix.lm.train import fit
    from causalmix.experiments.world import base_model, build_world
    torch.set_num_threads(1)
    cfg = compose(TINY + [f"paths.out={tmp_path}"])
    world, base = build_world(cfg), base_model(cfg, "proxy")
    bench = {"math": benchmarks.build("math", "math", world.splits["math"]["bench"], 100, seed=1)}
    clean = {d: {"amount": 1.0, "noise": 0.0, "dup": 0.0, "trunc": 0.0, "difficulty": 0.5} for d in world.domains}
    rng = np.random.default_rng(0)
    pool = pools.build(world.pool_samples(), clean, 700, world.families, rng, width=10.0)
    scores = {}
    for name, keep in (("math", {"math"}), ("free", {"quips"})):
        texts = pools.draw_training_set(pool, {d: float(d in keep) for d in world.domains}, 800, rng)
        model = copy.deepcopy(base)
        fit(model, texts, steps=300, batch_size=16, lr=3e-3, seed=0)
        scores[name] = benchmarks.evaluate(model, bench)
    assert scores["free"]["acc_math"] <= 35
    assert scores["math"]["acc_math"] >= scores["free"]["acc_math"] + 12, scores
    assert scores["math"]["margin_math"] > scores["free"]["margin_math"]


def test_difficulty_is_fixed_by_default_but_still_works():
    from causalmix.config import compose
    cfg = compose([])
    assert analysis.fixed_knobs(cfg.data.state) == ["difficulty"]
    state = pools.draw_state(["news", "math"], cfg.data.state, np.random.default_rng(0))
    assert {k["difficulty"] for k in state.values()} == {0.5}
    assert analysis.validity_ranges(cfg.data.state)["difficulty"] == [0.0, 1.0]   # the validity check opens it
    # set, the knob still chooses where in the range a pool's samples sit
    from causalmix.data.domains import Sample
    cands = [Sample("m", str(i), "p", "r", i / 999) for i in range(1000)]
    mean = {}
    for level in (0.1, 0.9):
        st = {"m": {"amount": 1.0, "noise": 0.0, "dup": 0.0, "trunc": 0.0, "difficulty": level}}
        p = pools.build({"m": cands}, st, 300, {"m": "text"}, np.random.default_rng(3), width=0.25)
        mean[level] = np.mean([s.difficulty for s in p["m"]])
    assert mean[0.1] < 0.35 < 0.65 < mean[0.9]
    # a knob that did not vary has no correlation row (instead of a row of NaN)
    import pandas as pd
    df = pd.DataFrame({"pool": range(8), "domain": "m", "knob_noise": np.linspace(0, 1, 8), "knob_difficulty": 0.5,
                       **{c: np.arange(8.0) for c in ("nl", "hes", "ws", "dup", "len", "share")}})
    assert list(analysis.validity_correlations(df).index) == ["noise"]
