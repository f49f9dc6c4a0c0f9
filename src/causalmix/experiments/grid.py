"""Grid baseline: a grid over the simplex, each point evaluated by real proxy runs on the target pool.

What a practitioner without a model does: try a few mixtures on the data at hand with small models and keep
the best. For each target state, every grid point (`baselines.grid`: Equal, and each domain at `tilt` with
the rest shared equally) trains `seeds` proxies (the proxy base and settings) on `proxy.samples` samples
drawn from that state's target pool in the point's mixture, scored on the proxy benchmarks. The point with
the best mean outcome is Grid's mixture for the state. It sees the state only through these trials: it
spends K+1 points x seeds proxy runs per state, where CausalMix spends none beyond its sweep.

Grid proxy runs are stored like target runs (`outputs/<scale>/grid/runs/<key>`, keyed by `grid_manifest`: the
sweep's config, the target settings and model, and the code of a proxy run, a target pool and the grid's
trials), one file per (state, point, seed), and reused."""
from __future__ import annotations

import numpy as np
import pandas as pd
from omegaconf import DictConfig

from causalmix import lineage
from causalmix.config import config_hash, path
from causalmix.data import pool as pools
from causalmix.experiments import target as tg
from causalmix.experiments.proxy import finetune_and_score_many
from causalmix.experiments.store import RunStore
from causalmix.experiments.world import World, rng_for


def points(cfg: DictConfig, domains: list[str]) -> dict[str, dict]:
    """The grid: Equal, and each domain at `baselines.grid.tilt` with the rest shared equally."""
    return tg.tilted_grid(domains, float(cfg.baselines.grid.tilt))


def grid_manifest(cfg: DictConfig) -> dict:
    """What makes a grid trial: the target runs' config (the sweep's, the target settings and model) and the code
    of a proxy run, a target pool, the grid and its trials (lineage: "grid")."""
    return lineage.manifest(tg.target_manifest(cfg)["config"], "grid")


def grid_store(cfg: DictConfig) -> RunStore:
    """Keyed by grid_manifest: an edit to the grid or to how its trials run retires them."""
    return RunStore(path(cfg, "out") / "grid", lineage.store_key(grid_manifest(cfg)))


def trials(world: World, base, state: str, pool: dict, log=print) -> pd.DataFrame:
    """Every grid point x seed as a proxy run on the state's target pool; finished runs are reused."""
    cfg = world.cfg
    store, pins = grid_store(cfg), tg.state_pins(cfg, state)
    todo, rows = [], {}
    for name, mix in points(cfg, world.domains).items():
        for s in range(int(cfg.baselines.grid.seeds)):
            rid = int(config_hash({"state": pins, "point": name, "s": s,
                                   "w": {d: round(w, 6) for d, w in mix.items()}}), 16) % 10**9
            if store.done(rid):
                rows[rid] = store.read(rid).iloc[0].to_dict()
            else:
                todo.append((rid, name, s, mix))
    if todo:
        lineage.write_manifest(store.dir / "manifest.json", grid_manifest(cfg))
        log(f"grid ({state}): {len(todo)} proxy runs to go, {len(rows)} reused")
        texts, seeds = [], []
        for rid, name, s, mix in todo:
            rng = rng_for(cfg, 8, s)
            texts.append(pools.draw_training_set(pool, mix, cfg.proxy.samples, rng))
            seeds.append(int(rng.integers(2**31)))
        batch = int(cfg.sweep.batch)
        for i in range(0, len(todo), batch):
            part = todo[i:i + batch]
            scores = finetune_and_score_many(world, base, texts[i:i + batch], seeds[i:i + batch], cfg.proxy)
            for (rid, name, s, mix), sc in zip(part, scores):
                row = {"run_id": rid, "state": state, "point": name, "seed": s,
                       **{f"w_{d}": w for d, w in mix.items()}, **sc}
                store.write(rid, row)
                rows[rid] = store.read(rid).iloc[0].to_dict()
    return pd.DataFrame(list(rows.values()))


def pick(cfg: DictConfig, runs: pd.DataFrame) -> tuple[str, dict]:
    """The grid point with the best mean outcome over its seeds (ties: the first in grid order)."""
    y = cfg.estimator.outcome
    means = runs.groupby("point", sort=False)[y].mean()
    order = [p for p in points(cfg, [c[2:] for c in runs.columns if c.startswith("w_")]) if p in means.index]
    best = max(order, key=lambda p: (means[p], -order.index(p)))
    row = runs[runs.point == best].iloc[0]
    return best, {c[2:]: float(row[c]) for c in runs.columns if c.startswith("w_")}


def summary(trials_by_state: dict[str, pd.DataFrame], cfg: DictConfig) -> pd.DataFrame:
    """Per state and grid point: the proxies' mean outcome and its spread over seeds, and which point won."""
    y, rows = cfg.estimator.outcome, []
    for state, df in trials_by_state.items():
        best, _ = pick(cfg, df)
        for p, g in df.groupby("point", sort=False):
            rows.append({"state": state, "point": p, y: float(g[y].mean()),
                         "sd": float(g[y].std(ddof=1)) if len(g) > 1 else np.nan, "seeds": len(g), "picked": p == best})
    return pd.DataFrame(rows)


def rank_transfer(cfg: DictConfig, trials: pd.DataFrame, target_runs: pd.DataFrame) -> pd.DataFrame:
    """Do mixtures that rank high on proxies also rank high on targets? On one state: each grid point's mean
    outcome over its proxy trials (Grid's, on that state's pool) and over the target runs of the same mixture
    (the oracle's grid; matched by mixture, not name). `attrs` holds Spearman's rho over the points that have
    both, its two-sided p-value, and whether the proxies' best point is the targets' best."""
    from scipy.stats import spearmanr
    y = cfg.estimator.outcome
    w_cols = [c for c in trials.columns if c.startswith("w_")]
    rows = []
    for name, g in trials.groupby("point", sort=False):
        mix = g[w_cols].iloc[0].to_numpy(float)
        same = np.abs(target_runs[w_cols].to_numpy(float) - mix).max(axis=1) < 1e-6
        t = target_runs[same].drop_duplicates("seed")
        rows.append({"point": name, "proxy": float(g[y].mean()), "proxy runs": len(g),
                     "target": float(t[y].mean()) if len(t) else np.nan, "target runs": len(t)})
    out = pd.DataFrame(rows)
    both = out.dropna(subset=["target"])
    if len(both) >= 3:
        r = spearmanr(both.proxy, both.target)
        out.attrs.update(rho=float(r.statistic), p=float(r.pvalue), points=len(both),
                         same_best=bool(both.loc[both.proxy.idxmax(), "point"] == both.loc[both.target.idxmax(), "point"]))
    return out
