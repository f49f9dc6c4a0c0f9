"""The power analysis: noise floor from repeated seeds, variance explained, minimum detectable difference."""
import re

import numpy as np
import pandas as pd
import pytest

from causalmix.experiments import power
from causalmix.experiments.world import base_model, build_world


def test_mde_matches_the_paired_t_test_it_promises():
    # simulate: a true difference of exactly the MDE is detected ~80% of the time at alpha 0.05
    from scipy import stats
    n, sd = 10, 1.5
    d = power.mde(sd, n)
    rng = np.random.default_rng(0)
    hits = [stats.ttest_1samp(rng.normal(d, sd, n), 0).pvalue < 0.05 for _ in range(4000)]
    assert 0.76 < np.mean(hits) < 0.84
    assert power.mde(sd, 4 * n) < d / 1.9            # ~1/sqrt(n)
    assert np.isnan(power.mde(sd, 1))


def test_table_mde_pools_paired_differences():
    rng = np.random.default_rng(1)
    rows = [{"state": st, "seed": s, "method": m, "avg_dev": 40 + st + s * 0.5 + rng.normal(0, 1)}
            for st in range(3) for s in range(5) for m in ("equal", "a", "b")]
    df = pd.DataFrame(rows)
    pooled = power.table_mde(df, by=("state", "seed"))
    one = power.table_mde(df[df.state == 0], by=("seed",))
    assert 0 < pooled < one   # 15 pairs detect smaller differences than 5
    # the shared per-seed offsets cancel in paired differences: MDE near (2.8 + ...) * sqrt(2) / sqrt(15)
    assert pooled < 2.5


def test_variance_explained_finds_the_driver():
    rng = np.random.default_rng(2)
    n = 200
    w = rng.dirichlet(np.ones(3), n)
    state = rng.uniform(size=n)
    y = 10 * w[:, 0] + rng.normal(0, 0.3, n)              # the mixture drives y; the state does not
    runs = pd.DataFrame(w, columns=["w_a", "w_b", "w_c"]).assign(state_noise_a=state, avg_dev=y)
    ve = power.variance_explained(runs, ["a", "b", "c"], "avg_dev", noise_sd=0.3).set_index("explains")
    assert ve.loc["mixture", "oof R^2"] > 0.8 and ve.loc["latent state", "oof R^2"] < 0.1
    assert ve.loc["ceiling (1 - seed noise / total)", "oof R^2"] > 0.9


def test_noise_floor_repeats_pairs_over_seeds(tiny_cfg):
    world = build_world(tiny_cfg)
    base = base_model(tiny_cfg, "proxy", log=lambda *_: None)
    fl = power.noise_floor(world, base, n_pairs=2, n_seeds=2)
    assert len(fl) == 4 and set(fl.pair) == {0, 1}
    w = [c for c in fl.columns if c.startswith("w_")]
    assert (fl.groupby("pair")[w].nunique() == 1).all().all()          # the mixture is fixed within a pair
    assert fl.groupby("pair")[w].first().drop_duplicates().shape[0] == 2  # and differs between pairs
    summ = power.floor_summary(fl)
    assert list(summ.outcome) == ["avg_dev", "avg_margin"] and (summ["seed SD"] >= 0).all()
    assert (summ["seed SD lo"] <= summ["seed SD"]).all() and (summ["seed SD"] <= summ["seed SD hi"]).all()
    sd = power.benchmark_sd(fl, world.domains, {d: len(b) for d, b in world.benches.items()})
    assert 0 < sd < 50


def test_retest_trains_the_sweeps_own_runs_again_and_is_stored(tiny_cfg):
    """The retest pairs each of the sweep's first runs with a second training on the same pool and mixture (a fresh
    training draw and seed), stores it and reuses it; a runs table of another config is refused in one line."""
    from causalmix.errors import ConfigError
    from causalmix.experiments.sweep import run_sweep
    runs = run_sweep(tiny_cfg, log=lambda *_: None)
    world, base = build_world(tiny_cfg), base_model(tiny_cfg, "proxy", log=lambda *_: None)
    store, said = power.retest_store(tiny_cfg), []
    again = power.retest(world, base, runs, 3, store=store, log=said.append)
    assert again.run_id.tolist() == [0, 1, 2] and said == ["retest: 3 of 3 sweep runs to train again, 0 reused"]
    w = [c for c in runs.columns if c.startswith("w_")]
    first = runs.set_index("run_id").loc[again.run_id]
    assert np.array_equal(first[w].to_numpy(), again[w].to_numpy())            # the same mixtures ...
    assert not np.array_equal(first.avg_margin.to_numpy(), again.avg_margin.to_numpy())   # ... trained anew
    mtimes = {f: f.stat().st_mtime_ns for f in store.dir.glob("run_*.csv")}
    said.clear()
    pd.testing.assert_frame_equal(power.retest(world, base, runs, 3, store=store, log=said.append), again)
    assert not said and {f: f.stat().st_mtime_ns for f in store.dir.glob("run_*.csv")} == mtimes   # reused
    summ = power.retest_summary(runs, again).set_index("outcome")
    assert list(summ.index) == ["avg_dev", "avg_margin"] and (summ.runs == 3).all()
    assert ((summ["seed SD lo"] <= summ["seed SD"]) & (summ["seed SD"] <= summ["seed SD hi"])).all()
    assert ((summ["ceiling rho"] >= 0) & (summ["ceiling rho"] <= 1)).all()
    with pytest.raises(ConfigError, match="power.retest=4: the sweep holds only 3 runs"):
        power.retest(world, base, runs, 4)
    other = runs.assign(w_news=runs.w_news + 0.01)
    with pytest.raises(ConfigError, match="retest: run 0's mixture redrawn differs from the sweep's record"):
        power.retest(world, base, other, 1)


def test_retest_summary_recovers_a_known_seed_noise():
    rng = np.random.default_rng(0)
    truth = rng.normal(40, 3.0, 400)
    runs = pd.DataFrame({"run_id": range(400), "avg_dev": truth + rng.normal(0, 1.0, 400)})
    again = pd.DataFrame({"run_id": range(400), "avg_dev": truth + rng.normal(0, 1.0, 400)})
    r = power.retest_summary(runs, again, outcomes=("avg_dev",)).iloc[0]
    assert r["seed SD lo"] < 1.0 < r["seed SD hi"] and abs(r["seed SD"] - 1.0) < 0.1
    assert abs(r.Pearson - 0.9) < 0.03          # var(truth) / (var(truth) + var(noise)) = 9 / 10
    flat = power.retest_summary(runs.assign(avg_dev=40.0), again, outcomes=("avg_dev",)).iloc[0]
    assert np.isnan(flat.Spearman) and np.isnan(flat.Pearson)   # a constant outcome has no rank to agree on
    assert abs(r["ceiling rho"] - np.sqrt(1 - 1 / 10)) < 0.03       # total variance 9 + 1


def test_pool_retest_draws_a_new_pool_at_the_runs_own_state_and_is_stored(tiny_cfg):
    """The fresh-pool retest keeps each run's latent state and mixture but draws its pool again: the measured
    covariates move, the state columns do not; it is stored and reused; a runs table whose states are not this
    config's is refused in one line."""
    from causalmix.errors import ConfigError
    from causalmix.experiments.sweep import run_sweep
    runs = run_sweep(tiny_cfg, log=lambda *_: None)
    world, base = build_world(tiny_cfg), base_model(tiny_cfg, "proxy", log=lambda *_: None)
    store, said = power.pool_retest_store(tiny_cfg), []
    assert store.dir != power.retest_store(tiny_cfg).dir
    fresh = power.pool_retest(world, base, runs, 3, store=store, log=said.append)
    assert fresh.run_id.tolist() == [0, 1, 2]
    assert said == ["pool retest: 3 of 3 sweep runs to train again on a fresh pool, 0 reused"]
    first = runs.set_index("run_id").loc[fresh.run_id]
    w = [c for c in runs.columns if c.startswith("w_")]
    state = [c for c in runs.columns if c.startswith("state_")]
    assert state and np.array_equal(first[w].to_numpy(), fresh[w].to_numpy())
    assert np.array_equal(first[state].to_numpy(), fresh[state].to_numpy())       # the same latent state ...
    pooled = ["pool_nl", "pool_hes"] + [c for c in runs.columns if c.startswith("nl_")]
    assert (first[pooled].to_numpy() != fresh[pooled].to_numpy()).any(axis=1).all()   # ... measured on another pool
    mtimes = {f: f.stat().st_mtime_ns for f in store.dir.glob("run_*.csv")}
    said.clear()
    pd.testing.assert_frame_equal(power.pool_retest(world, base, runs, 3, store=store, log=said.append), fresh)
    assert not said and {f: f.stat().st_mtime_ns for f in store.dir.glob("run_*.csv")} == mtimes   # reused
    with pytest.raises(ConfigError, match="power.pool_retest=4: the sweep holds only 3 runs"):
        power.pool_retest(world, base, runs, 4)
    other = runs.assign(state_noise_news=runs.state_noise_news + 0.01)
    with pytest.raises(ConfigError, match="pool retest: run 0's state redrawn differs from the sweep's record"):
        power.pool_retest(world, base, other, 1)


def test_pool_summary_separates_the_pool_draw_from_the_seed():
    """Simulated: outcome = state effect (SD 3) + pool draw (SD 1.2, shared by the sweep run and its same-pool
    retrain) + seed (SD 1). The summary recovers both SDs and the ceiling sqrt(1 - (1.2^2 + 1) / total)."""
    rng = np.random.default_rng(0)
    n = 4000
    f, pool = rng.normal(40, 3.0, n), rng.normal(0, 1.2, n)
    ids = {"run_id": range(n)}
    runs = pd.DataFrame({**ids, "avg_dev": f + pool + rng.normal(0, 1.0, n)})
    again = pd.DataFrame({**ids, "avg_dev": f + pool + rng.normal(0, 1.0, n)})
    fresh = pd.DataFrame({**ids, "avg_dev": f + rng.normal(0, 1.2, n) + rng.normal(0, 1.0, n)})
    r = power.pool_summary(runs, again, fresh, outcomes=("avg_dev",), n_boot=200).iloc[0]
    assert abs(r["seed SD"] - 1.0) < 0.05 and abs(r["pool SD"] - 1.2) < 0.08
    total = np.sqrt(9 + 1.44 + 1)
    assert abs(r["total SD"] - total) < 0.1
    assert abs(r["ceiling, state known"] - np.sqrt(1 - 2.44 / total ** 2)) < 0.02
    assert r["ceiling lo"] < r["ceiling, state known"] < r["ceiling hi"]
    assert r["Spearman lo"] < r["Spearman, fresh pool"] < r["Spearman hi"] < r["Spearman, same pool"]
    # without a same-pool retest: the same ceiling from the (sweep, fresh) pairs, seed and pool SDs unknown
    q = power.pool_summary(runs, None, fresh, outcomes=("avg_dev",), n_boot=200).iloc[0]
    assert abs(q["ceiling, state known"] - np.sqrt(1 - 2.44 / total ** 2)) < 0.02
    assert abs(q["fresh-pool SD"] - np.sqrt(2.44)) < 0.08
    assert np.isnan(q["seed SD"]) and np.isnan(q["pool SD"]) and np.isnan(q["Spearman, same pool"])


def test_power_config_is_checked_before_work():
    from causalmix.config import compose
    from causalmix.errors import ConfigError
    for bad, msg in (("power.seeds=1", "power.seeds=1: expected an integer >= 2"),
                     ("power.pairs=0", "power.pairs=0: expected a positive integer"),
                     ("power.retest=1", "power.retest=1: expected 0 (none) or an integer >= 2"),
                     ("power.retest=-4", "power.retest=-4: expected 0 (none) or an integer >= 2"),
                     ("power.pool_retest=1", "power.pool_retest=1: expected 0 (none) or an integer >= 2")):
        with pytest.raises(ConfigError, match=re.escape(msg)):
            compose([bad])


@pytest.mark.slow
def test_other_draws_run_their_own_sweeps_and_report_mean_and_lowest(tmp_path):
    """Two draws of the instrument on two cheap domains (a new seed parses its corpora again)."""
    from conftest import TINY
    from causalmix.config import compose
    two = ["~data.domains.news", "~data.domains.bible", "~data.domains.drama", "~data.domains.wiki", "~data.domains.code",
           "target.states=[drawn]", "target.oracle.state=null", "~target.catalog.noisy_text", "~target.catalog.repetitive",
           "~target.catalog.scarce_bible", "ablations.run=[]", "target.oracle.tilt=0.7", "baselines.grid.tilt=0.7"]
    from causalmix.experiments import validation
    from causalmix.experiments.sweep import store_for
    cfg = compose(TINY + two + [f"paths.out={tmp_path / 'out'}", "sweep.n_runs=14", "estimator.n_estimators=20",
                                "power.base_seeds=[3]", "power.curve.extend=16"])
    draws = validation.other_draws(cfg, cfg.power.base_seeds, outcomes=("avg_dev",), log=lambda *a: None)
    assert list(draws.seed) == [0, 3] and list(draws.configured) == [True, False] and set(draws.runs) == {14}
    assert draws[["CausalMix", "RegMix"]].abs().le(1).all().all()
    a, b = (store_for(compose(TINY + two + [f"paths.out={tmp_path / 'out'}", f"seed={s}", "sweep.n_runs=14"]))
            for s in (0, 3))
    assert a.dir != b.dir and len(list(b.dir.glob("run_*.csv"))) == 14       # each draw has its own stored sweep
    s = validation.draws_summary(draws).loc["avg_dev"]
    assert s["CausalMix lowest"] == draws.CausalMix.min() and s["CausalMix mean"] == pytest.approx(draws.CausalMix.mean())
    # the curve checks subsets of each draw and each whole sweep with `reps` fold assignments; the configured
    # draw's sweep is extended to power.curve.extend runs in its own store (the first 14 are the sweep's, kept)
    first = {f.name: f.read_bytes() for f in a.dir.glob("run_*.csv")}
    n_files = len(list(b.dir.glob("run_*.csv")))
    curve = validation.runs_curve(cfg, cfg.power.base_seeds, sizes=[13, 40], reps=2, log=lambda *a: None)
    assert len(list(b.dir.glob("run_*.csv"))) == n_files and len(list(a.dir.glob("run_*.csv"))) == 16
    assert all(a.dir.joinpath(n).read_bytes() == v for n, v in first.items())
    assert curve[["seed", "runs", "rep"]].values.tolist() == [[0, 13, 0], [0, 13, 1], [0, 14, 0], [0, 14, 1],
                                                            [0, 16, 0], [0, 16, 1],
                                                            [3, 13, 0], [3, 13, 1], [3, 14, 0], [3, 14, 1]]  # 40: skipped
    full = curve[(curve.runs == 14) & (curve.seed == 3)]     # the same two fold assignments as the draw's check
    assert full.CausalMix.mean() == pytest.approx(draws.set_index("seed").CausalMix.loc[3])
    assert validation.other_draws(cfg, [], outcomes=("avg_dev",), log=lambda *a: None).runs.tolist() == [14]
    table, trend = validation.curve_summary(curve)
    assert table.draws.to_dict() == {13: 2, 14: 2, 16: 1} and trend["seeds"] == [0] and trend["from_runs"] == 13


def test_heldout_check_repeats_fold_assignments_and_averages_them():
    from causalmix.experiments import validation
    from causalmix.config import compose
    rng = np.random.default_rng(0)
    doms = ["a", "b"]
    w = rng.dirichlet([1, 1], 40)
    runs = pd.DataFrame({"run_id": range(40), "w_a": w[:, 0], "w_b": w[:, 1], "pool_nl": rng.normal(size=40),
                         "pool_ws": rng.normal(size=40), "pool_hes": rng.normal(size=40)})
    runs["avg_dev"] = 30 + 10 * w[:, 0] + 2 * runs.pool_nl + rng.normal(size=40)
    cfg = compose(["scale=smoke", "estimator.training_set=[]", "estimator.n_estimators=20",
                   "estimator.covariates=[pool_nl,pool_ws,pool_hes]"])
    cfg.estimator.reference = "b"    # two made-up domains (compose checks the reference against data.domains)
    ho1, one = validation.heldout_check(cfg, runs, doms, folds=5)
    ho3, three = validation.heldout_check(cfg, runs, doms, folds=5, repeats=3)
    assert one.spearman_sd.isna().all() and (one.repeats == 1).all() and (three.repeats == 3).all()
    per = validation.repeat_scores(ho3)
    assert sorted(per.repeat.unique()) == [0, 1, 2] and ho3.groupby(["model", "repeat"]).run_id.nunique().eq(40).all()
    first = per[per.repeat == 0].set_index("model").spearman        # the first assignment is the single check's
    assert first.to_dict() == pytest.approx(one.set_index("model").spearman.to_dict())
    assert three.set_index("model").spearman.to_dict() == pytest.approx(per.groupby("model").spearman.mean().to_dict())
    assert (three.spearman_sd > 0).all()                          # other assignments score differently


def test_curve_summary_fits_the_trend_per_doubling():
    from causalmix.experiments import validation
    rho = {16: 0.10, 32: 0.50, 64: 0.60, 128: 0.70}   # the last doubling: +0.10 (0.85 at 128 * 2**1.5); 16 -> 32 is steep
    curve = pd.DataFrame([{"seed": s, "runs": n, "rep": 0, "CausalMix": r + d, "RegMix": 0.5}
                          for s, d in ((0, -0.01), (1, 0.01)) for n, r in rho.items()])
    table, trend = validation.curve_summary(curve, goal=0.85)
    assert table["CausalMix mean"].tolist() == pytest.approx(list(rho.values()))
    assert table.checks.tolist() == [2, 2, 2, 2] and table["CausalMix SD"].iloc[0] == pytest.approx(0.02 ** 0.5 * 0.1)
    assert trend["per_doubling"] == pytest.approx(0.10) and trend["runs_for_goal"] == pytest.approx(128 * 2 ** 1.5)
    assert trend["from_runs"] == 64
    flat = curve.assign(CausalMix=0.6)
    assert validation.curve_summary(flat)[1]["runs_for_goal"] is None      # a trend that does not rise reaches nothing
    # one draw extended to 256: the trend reads that draw alone (the others' level is another draw's)
    ext = pd.concat([curve, pd.DataFrame([{"seed": 0, "runs": 256, "rep": 0, "CausalMix": 0.76, "RegMix": 0.5}])])
    table, trend = validation.curve_summary(ext)
    assert table.draws.tolist() == [2, 2, 2, 2, 1] and trend["seeds"] == [0] and trend["from_runs"] == 128
    assert trend["per_doubling"] == pytest.approx(0.76 - 0.69)


def test_instrument_check_script_scores_a_configs_sweep_and_its_fresh_pool_ceiling(tmp_path):
    """scripts/instrument_check.py (the method page's lever checks): its held-out rho are chapter 3's check on
    the sweep it stored, its ceiling is pool_summary's on the fresh-pool retrains it stored (both stores reuse
    finished runs, as tested with them); too few runs for the folds stop it in one line before any work."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    from causalmix.config import compose
    from causalmix.experiments import validation
    from causalmix.experiments.sweep import store_for
    from conftest import TINY
    over = [o for o in TINY if not o.startswith("sweep.n_runs=")] + [
        "sweep.n_runs=13", "power.pool_retest=2", "power.heldout.repeats=1", f"paths.out={tmp_path / 'out'}"]
    script = Path(__file__).resolve().parents[1] / "scripts" / "instrument_check.py"
    p = subprocess.run([sys.executable, str(script), *over], capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    out = json.loads(p.stdout)
    assert out == json.loads((tmp_path / "out" / "instrument_check.json").read_text())
    cfg = compose(over)
    runs = store_for(cfg).load()
    assert out["runs"] == len(runs) == 13
    domains = list(cfg.data.domains)                             # World.domains, without parsing every corpus
    _, sc = validation.heldout_check(compose(over + ["estimator.outcome=avg_margin"]), runs, domains, repeats=1)
    assert out["outcomes"]["avg_margin"]["heldout"]["CausalMix (DML)"][0] == round(
        float(sc.set_index("model").loc["CausalMix (DML)", "spearman"]), 4)
    fresh = power.pool_retest_store(cfg).load()
    want = power.pool_summary(runs, None, fresh, seed=cfg.seed).set_index("outcome")
    assert out["outcomes"]["avg_dev"]["fresh_pool"]["ceiling"] == round(want.loc["avg_dev", "ceiling, state known"], 4)
    assert out["outcomes"]["avg_dev"]["fresh_pool"]["runs"] == 2
    bad = subprocess.run([sys.executable, str(script), *over, "sweep.n_runs=12"], capture_output=True, text=True)
    assert bad.returncode == 1 and bad.stderr.strip().splitlines() == [
        "sweep.n_runs=12: expected at least 13 for 5-fold checks (power.heldout.folds), and power.pool_retest=2 at most that"]
