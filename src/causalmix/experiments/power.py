"""How much the instrument can see: the outcome's noise floor, what explains its variance, and the
smallest paired difference a table can detect.

- Noise floor: fixed (pool, mixture) pairs, each fine-tuned with several training seeds (the training
  draw from the pool and its order). The within-pair spread is what no model of (state, mixture) can
  explain; the finite benchmark adds its own binomial part, shown beside it.
- Variance decomposition over the sweep: out-of-fold R^2 of the outcome from the mixture alone, the
  latent state alone, and both; the noise floor's share of the total variance bounds what any
  predictor can reach.
- Minimum detectable paired difference (MDE): with n paired seeds whose differences have standard
  deviation s, the difference detectable with power 1-beta by a two-sided paired t-test at level alpha is
  (t_{1-alpha/2, n-1} + t_{1-beta, n-1}) * s / sqrt(n).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from causalmix.data import pool as pools
from causalmix.config import path
from causalmix.experiments.proxy import draw_mixture, finetune_and_score
from causalmix.experiments.store import RunStore
from causalmix.experiments.sweep import sweep_hash
from causalmix.experiments.world import World, rng_for


def floor_store(cfg) -> RunStore:
    """Noise-floor runs are proxy runs: keyed like the sweep (config and code), in their own folder."""
    return RunStore(path(cfg, "out") / "power", sweep_hash(cfg))


def noise_floor(world: World, base, n_pairs: int, n_seeds: int, store: RunStore | None = None) -> pd.DataFrame:
    """One row per (pair, seed): the pair fixes the pool state and the mixture, the seed the training draw.
    With a store, finished (pair, seed) runs are reused and new ones written as they finish."""
    cfg = world.cfg
    if store is not None:   # the store says what made it, as the sweep's does (same config and code key)
        from causalmix import lineage
        from causalmix.experiments.sweep import sweep_manifest
        lineage.write_manifest(store.dir / "manifest.json", sweep_manifest(cfg))
    rows = []
    for p in range(n_pairs):
        rng = rng_for(cfg, 6, p)
        state = pools.draw_state(world.domains, cfg.data.state, rng)
        pool = pools.build(world.pool_samples(), state, cfg.data.pool_size, world.families, rng,
                           width=cfg.data.state.difficulty_width)
        mixture = draw_mixture(cfg, world.domains, pools.composition(state), rng)
        for s in range(n_seeds):
            run_id = p * 1000 + s
            if store is not None and store.done(run_id):
                rows.append(store.read(run_id).iloc[0].to_dict())
                continue
            srng = rng_for(cfg, 7, p, s)
            texts = pools.draw_training_set(pool, mixture, cfg.proxy.samples, srng)
            r = finetune_and_score(world, base, texts, seed=int(srng.integers(2**31)), settings=cfg.proxy)
            row = {"run_id": run_id, "pair": p, "seed": s, **{f"w_{d}": w for d, w in mixture.items()}, **r}
            if store is not None:
                store.write(run_id, row)
            rows.append(row)
    return pd.DataFrame(rows)


def benchmark_sd(runs: pd.DataFrame, domains: list[str], items: dict[str, int]) -> float:
    """SD of AvgDev that a finite benchmark alone gives a model of these accuracies (binomial, in points)."""
    var = [(runs[f"acc_{d}"].mean() / 100) * (1 - runs[f"acc_{d}"].mean() / 100) / items[d] for d in domains]
    return float(100 * np.sqrt(np.sum(var)) / len(domains))


def floor_summary(floor: pd.DataFrame, outcomes=("avg_dev", "avg_margin")) -> pd.DataFrame:
    """Per outcome: pooled within-pair SD over training seeds (with its 95% CI), and the pairs' spread."""
    rows = []
    for y in outcomes:
        g = floor.groupby("pair")[y]
        dof = int((g.count() - 1).sum())
        within = float(np.sqrt((g.var(ddof=1) * (g.count() - 1)).sum() / dof))
        lo = within * np.sqrt(dof / stats.chi2.ppf(0.975, dof))
        hi = within * np.sqrt(dof / stats.chi2.ppf(0.025, dof))
        rows.append({"outcome": y, "pairs": g.ngroups, "seeds per pair": int(g.count().min()),
                     "seed SD": within, "seed SD lo": lo, "seed SD hi": hi,
                     "SD of pair means": float(g.mean().std(ddof=1))})
    return pd.DataFrame(rows)


def variance_explained(runs: pd.DataFrame, domains: list[str], outcome: str, noise_sd: float,
                       folds: int = 5, seed: int = 0) -> pd.DataFrame:
    """Out-of-fold R^2 of the outcome from the mixture, the latent state, and both (random forests),
    next to the ceiling 1 - noise variance / total variance."""
    from sklearn.ensemble import RandomForestRegressor
    from sklearn.model_selection import KFold, cross_val_predict
    w = [f"w_{d}" for d in domains]
    latent = [c for c in runs.columns if c.startswith("state_")]
    y = runs[outcome].to_numpy()
    total = float(np.var(y, ddof=1))
    rows = []
    for name, cols in (("mixture", w), ("latent state", latent), ("mixture + latent state", w + latent)):
        if not cols:
            continue
        rf = RandomForestRegressor(n_estimators=300, min_samples_leaf=3, random_state=seed, n_jobs=1)
        pred = cross_val_predict(rf, runs[cols].to_numpy(), y, cv=KFold(folds, shuffle=True, random_state=seed))
        rows.append({"explains": name, "oof R^2": 1 - float(np.mean((y - pred) ** 2)) / total})
    rows.append({"explains": "ceiling (1 - seed noise / total)", "oof R^2": 1 - noise_sd ** 2 / total})
    return pd.DataFrame(rows).assign(outcome=outcome, **{"total SD": np.sqrt(total)})


def mde(sd_diff: float, n: int, alpha: float = 0.05, power: float = 0.8) -> float:
    """Minimum detectable paired difference of a two-sided paired t-test with n pairs."""
    if n < 2 or not np.isfinite(sd_diff):
        return float("nan")
    return float((stats.t.ppf(1 - alpha / 2, n - 1) + stats.t.ppf(power, n - 1)) * sd_diff / np.sqrt(n))


def table_mde(target_runs: pd.DataFrame, value: str = "avg_dev", baseline: str = "equal",
              by: tuple[str, ...] = ("seed",)) -> float:
    """MDE of a main table: the SD of paired differences to the baseline, pooled over methods, and the
    number of pairs per method (`by` names the columns that pair runs, e.g. ("state", "seed"))."""
    wide = target_runs.pivot_table(index=list(by), columns="method", values=value)
    diffs = [(wide[m] - wide[baseline]).dropna() for m in wide.columns if m != baseline]
    if not diffs:
        return float("nan")
    sd = float(np.sqrt(np.mean([d.var(ddof=1) for d in diffs])))
    return mde(sd, int(min(len(d) for d in diffs)))
