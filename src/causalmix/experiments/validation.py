"""Held-out checks of the fitted models on proxy runs they did not see."""
from __future__ import annotations

import numpy as np
import pandas as pd
from omegaconf import OmegaConf
from scipy.stats import spearmanr

from causalmix.causal.baselines import RegMix
from causalmix.experiments.target import fit_effect_model


def heldout_check(cfg, runs: pd.DataFrame, domains: list[str], folds: int = 5,
                  repeats: int = 1) -> tuple[pd.DataFrame, pd.DataFrame]:
    """K-fold predictions of the outcome by the causal model and by RegMix (mixture only), repeated over
    `repeats` fold assignments (successive permutations of one generator seeded by cfg.seed, so the first is
    the same for any `repeats`). Each repeat scores the pooled predictions of its folds; the scores are the
    mean over repeats, with the Spearman's SD across them (NaN for one repeat): one fold assignment alone moves
    a 128-run check by 0.02 to 0.04. The predictions carry their `repeat`."""
    y = cfg.estimator.outcome
    w_cols = [f"w_{d}" for d in domains]
    rng = np.random.default_rng(cfg.seed)
    rows = []
    for rep in range(int(repeats)):
        order = rng.permutation(len(runs))
        for k, test in enumerate(np.array_split(order, folds)):
            train = runs.iloc[np.setdiff1d(order, test)].reset_index(drop=True)
            held = runs.iloc[test].reset_index(drop=True)
            cm = fit_effect_model(cfg, train, domains)
            pred = cm.predict_outcome(held[cm.inputs], held[w_cols])
            reg = RegMix(seed=cfg.seed).fit(train[w_cols].set_axis(domains, axis=1), train[y].to_numpy())
            pred_r = reg.predict(held[w_cols].set_axis(domains, axis=1))
            for m, p in (("CausalMix (DML)", pred), ("RegMix (mixture only)", pred_r)):
                rows += [{"repeat": rep, "fold": k, "run_id": r, "model": m, "actual": a, "predicted": q}
                         for r, a, q in zip(held.run_id, held[y], p)]
    ho = pd.DataFrame(rows)
    per = repeat_scores(ho)
    g = per.groupby("model", sort=False)
    scores = pd.DataFrame({"spearman": g.spearman.mean(), "spearman_sd": g.spearman.std(), "r2": g.r2.mean(),
                           "mae": g.mae.mean(), "runs": len(runs), "repeats": int(repeats)}).reset_index()
    return ho, scores


def repeat_scores(ho: pd.DataFrame) -> pd.DataFrame:
    """Per (model, repeat) of heldout_check's predictions: Spearman, R^2 and MAE over every held-out run."""
    out = []
    for (m, rep), sub in ho.groupby(["model", "repeat"], sort=False):
        err = sub.actual - sub.predicted
        out.append({"model": m, "repeat": rep, "spearman": spearmanr(sub.actual, sub.predicted).statistic,
                    "r2": 1 - (err ** 2).sum() / ((sub.actual - sub.actual.mean()) ** 2).sum(), "mae": err.abs().mean()})
    return pd.DataFrame(out)


def pool_draw_seen(cfg, runs: pd.DataFrame, fresh: pd.DataFrame, domains: list[str],
                   outcomes=("avg_dev", "avg_margin")) -> pd.DataFrame:
    """Do the measured covariates see a pool's own draw? The configured causal model, fitted on the runs of `runs`
    that `fresh` (power.pool_retest) does not hold, predicts each retrained run twice: from its sweep pool's
    covariates and from its fresh pool's (same state and mixture). If the covariates saw the part of the draw
    that moves the outcome, the difference of the two predictions would follow the difference of the outcomes
    (Pearson r and its p-value)."""
    from scipy.stats import pearsonr
    w_cols = [f"w_{d}" for d in domains]
    ids = sorted(int(i) for i in fresh.run_id)
    train = runs[~runs.run_id.isin(ids)].reset_index(drop=True)
    first, again = (df[df.run_id.isin(ids)].sort_values("run_id").reset_index(drop=True) for df in (runs, fresh))
    rows = []
    for y in outcomes:
        cm = fit_effect_model(OmegaConf.merge(cfg, {"estimator": {"outcome": y}}), train, domains)
        p1 = cm.predict_outcome(first[cm.inputs], first[w_cols])
        p2 = cm.predict_outcome(again[cm.inputs], again[w_cols])
        dp, dy = p1 - p2, first[y].to_numpy(float) - again[y].to_numpy(float)
        ok = np.ptp(dp) > 0 and np.ptp(dy) > 0
        r = pearsonr(dp, dy) if ok else None
        rows.append({"outcome": y, "fitted on": len(train), "pairs": len(ids),
                     "Spearman, sweep pool": spearmanr(p1, first[y]).statistic,
                     "Spearman, fresh pool": spearmanr(p2, again[y]).statistic,
                     "SD prediction difference": float(np.std(dp, ddof=1)), "SD outcome difference": float(np.std(dy, ddof=1)),
                     "r(differences)": float(r.statistic) if ok else float("nan"), "p": float(r.pvalue) if ok else float("nan")})
    return pd.DataFrame(rows)


def heldout_plan(cfg) -> tuple[int, int]:
    """(folds, repeats) of the book's held-out checks (power.heldout; 5 folds once when unset)."""
    return (int(OmegaConf.select(cfg, "power.heldout.folds", default=5)),
            int(OmegaConf.select(cfg, "power.heldout.repeats", default=1)))


def extended(cfg):
    """The configured draw's config for chapter 2's runs curve: sweep.n_runs raised to power.curve.extend when
    that is larger (the same store: a run does not depend on n_runs, so the sweep's runs are its first ones)."""
    n = int(OmegaConf.select(cfg, "power.curve.extend", default=0) or 0)
    return OmegaConf.merge(cfg, {"sweep": {"n_runs": n}}) if n > int(cfg.sweep.n_runs) else cfg


def _draws(cfg, seeds, log, extend=False):
    """(seed, config, runs, domains) for the configured seed, then each other seed in `seeds`: each draw's
    sweep, run or read back from its own store; with `extend`, the configured draw's extended sweep (extended)."""
    from causalmix.experiments.sweep import run_sweep
    for s in [int(cfg.seed), *[int(x) for x in seeds if int(x) != int(cfg.seed)]]:
        c = OmegaConf.merge(cfg, {"seed": s})
        c = extended(c) if extend and s == int(cfg.seed) else c
        runs = run_sweep(c, log=log)
        yield s, c, runs, [k[2:] for k in runs.columns if k.startswith("w_")]


def other_draws(cfg, seeds, outcomes=("avg_dev", "avg_margin"), log=print) -> pd.DataFrame:
    """The instrument again for other master seeds (`power.base_seeds`): each draws another proxy base, other
    benchmark items, pools and mixtures, and runs (or reuses) its own sweep; per seed and outcome, the
    held-out Spearman of the causal model and of RegMix (heldout_check, power.heldout folds and repeats), beside
    the configured seed's. One draw says little about an instrument (issue: 0.46 against 0.68 from two draws)."""
    rows = []
    for s, c, runs, domains in _draws(cfg, seeds, log):
        for y in outcomes:
            folds, repeats = heldout_plan(c)
            _, sc = heldout_check(OmegaConf.merge(c, {"estimator": {"outcome": y}}), runs, domains, folds, repeats)
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
    are checked as heldout_check does (5 folds, configured outcome, one fold assignment each); the whole sweep
    with `reps` fold assignments. The configured draw's sweep is extended to power.curve.extend runs when that
    is set (runs computed, or read from the store), and its subsets then include the sweep's own size. One row
    per (seed, runs, rep) with both models' Spearman."""
    rows = []
    for s, c, runs, domains in _draws(cfg, seeds, log, extend=True):
        subs = sorted({int(n) for n in sizes} | ({int(cfg.sweep.n_runs)} if len(runs) > int(cfg.sweep.n_runs) else set()))
        for n, r in [(n, r) for n in subs if n < len(runs) for r in range(int(reps))]:
            _, sc = heldout_check(c, runs.sample(n=n, random_state=r).reset_index(drop=True), domains)
            sc = sc.set_index("model").spearman
            rows.append({"seed": s, "runs": n, "rep": r, "CausalMix": float(sc.iloc[0]), "RegMix": float(sc.iloc[1])})
        ho, _ = heldout_check(c, runs, domains, repeats=int(reps))
        per = repeat_scores(ho).pivot(index="repeat", columns="model", values="spearman")
        rows += [{"seed": s, "runs": len(runs), "rep": int(r), "CausalMix": float(per.loc[r, "CausalMix (DML)"]),
                  "RegMix": float(per.loc[r, "RegMix (mixture only)"])} for r in per.index]
    return pd.DataFrame(rows)


def curve_summary(curve: pd.DataFrame, goal: float = 0.85) -> tuple[pd.DataFrame, dict]:
    """Mean and SD of each model's Spearman per number of runs (over draws, subsets and fold assignments), how
    many draws reach that size, and a log-linear trend of CausalMix's means over the last doubling, rho = a + b
    log2(runs): its slope per doubling and the number of runs at which it would reach `goal` if it held (an
    extrapolation; None when the trend does not rise), and those draws' means it was fitted on ({runs: rho}).
    The trend reads only the draws that reach the largest size (an extended draw's own curve, not other draws'
    level), and only the last doubling: the curve flattens as runs grow, so a fit that includes the steep start
    would promise too much."""
    g = curve.groupby("runs")
    table = pd.DataFrame({"draws": g.seed.nunique(), "checks": g.size(), "CausalMix mean": g.CausalMix.mean(),
                          "CausalMix SD": g.CausalMix.std(), "RegMix mean": g.RegMix.mean(), "RegMix SD": g.RegMix.std()})
    trend = {"per_doubling": float("nan"), "runs_for_goal": None, "goal": goal, "from_runs": None, "seeds": [],
             "means": {}}
    if len(table) >= 2:
        top_n = int(table.index.max())
        seeds = sorted(int(x) for x in curve[curve.runs == top_n].seed.unique())
        mine = curve[curve.seed.isin(seeds)].groupby("runs").CausalMix.mean()
        top = mine[mine.index >= top_n / 2]
        top = top if len(top) >= 2 else mine
        b, a = np.polyfit(np.log2(top.index.to_numpy(float)), top.to_numpy(), 1)
        trend.update(per_doubling=float(b), from_runs=int(top.index.min()), seeds=seeds,
                     means={int(n): float(v) for n, v in top.items()})
        if b > 1e-6:
            trend["runs_for_goal"] = float(2 ** ((goal - a) / b))
    return table, trend
