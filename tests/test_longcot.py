"""The long chain-of-thought experiment's parts: the reasoning pool, greedy decoding and the pool's noise."""
import numpy as np
import pytest
import torch

from causalmix.config import compose
from causalmix.data import reasoning as rs
from causalmix.experiments import longcot as lc
from causalmix.lm.generate import decode, greedy
from causalmix.lm.model import GPT, GPTConfig, encode


def naive(model, prompt: str, n: int, stop: str = ".") -> str:
    """Greedy decoding the slow way: the whole text through the model for every new character."""
    ids = encode(prompt)
    out = ""
    for _ in range(n):
        with torch.no_grad():
            nxt = int(model(torch.tensor([ids]))[0, -1].argmax())
        ids.append(nxt)
        out += decode([nxt])
        if out.endswith(stop):
            break
    return out


def test_greedy_matches_recomputing_everything_with_prompts_of_mixed_lengths():
    torch.manual_seed(3)
    model = GPT(GPTConfig(n_layer=2, n_head=2, n_embd=32, context=48)).eval()
    prompts = ["chain: 3+4=", "x", "count: a in abcab=", "max: 31 87 12=", "a much longer prompt than the rest: "]
    got = greedy(model, prompts, 12, stop="\0")          # a stop that never comes: every step is compared
    assert got == [naive(model, p, 12, stop="\0") for p in prompts]
    assert [len(g) for g in got] == [12] * len(prompts)
    one = [greedy(model, [p], 12, stop="\0")[0] for p in prompts]   # alone, no padding: the same
    assert one == got


def test_greedy_stops_and_respects_the_context():
    torch.manual_seed(0)
    model = GPT(GPTConfig(n_layer=1, n_head=2, n_embd=16, context=16)).eval()
    out = greedy(model, ["0123456789abc"], 50, stop="\0")[0]
    assert len(out) == 16 - 13                            # never past the model's context


@pytest.mark.parametrize("task", rs.TASKS)
def test_solutions_check_and_a_reasoning_error_breaks_the_final_answer(task):
    spec = {"task": task, "n": 300, "max_terms": 4, "max_value": 9}
    samples = rs.samples(task, spec, seed=0)
    assert samples == rs.samples(task, spec, seed=0)      # generated, deterministic
    assert len({s.prompt for s in samples}) == len(samples)
    assert all(0.0 <= s.difficulty <= 1.0 for s in samples)
    tag, rng, wrong = f"{task}: ", np.random.default_rng(0), []
    for s in samples[:50]:
        assert rs.checks(s, task, tag)
        assert rs.answer(s.response) is not None and s.response.endswith(".")
        bad = rs.corrupt(s, task, tag, rng)
        assert bad.prompt == s.prompt and not rs.checks(bad, task, tag)
        wrong.append(rs.answer(bad.response) != rs.answer(s.response))
    # an error is carried to the end; only a running maximum can absorb it (a later, larger number)
    assert all(wrong) if task != "max" else np.mean(wrong) > 0.5
    lengths = {len(s.response) for s in samples}
    assert len(lengths) > 1 if task != "direct" else True   # worked solutions of varied length


def test_the_long_thought_writes_its_steps_and_direct_answers_at_once():
    p = [3, 8, 5]
    assert rs.solve("chain", p) == "3+8=11;11+5=16;#16."
    assert rs.solve("direct", p) == "#16."
    assert rs.solve("count", ["a", "a", "b", "a"]) == "a1;b1;a2;#2."
    assert rs.solve("max", [31, 87, 12]) == "31;87;87;#87."
    assert rs.answer("31;87;#87. trailing") == 87 and rs.answer("no answer") is None


def test_a_pools_noise_is_the_share_of_solutions_that_no_longer_check():
    cfg = lc.config(compose(["scale=smoke"]))
    world = lc.build_world(cfg)
    state = {d: {"amount": 1.0, "noise": 0.0, "dup": 0.0, "trunc": 0.0, "difficulty": 0.5} for d in world.domains}
    state["chain"]["noise"] = 0.6
    pool = lc.make_pool(world, state, 2000, np.random.default_rng(0))
    ok = {d: np.mean([rs.checks(s, *lc._spec(world, d)) for s in pool[d]]) for d in pool}
    assert ok["direct"] == ok["count"] == ok["max"] == 1.0
    assert 0.3 < ok["chain"] < 0.5                        # about 1 - 0.6
    assert cfg.model.target.n_layer != cfg.model.proxy.n_layer     # the target has another shape


def test_the_delta_reaches_only_this_experiment():
    base = compose(["scale=smoke"])
    cfg = lc.config(base)
    assert cfg.target.methods[-1] == "causalmix_s" and "grid" in cfg.target.methods
    assert str(cfg.paths.out).endswith("long_cot") and not str(base.paths.out).endswith("long_cot")
    assert "noisy_chain" in cfg.target.catalog and "noisy_chain" not in base.target.catalog
    assert base.model.target.n_layer != cfg.model.target.n_layer
