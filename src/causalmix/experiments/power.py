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

from causalmix import lineage
from causalmix.data import pool as pools
from causalmix.errors import ConfigError
from causalmix.config import path
from causalmix.experiments.proxy import draw_mixture, finetune_and_score
from causalmix.experiments.store import RunStore
from causalmix.experiments.sweep import sweep_spec
from causalmix.experiments.world import World, rng_for


def floor_manifest(cfg) -> dict:
    """What makes a noise-floor run: the sweep's config (a pair is drawn as a proxy run's pool and mixture are)
    and the code of a proxy run plus noise_floor's own (lineage: "floor")."""
    return lineage.manifest(sweep_spec(cfg), "floor")


def floor_store(cfg) -> RunStore:
    """Noise-floor runs, in their own folder, keyed by floor_manifest: an edit to noise_floor retires them."""
    return RunStore(path(cfg, "out") / "power", lineage.store_key(floor_manifest(cfg)))


def noise_floor(world: World, base, n_pairs: int, n_seeds: int, store: RunStore | None = None) -> pd.DataFrame:
    """One row per (pair, seed): the pair fixes the pool state and the mixture, the seed the training draw.
    With a store, finished (pair, seed) runs are reused and new ones written as they finish."""
    cfg = world.cfg
    if store is not None:   # the store says what made it (floor_store's key)
        lineage.write_manifest(store.dir / "manifest.json", floor_manifest(cfg))
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


def retest_manifest(cfg) -> dict:
    """What makes a retest run: the sweep's config and the code of a proxy run plus retest's own ("retest")."""
    return lineage.manifest(sweep_spec(cfg), "retest")


def retest_store(cfg) -> RunStore:
    return RunStore(path(cfg, "out") / "retest", lineage.store_key(retest_manifest(cfg)))


def retest(world: World, base, runs: pd.DataFrame, n: int, store: RunStore | None = None, log=print) -> pd.DataFrame:
    """The sweep's first `n` runs trained again: run i's pool and mixture, drawn as its proxy run drew them
    (experiments/proxy.py `_prepare`), then a fresh training-set draw from that pool and a fresh seed, in
    blocks of sweep.batch stacked proxies. One row per run id, paired with `runs` (the sweep's records) by
    run_id: the test-retest of the outcome at the design's own points, where the noise floor's pairs are a few
    points of their own. A run whose redrawn mixture is not the sweep's raises (the pairing would be wrong)."""
    from causalmix.experiments.proxy import finetune_and_score_many
    cfg = world.cfg
    ids = sorted(int(i) for i in runs.run_id)[:int(n)]
    if len(ids) < int(n):
        raise ConfigError(f"power.retest={n}: the sweep holds only {len(ids)} runs to retrain")
    rows, todo = {}, []
    if store is not None:
        lineage.write_manifest(store.dir / "manifest.json", retest_manifest(cfg))
    for i in ids:
        if store is not None and store.done(i):
            rows[i] = store.read(i).iloc[0].to_dict()
        else:
            todo.append(i)
    if todo:
        log(f"retest: {len(todo)} of {len(ids)} sweep runs to train again, {len(ids) - len(todo)} reused")
    by_id = runs.set_index("run_id")
    batch = int(cfg.sweep.batch)
    for b in range(0, len(todo), batch):
        part, texts, seeds, heads = todo[b:b + batch], [], [], []
        for i in part:
            rng = rng_for(cfg, 1, cfg.sweep.seed_offset + i)        # as proxy._prepare draws run i
            state = pools.draw_state(world.domains, cfg.data.state, rng)
            pool = pools.build(world.pool_samples(), state, cfg.data.pool_size, world.families, rng,
                               width=cfg.data.state.difficulty_width)
            mixture = draw_mixture(cfg, world.domains, pools.composition(state), rng)
            sweep_w = [float(by_id.loc[i, f"w_{d}"]) for d in world.domains]
            if not np.allclose([mixture[d] for d in world.domains], sweep_w, rtol=0, atol=1e-12):
                raise ConfigError(f"retest: run {i}'s mixture redrawn differs from the sweep's record: the runs "
                                  "table is not this config's sweep")
            srng = rng_for(cfg, 9, i)                                # the fresh training draw and seed
            texts.append(pools.draw_training_set(pool, mixture, cfg.proxy.samples, srng))
            seeds.append(int(srng.integers(2**31)))
            heads.append({"run_id": i, **{f"w_{d}": w for d, w in mixture.items()}})
        for h, sc in zip(heads, finetune_and_score_many(world, base, texts, seeds, cfg.proxy)):
            if store is not None:
                store.write(h["run_id"], {**h, **sc})
                rows[h["run_id"]] = store.read(h["run_id"]).iloc[0].to_dict()
            else:
                rows[h["run_id"]] = {**h, **sc}
    return pd.DataFrame([rows[i] for i in ids])


def pool_retest_manifest(cfg) -> dict:
    """What makes a fresh-pool retest run: the sweep's config and the code of a proxy run plus its own."""
    return lineage.manifest(sweep_spec(cfg), "pool_retest")


def pool_retest_store(cfg) -> RunStore:
    return RunStore(path(cfg, "out") / "pool_retest", lineage.store_key(pool_retest_manifest(cfg)))


def pool_retest(world: World, base, runs: pd.DataFrame, n: int, store: RunStore | None = None,
                log=print) -> pd.DataFrame:
    """The sweep's first `n` runs trained again at the same latent state and mixture, on a pool drawn afresh at
    that state (other samples, corruptions, copies and realised composition), its covariates measured as the
    sweep measures them, then a fresh training-set draw and seed; in blocks of sweep.batch stacked proxies.
    The retest keeps each run's pool and so says what the seed moves; this says what the pool's own draw moves
    on top, which no model of the state and the mixture can see. The state is redrawn as the run drew it
    (experiments/proxy.py `_prepare`) and must match the sweep's record; the mixture is the record's."""
    from causalmix.experiments.proxy import finetune_and_score_many, measure_pool
    cfg = world.cfg
    ids = sorted(int(i) for i in runs.run_id)[:int(n)]
    if len(ids) < int(n):
        raise ConfigError(f"power.pool_retest={n}: the sweep holds only {len(ids)} runs to retrain")
    rows, todo = {}, []
    if store is not None:
        lineage.write_manifest(store.dir / "manifest.json", pool_retest_manifest(cfg))
    for i in ids:
        if store is not None and store.done(i):
            rows[i] = store.read(i).iloc[0].to_dict()
        else:
            todo.append(i)
    if todo:
        log(f"pool retest: {len(todo)} of {len(ids)} sweep runs to train again on a fresh pool, "
            f"{len(ids) - len(todo)} reused")
    by_id = runs.set_index("run_id")
    batch = int(cfg.sweep.batch)
    for b in range(0, len(todo), batch):
        part, texts, seeds, heads = todo[b:b + batch], [], [], []
        for i in part:
            state = pools.draw_state(world.domains, cfg.data.state, rng_for(cfg, 1, cfg.sweep.seed_offset + i))
            flat = pools.flat_state(state)
            if not np.allclose([flat[k] for k in flat], [float(by_id.loc[i, k]) for k in flat], rtol=0, atol=1e-12):
                raise ConfigError(f"pool retest: run {i}'s state redrawn differs from the sweep's record: the runs "
                                  "table is not this config's sweep")
            mixture = {d: float(by_id.loc[i, f"w_{d}"]) for d in world.domains}
            prng = rng_for(cfg, 23, i)                                  # the fresh pool, its draw and seed
            pool = pools.build(world.pool_samples(), state, cfg.data.pool_size, world.families, prng,
                               width=cfg.data.state.difficulty_width)
            covs = measure_pool(world, base, pool, prng)
            texts.append(pools.draw_training_set(pool, mixture, cfg.proxy.samples, prng))
            seeds.append(int(prng.integers(2**31)))
            heads.append({"run_id": i, **{f"w_{d}": w for d, w in mixture.items()}, **flat, **covs})
        for h, sc in zip(heads, finetune_and_score_many(world, base, texts, seeds, cfg.proxy)):
            if store is not None:
                store.write(h["run_id"], {**h, **sc})
                rows[h["run_id"]] = store.read(h["run_id"]).iloc[0].to_dict()
            else:
                rows[h["run_id"]] = {**h, **sc}
    return pd.DataFrame([rows[i] for i in ids])


def retest_summary(runs: pd.DataFrame, again: pd.DataFrame, outcomes=("avg_dev", "avg_margin")) -> pd.DataFrame:
    """Per outcome, over the retrained runs: the seed SD (SD of the paired differences / sqrt 2, chi-square
    95% CI), how well the two trainings agree (Pearson, Spearman), the sweep's total SD, and the ceiling
    sqrt(1 - seed SD^2 / total SD^2) that this noise puts on any predictor's correlation with held-out runs."""
    both = runs.set_index("run_id").loc[again.run_id]
    rows = []
    for y in outcomes:
        a, b = both[y].to_numpy(float), again[y].to_numpy(float)
        n = len(a)
        sd = float(np.std(b - a, ddof=1) / np.sqrt(2))
        lo, hi = (sd * np.sqrt((n - 1) / stats.chi2.ppf(q, n - 1)) for q in (0.975, 0.025))
        total = float(runs[y].std(ddof=1))
        rows.append({"outcome": y, "runs": n, "seed SD": sd, "seed SD lo": lo, "seed SD hi": hi,
                     "Pearson": _corr(stats.pearsonr, a, b), "Spearman": _corr(stats.spearmanr, a, b),
                     "total SD": total, "ceiling rho": float(np.sqrt(max(0.0, 1 - sd ** 2 / total ** 2))) if total > 0 else float("nan")})
    return pd.DataFrame(rows)


def pool_summary(runs: pd.DataFrame, again: pd.DataFrame | None, fresh: pd.DataFrame,
                 outcomes=("avg_dev", "avg_margin"), n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Per outcome, over the runs both retests hold: how far the pool's own draw moves the outcome on top of the
    seed. `again` is the same-pool retest, `fresh` the fresh-pool one (pool_retest), each paired with the
    sweep's `runs` by run_id. A fresh-pool pair differs by the seed and the pool draw; its SD is pooled from
    (sweep, fresh) and (same-pool retrain, fresh), each difference's SD over sqrt 2. The pool SD is what it adds
    to the seed SD (sqrt of the difference of variances, 0 if negative), and sqrt(1 - fresh SD^2 / total SD^2)
    is the ceiling on the held-out correlation of a model that knew each run's latent state and mixture but not
    its pool's draw. Spearman of the sweep with the fresh-pool runs has a Fisher-z 95% CI; the ceiling a
    percentile bootstrap over the pairs. Without a same-pool retest (`again` None: a quick instrument check,
    scripts/instrument_check.py) the fresh-pool SD comes from the (sweep, fresh) pairs alone, and the seed and
    pool SDs it cannot separate are NaN."""
    ids = sorted(set(fresh.run_id) if again is None else set(again.run_id) & set(fresh.run_id))
    first = runs.set_index("run_id").loc[ids]
    f_ = fresh.set_index("run_id").loc[ids]
    a_ = None if again is None else again.set_index("run_id").loc[ids]
    rng = np.random.default_rng(seed)
    boot = [rng.integers(0, len(ids), len(ids)) for _ in range(n_boot)]
    rows = []
    for y in outcomes:
        a, f = first[y].to_numpy(float), f_[y].to_numpy(float)
        r = None if a_ is None else a_[y].to_numpy(float)
        n, total = len(ids), float(runs[y].std(ddof=1))

        def parts(ix):
            if r is None:
                seed_var, fresh_var = float("nan"), np.var(a[ix] - f[ix], ddof=1) / 2
            else:
                seed_var = np.var(a[ix] - r[ix], ddof=1) / 2
                fresh_var = (np.var(a[ix] - f[ix], ddof=1) + np.var(r[ix] - f[ix], ddof=1)) / 4
            ceiling = np.sqrt(max(0.0, 1 - fresh_var / total ** 2)) if total > 0 else float("nan")
            return seed_var, fresh_var, ceiling

        seed_var, fresh_var, ceiling = parts(np.arange(n))
        cb = [parts(ix)[2] for ix in boot]
        rho = _corr(stats.spearmanr, a, f)
        z, h = np.arctanh(np.clip(rho, -0.999999, 0.999999)), 1.96 / np.sqrt(max(n - 3, 1))
        rows.append({"outcome": y, "runs": n,
                     "Spearman, same pool": float("nan") if r is None else _corr(stats.spearmanr, a, r),
                     "Spearman, fresh pool": rho, "Spearman lo": float(np.tanh(z - h)), "Spearman hi": float(np.tanh(z + h)),
                     "seed SD": float(np.sqrt(seed_var)), "fresh-pool SD": float(np.sqrt(fresh_var)),
                     "pool SD": float("nan") if r is None else float(np.sqrt(max(fresh_var - seed_var, 0.0))),
                     "total SD": total,
                     "ceiling, state known": float(ceiling),
                     "ceiling lo": float(np.nanpercentile(cb, 2.5)), "ceiling hi": float(np.nanpercentile(cb, 97.5))})
    return pd.DataFrame(rows)


def _corr(f, a, b) -> float:
    """f(a, b)'s coefficient; NaN, without scipy's warning, where either side is constant (a tiny test model)."""
    return float(f(a, b)[0]) if np.ptp(a) > 0 and np.ptp(b) > 0 else float("nan")


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
