"""Held-out checks of the fitted models on proxy runs they did not see."""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from causalmix.causal.baselines import RegMix
from causalmix.experiments.target import fit_effect_model


def heldout_check(cfg, runs: pd.DataFrame, domains: list[str], folds: int = 5) -> tuple[pd.DataFrame, pd.DataFrame]:
    """K-fold predictions of the outcome by the causal model and by RegMix (mixture only)."""
    y = cfg.estimator.outcome
    w_cols = [f"w_{d}" for d in domains]
    order = np.random.default_rng(cfg.seed).permutation(len(runs))
    parts = np.array_split(order, folds)
    rows = []
    for k, test in enumerate(parts):
        train = runs.iloc[np.setdiff1d(order, test)].reset_index(drop=True)
        held = runs.iloc[test].reset_index(drop=True)
        cm = fit_effect_model(cfg, train, domains)
        pred = cm.predict_outcome(held[cm.inputs], held[w_cols])
        reg = RegMix(seed=cfg.seed).fit(train[w_cols].set_axis(domains, axis=1), train[y].to_numpy())
        pred_r = reg.predict(held[w_cols].set_axis(domains, axis=1))
        for m, p in (("CausalMix (DML)", pred), ("RegMix (mixture only)", pred_r)):
            rows += [{"fold": k, "run_id": r, "model": m, "actual": a, "predicted": q}
                     for r, a, q in zip(held.run_id, held[y], p)]
    ho = pd.DataFrame(rows)
    scores = []
    for m, sub in ho.groupby("model", sort=False):
        err = sub.actual - sub.predicted
        scores.append({"model": m, "spearman": spearmanr(sub.actual, sub.predicted).statistic,
                       "r2": 1 - (err ** 2).sum() / ((sub.actual - sub.actual.mean()) ** 2).sum(),
                       "mae": err.abs().mean(), "runs": len(sub)})
    return ho, pd.DataFrame(scores)


def _draws(cfg, seeds, log):
    """(seed, config, runs, domains) for the configured seed, then each other seed in `seeds`: each draw's
    sweep, run or read back from its own store."""
    from omegaconf import OmegaConf
    from causalmix.experiments.sweep import run_sweep
    for s in [int(cfg.seed), *[int(x) for x in seeds if int(x) != int(cfg.seed)]]:
        c = OmegaConf.merge(cfg, {"seed": s})
        runs = run_sweep(c, log=log)
        yield s, c, runs, [k[2:] for k in runs.columns if k.startswith("w_")]


def other_draws(cfg, seeds, outcomes=("avg_dev", "avg_margin"), log=print) -> pd.DataFrame:
    """The instrument again for other master seeds (`power.base_seeds`): each draws another proxy base, other
    benchmark items, pools and mixtures, and runs (or reuses) its own sweep; per seed and outcome, the
    held-out Spearman of the causal model and of RegMix (heldout_check, 5 folds), beside the configured
    seed's. One draw says little about an instrument (issue: 0.46 against 0.68 from two draws)."""
    from omegaconf import OmegaConf
    rows = []
    for s, c, runs, domains in _draws(cfg, seeds, log):
        for y in outcomes:
            _, sc = heldout_check(OmegaConf.merge(c, {"estimator": {"outcome": y}}), runs, domains)
            sc = sc.set_index("model").spearman
            rows.append({"seed": s, "configured": s == int(cfg.seed), "outcome": y, "runs": len(runs),
                         "outcome mean": float(runs[y].mean()), "outcome SD": float(runs[y].std()),
                         "CausalMix": float(sc.iloc[0]), "RegMix": float(sc.iloc[1])})
    return pd.DataFrame(rows)


def draws_summary(draws: pd.DataFrame) -> pd.DataFrame:
    """Per outcome: mean and lowest held-out Spearman over the seeds, for each model."""
    g = draws.groupby("outcome", sort=False)
    return pd.DataFrame({"seeds": g.seed.nunique(), "CausalMix mean": g.CausalMix.mean(), "CausalMix lowest": g.CausalMix.min(),
                         "RegMix mean": g.RegMix.mean(), "RegMix lowest": g.RegMix.min()})


def runs_curve(cfg, seeds, sizes, reps: int, log=print) -> pd.DataFrame:
    """How the held-out ranking grows with the number of proxy runs: for each draw (the configured seed and
    `seeds`, as other_draws) and each n in `sizes` below its sweep's size, `reps` random subsets of n runs
    are checked as heldout_check does (5 folds, configured outcome); the whole sweep once. One row per
    (seed, runs, rep) with both models' Spearman. Fits only: every sweep is read from its store."""
    rows = []
    for s, c, runs, domains in _draws(cfg, seeds, log):
        plan = [(int(n), r) for n in sizes if int(n) < len(runs) for r in range(int(reps))] + [(len(runs), 0)]
        for n, r in plan:
            sub = runs if n == len(runs) else runs.sample(n=n, random_state=r).reset_index(drop=True)
            _, sc = heldout_check(c, sub, domains)
            sc = sc.set_index("model").spearman
            rows.append({"seed": s, "runs": n, "rep": r, "CausalMix": float(sc.iloc[0]), "RegMix": float(sc.iloc[1])})
    return pd.DataFrame(rows)


def curve_summary(curve: pd.DataFrame, goal: float = 0.85) -> tuple[pd.DataFrame, dict]:
    """Mean and SD of each model's Spearman per number of runs (over draws and subsets), and a log-linear
    trend of CausalMix's means over the last doubling (the sizes from half the largest up), rho = a + b log2(runs):
    its slope per doubling and the number of runs at which it would reach `goal` if it held (an extrapolation;
    None when the trend does not rise). The last doubling, not every size: the curve flattens as runs grow,
    so a fit that includes the steep start would promise too much."""
    g = curve.groupby("runs")
    table = pd.DataFrame({"checks": g.size(), "CausalMix mean": g.CausalMix.mean(), "CausalMix SD": g.CausalMix.std(),
                          "RegMix mean": g.RegMix.mean(), "RegMix SD": g.RegMix.std()})
    trend = {"per_doubling": float("nan"), "runs_for_goal": None, "goal": goal, "from_runs": None}
    if len(table) >= 2:
        top = table[table.index >= table.index.max() / 2]
        top = top if len(top) >= 2 else table
        b, a = np.polyfit(np.log2(top.index.to_numpy(float)), top["CausalMix mean"].to_numpy(), 1)
        trend["per_doubling"], trend["from_runs"] = float(b), int(top.index.min())
        if b > 1e-6:
            trend["runs_for_goal"] = float(2 ** ((goal - a) / b))
    return table, trend
