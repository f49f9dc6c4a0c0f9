"""Main results over several target states: pinned states, paired tables, regret, results.json."""
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from causalmix.experiments import mainresults as mr, results, target as tg
from causalmix.config import compose
from causalmix.experiments.world import build_world


def _fake_runs(effects: dict[str, float], states=("a", "b"), seeds=5, noise=0.3, seed=0):
    """Target runs where each method adds a known effect over Equal, and each (state, seed) a shared offset."""
    rng = np.random.default_rng(seed)
    rows = []
    for st in states:
        for s in range(seeds):
            shared = rng.normal(0, 3)                   # a seed's luck, shared by every method: pairs cancel it
            for m, e in effects.items():
                rows.append({"state": st, "seed": s, "method": m, "avg_dev": 40 + shared + e + rng.normal(0, noise)})
    return pd.DataFrame(rows)


def test_paired_comparison_sees_a_known_effect_and_says_so():
    res = _fake_runs({"equal": 0, "natural": 0, "regmix": -2, "causalmix_a": 2, "causalmix_s": 0})
    t = mr.comparison(res, ["equal", "natural", "regmix", "causalmix_a", "causalmix_s"]).set_index("method")
    assert t.loc["CausalMix-A", "vs Equal lo"] > 1 and t.loc["CausalMix-A", "vs Equal hi"] < 3
    assert t.loc["CausalMix-A", "pairs"] == 10
    text = mr.sentences(t.reset_index())
    assert text[0].startswith("CausalMix-A is better than Equal") and "better than RegMix" in text[0]
    assert "not distinguishable from Equal" in text[1]
    # the unpaired interval is wide (seed luck), the paired one narrow: pairing is what the table relies on
    assert (t.loc["CausalMix-A", "hi"] - t.loc["CausalMix-A", "lo"]) > 3 * (
        t.loc["CausalMix-A", "vs Equal hi"] - t.loc["CausalMix-A", "vs Equal lo"])
    assert mr.mde_pooled(res) < 1.0
    f = mr.formatted(t.reset_index())
    cell = f.set_index("method").loc["CausalMix-A", "vs Equal"]          # '+m [+lo, +hi]'
    assert abs(float(cell.split()[0]) - 2) < 0.5 and cell.count("[") == 1


def test_regret_is_measured_against_the_best_mixture_found():
    res = _fake_runs({"equal": 0, "causalmix_a": 1, "grid:math": 3, "grid:code": -1}, states=("x",), seeds=4)
    r = mr.regret(res, ["equal", "causalmix_a"]).set_index("method")
    assert r.attrs["best"] == "Grid: math"
    assert abs(r.loc["Equal", "regret"] - 3) < 0.5 and abs(r.loc["CausalMix-A", "regret"] - 2) < 0.5
    assert r.loc["Grid: math", "regret"] == 0


def test_oracle_grid_tilts_each_domain():
    cfg = compose(["target.oracle.tilt=0.4"])
    doms = list(cfg.data.domains)
    grid = tg.oracle_candidates(cfg, doms)
    assert len(grid) == len(doms) + 1
    for name, w in grid.items():
        assert abs(sum(w.values()) - 1) < 1e-12 and min(w.values()) > 0
    assert grid["grid:math"]["math"] == 0.4


def test_named_states_share_a_draw_and_pin_their_knobs(tiny_cfg):
    world = build_world(tiny_cfg)
    drawn, _ = tg.target_pool(world, "drawn")
    noisy, _ = tg.target_pool(world, "noisy_text")
    assert noisy["news"]["noise"] == 0.8 and noisy["wiki"]["noise"] == 0.8
    assert noisy["bible"] == drawn["bible"] and noisy["news"]["amount"] == drawn["news"]["amount"]
    scarce, _ = tg.target_pool(world, "scarce_bible")
    assert scarce["bible"]["amount"] == 0.25 and scarce["news"]["amount"] == 1.0


def test_choosing_states_seeds_or_methods_keeps_the_target_store():
    a = tg.target_store(compose([]))
    assert tg.target_store(compose(["target.states=[drawn]", "target.seeds=9", "target.methods=[equal]"])).dir == a.dir
    assert tg.target_store(compose(["target.lr=0.002"])).dir != a.dir


def test_results_json_merges_keys_and_writes_no_nan(tmp_path):
    cfg = compose([f"paths.out={tmp_path}"])
    results.update(cfg, heldout_spearman={"avg_dev": {"causalmix": 0.5, "regmix": float("nan")}})
    results.update(cfg, mde_pooled=np.float64(0.8))
    doc = json.loads((tmp_path / "results.json").read_text())
    assert doc["heldout_spearman"]["avg_dev"] == {"causalmix": 0.5, "regmix": None}
    assert doc["mde_pooled"] == 0.8 and doc["scale"] == "cpu" and "commit" in doc


def test_methods_proposing_one_mixture_share_its_runs(monkeypatch):
    import pandas as pd
    from causalmix.experiments import mainresults as mr
    asked = []

    def fake_run_targets(world, mixtures, pool, state, log=print):
        asked.append(list(mixtures))
        return pd.DataFrame([{"state": state, "seed": s, "method": m, "avg_dev": 40.0 + s + len(m)}
                             for m in mixtures for s in range(2)])
    monkeypatch.setattr(mr.tg, "run_targets", fake_run_targets)
    eq = {"a": 0.5, "b": 0.5}
    res = mr.run_shared(None, {"equal": eq, "regmix": {"a": 0.7, "b": 0.3}, "grid": dict(eq)}, {}, "drawn")
    assert asked == [["equal", "regmix"]]                      # Grid picked Equal's mixture: not trained again
    assert res[res.method == "grid"].avg_dev.tolist() == res[res.method == "equal"].avg_dev.tolist()
    assert sorted(res.method.unique()) == ["equal", "grid", "regmix"] and len(res) == 6


def test_a_target_states_covariates_are_measured_once_and_kept(tiny_cfg, monkeypatch):
    """What the methods see of a target pool is stored under the target store's key and read back from it:
    measured again on another CPU (bf16 rounds differently there) it would move the forest's estimates by a
    step, and CausalMix-A's mixture with them."""
    from causalmix.experiments import proxy
    world = build_world(tiny_cfg)
    calls = []

    def fake_measure(world, scorer, pool, rng, shift=0.0):
        calls.append(1)
        return {"nl_news": 1 / 3 + shift, "pool_size": 120.0 + shift, "hes_code": 2.4e-5 + shift}

    monkeypatch.setattr(proxy, "measure_pool", fake_measure)
    _, pool = tg.target_pool(world, "drawn")
    first = tg.measured_state(world, None, "drawn", pool)
    assert first == {"nl_news": 1 / 3, "pool_size": 120.0, "hes_code": 2.4e-5} and len(calls) == 1   # read back exactly
    monkeypatch.setattr(proxy, "measure_pool", lambda *a: fake_measure(*a, shift=2e-5))   # "another CPU"
    assert tg.measured_state(world, None, "drawn", pool) == first and len(calls) == 1
    other = tg.measured_state(world, None, "noisy_text", tg.target_pool(world, "noisy_text")[1])
    assert other["nl_news"] == 1 / 3 + 2e-5 and len(calls) == 2                          # each state its own record
    store = tg.state_store(tiny_cfg)
    assert store.dir.parent.parent == Path(tiny_cfg.paths.out) / "states" and len(list(store.dir.glob("run_*.csv"))) == 2
    default = tg.state_store(compose([])).dir
    assert tg.state_store(compose(["target.lr=0.002", "target.seeds=9"])).dir == default   # training: not measured
    assert tg.state_store(compose(["target.state_seed=1"])).dir != default                  # another pool draw
    assert tg.state_store(compose(["data.covariates.score_samples=64"])).dir != default      # another measurement


def test_a_target_state_without_its_pool_is_the_pools_state(tiny_cfg):
    """The dry run reads a state's natural mixture without building the world (target.target_state)."""
    world = build_world(tiny_cfg)
    for name in ("drawn", "noisy_text", "scarce_bible"):
        assert tg.target_state(tiny_cfg, name) == tg.target_pool(world, name)[0]
