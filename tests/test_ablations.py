"""Ablations: variants state deltas, bad ones are one clear line, and the table pairs them with CausalMix-S."""
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest

from causalmix.config import compose
from causalmix.errors import ConfigError
from causalmix.experiments import ablations as ab


def test_every_configured_variant_is_valid_and_states_only_a_delta():
    cfg = compose([])
    names = ab.check(cfg)
    assert set(names) == set(cfg.ablations.run)
    v = ab.variant_cfg(cfg, cfg.ablations.variants.small_radius)
    assert v.policy.radius == 0.15 and v.estimator == cfg.estimator      # nothing else changed
    v = ab.variant_cfg(cfg, cfg.ablations.variants.linear_dml)
    assert v.estimator.name == "linear" and v.policy == cfg.policy
    # without covariates the model must not read the state through the training-set terms either
    assert list(cfg.estimator.training_set)
    v = ab.variant_cfg(cfg, cfg.ablations.variants.no_covariates)
    assert list(v.estimator.covariates) == ["const"] and list(v.estimator.training_set) == []


@pytest.mark.parametrize("overrides, message", [
    (["ablations.run=[nope]"], r"ablations.run has \['nope'\]: expected names from ablations.variants"),
    (["+ablations.variants.bad={model: {n_layer: 9}}", "ablations.run=[bad]"],
     r"ablations.variants.bad has \['model'\]: expected only \['dml', 'estimator', 'policy', 'runs', 'seeds'\]"),
    (["+ablations.variants.bad={seeds: 1}", "ablations.run=[bad]"],
     r"ablations.variants.bad.seeds=1: expected an integer >= 2 \(paired target seeds\)"),
    (["+ablations.variants.bad={dml: maybe}", "ablations.run=[bad]"], r"ablations.variants.bad.dml='maybe'"),
    (["+ablations.variants.bad={policy: {radius: 2.0}}", "ablations.run=[bad]"], r"radius"),
    (["target.methods=[equal,causalmix_a]"], r"ablations compare with causalmix_s, which target.methods"),
])
def test_a_bad_variant_is_one_line_before_any_fit(overrides, message):
    with pytest.raises(ConfigError, match=message):
        ab.check(compose(overrides))


def _res():
    rows = []
    for state in ("a", "b"):
        for seed in range(3):
            base = 40.0 + seed
            rows += [{"state": state, "seed": seed, "method": "causalmix_s", "avg_dev": base},
                     {"state": state, "seed": seed, "method": "ablation:worse", "avg_dev": base - 1.0 - 0.1 * seed},
                     {"state": state, "seed": seed, "method": "ablation:same", "avg_dev": base}]
    return pd.DataFrame(rows)


def test_table_pairs_each_variant_with_causalmix_s_by_state_and_seed():
    tab = ab.table(_res())
    pooled = tab[tab.state == "pooled"].set_index("method")
    assert pooled.loc["worse", "vs CausalMix-S"] == pytest.approx(-1.1)
    assert pooled.loc["worse", "pairs"] == 6
    assert pooled.loc["worse", "vs CausalMix-S hi"] < 0
    assert pooled.loc["same", "vs CausalMix-S"] == 0
    per_state = tab[(tab.state == "a") & (tab.method == "worse")].iloc[0]
    assert per_state.pairs == 3 and per_state["vs CausalMix-S"] == pytest.approx(-1.1)
    lines = ab.sentences(tab)
    assert any(line.startswith("**worse** does worse than CausalMix-S: -1.10") for line in lines)
    assert any(line.startswith("**same** proposes the same mixtures as CausalMix-S") for line in lines)
    assert np.isfinite(pooled.loc["worse", "avg_dev"])


def test_findings_say_where_knowing_the_state_could_pay():
    tab = ab.table(_res())
    dist = pd.DataFrame({"a": [0.0, 0.2], "b": [0.0, 0.0]}, index=["no_covariates", "worse"])
    lines = ab.findings(tab, dist)
    assert any("the pool's measured state never changed CausalMix's choice" in line for line in lines)
    assert any(line.startswith("Proposing CausalMix-S's own mixture in every state: no_covariates") for line in lines)
    dist.loc["no_covariates", "b"] = 0.1
    assert any("differs from CausalMix-S's in 1 of 2 states (b)" in line for line in ab.findings(tab, dist))


def test_runs_variants_are_fractions_that_leave_the_estimator_enough_runs():
    cfg = compose([])
    assert ab.n_runs(cfg, cfg.ablations.variants.quarter_runs.runs) == cfg.sweep.n_runs // 4
    with pytest.raises(ConfigError, match=r"ablations.variants.quarter_runs.runs=0.25 is 6 of the sweep's 24 runs; "
                                          r"expected at least 10"):
        ab.check(compose(["scale=smoke", "ablations.run=[quarter_runs]"]))
    with pytest.raises(ConfigError, match=r"runs=1.5: expected a fraction"):
        ab.check(compose(["+ablations.variants.bad={runs: 1.5}", "ablations.run=[bad]"]))


def test_count_curve_reads_the_runs_variants_and_the_oracle_regret():
    cfg = compose(["ablations.run=[half_runs]", "target.oracle.state=drawn"])
    res = _res().replace({"method": {"ablation:worse": "ablation:half_runs"}, "state": {"a": "drawn"}})
    tab = ab.table(res)
    oracle = pd.DataFrame([{"state": "drawn", "seed": s, "method": "grid:x", "avg_dev": 45.0 + s} for s in range(3)])
    curve = ab.count_curve(cfg, tab, res, oracle)
    assert list(curve.runs) == [cfg.sweep.n_runs // 2, cfg.sweep.n_runs]
    half = curve.iloc[0]
    assert half["vs all runs"] == pytest.approx(-1.1)
    assert half["regret"] == pytest.approx(5 + 1.1)           # grid 45+s against 40+s-1-0.1s
    assert curve.iloc[1]["regret"] == pytest.approx(5.0)
    line = ab.curve_sentences(curve)[0]
    assert "64 runs: -1.10" in line and "regret 6.10" in line
    # CausalMix-S's extra seeds (a variant's own `seeds`) have no oracle runs: the regret reads target.seeds only
    extra = pd.concat([res, pd.DataFrame([{"state": "drawn", "seed": 3, "method": "causalmix_s", "avg_dev": 99.0}])])
    again = ab.count_curve(cfg, ab.table(extra), extra, oracle)
    assert again["regret"].tolist() == pytest.approx(curve["regret"].tolist())


@dataclass
class _World:          # ablations.run reads world.cfg and hands the world on (replaced where seeds differ)
    cfg: object


def _fake_runs(asked):
    def fake_run_targets(world, mixtures, pool, name, log=print):
        asked.append((set(mixtures), int(world.cfg.target.seeds)))
        return pd.DataFrame([{"state": name, "seed": s, "method": m, "avg_dev": 40.0 + s + (m != "causalmix_s")}
                             for m in mixtures for s in range(world.cfg.target.seeds)])
    return fake_run_targets


def test_a_variant_with_causalmix_s_mixture_uses_its_runs_instead_of_training_them_again(monkeypatch):
    from types import SimpleNamespace
    base = {"a": 0.5, "b": 0.5}
    state = SimpleNamespace(name="drawn", mixtures={"causalmix_s": base}, pool={})
    asked = []
    monkeypatch.setattr(ab.tg, "run_targets", _fake_runs(asked))
    cfg = compose(["target.seeds=2", "+ablations.variants.same={policy: {radius: 0.2}}",
                   "+ablations.variants.other={policy: {radius: 0.1}}"])
    res = ab.run(_World(cfg), [state], {"drawn": {"ablation:same": dict(base), "ablation:other": {"a": 0.6, "b": 0.4}}})
    assert asked == [({"causalmix_s", "ablation:other"}, 2)]
    same = res[res.method == "ablation:same"].avg_dev.tolist()
    assert same == res[res.method == "causalmix_s"].avg_dev.tolist() == [40.0, 41.0]


def test_a_variant_with_its_own_seeds_pairs_with_causalmix_s_over_them(monkeypatch):
    from types import SimpleNamespace
    state = SimpleNamespace(name="drawn", mixtures={"causalmix_s": {"a": 0.5, "b": 0.5}}, pool={})
    asked = []
    monkeypatch.setattr(ab.tg, "run_targets", _fake_runs(asked))
    cfg = compose(["target.seeds=2", "ablations.variants.no_covariates.seeds=5", "ablations.run=[no_covariates,no_dml]"])
    assert ab.seeds_of(cfg, "ablation:no_covariates") == 5 and ab.seeds_of(cfg, "ablation:no_dml") == 2
    res = ab.run(_World(cfg), [state], {"drawn": {"ablation:no_covariates": {"a": 0.7, "b": 0.3},
                                                  "ablation:no_dml": {"a": 0.6, "b": 0.4}}})
    # the shared seeds are asked once more for CausalMix-S (the store reuses them); each row appears once
    assert asked == [({"causalmix_s", "ablation:no_dml"}, 2), ({"causalmix_s", "ablation:no_covariates"}, 5)]
    assert not res.duplicated(["state", "method", "seed"]).any()
    assert res.groupby("method").seed.nunique().to_dict() == {"causalmix_s": 5, "ablation:no_covariates": 5,
                                                              "ablation:no_dml": 2}
    pooled = ab.table(res).set_index("method")
    assert pooled.loc["no_covariates", "pairs"].max() == 5 and pooled.loc["no_dml", "pairs"].max() == 2
