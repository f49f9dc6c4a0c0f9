"""Checks the data notebook shows before any causal machinery is built on the data:
do the measured covariates track the pool's latent state, and does each state knob move its own
domain's benchmark after fine-tuning?"""
from __future__ import annotations

import numpy as np
import pandas as pd
from omegaconf import DictConfig, OmegaConf

from causalmix import lineage
from causalmix.config import config_hash, path
from causalmix.data import pool as pools
from causalmix.experiments.proxy import finetune_and_score, measure_pool
from causalmix.experiments.store import RunStore
from causalmix.experiments.sweep import sweep_spec
from causalmix.experiments.world import World, rng_for

# which measured covariate should answer to which latent knob (sign expected)
TRACKS = {"noise": ("ws", -1), "dup": ("dup", +1), "trunc": ("len", -1), "amount": ("share", +1),
          "difficulty": ("nl", +1)}

# A knob the default state holds fixed (data.state: [v, v]) is opened to this range where the validity check
# shows how well it would be measured: difficulty is fixed by default, and book/method.md says why.
FULL_RANGE = {"difficulty": (0.0, 1.0)}


def fixed_knobs(state_cfg) -> list[str]:
    """Knobs whose configured range is one point: not varied between pools."""
    return [k for k in pools.KNOBS if k in state_cfg and float(state_cfg[k][0]) == float(state_cfg[k][1])]


def validity_ranges(state_cfg) -> dict:
    """The pool-state ranges for the validity check: the config's, with each fixed knob that has a full range
    (FULL_RANGE) opened to it, so the check still shows how weakly or well the covariates see that knob."""
    out = OmegaConf.to_container(state_cfg, resolve=True) if isinstance(state_cfg, DictConfig) else dict(state_cfg)
    for k in fixed_knobs(state_cfg):
        if k in FULL_RANGE:
            out[k] = list(FULL_RANGE[k])
    return out


def covariate_validity(world: World, scorer, n_pools: int, seed: int = 11, ranges=None) -> pd.DataFrame:
    """Long table (pool, domain, knob values, covariate values) over random pool states drawn from `ranges`
    (default: the config's data.state)."""
    ranges = world.cfg.data.state if ranges is None else ranges
    rows = []
    for k in range(n_pools):
        rng = rng_for(world.cfg, 4, seed, k)
        state = pools.draw_state(world.domains, ranges, rng)
        pool = pools.build(world.pool_samples(), state, world.cfg.data.pool_size, world.families, rng,
                           width=world.cfg.data.state.difficulty_width)
        cov = measure_pool(world, scorer, pool, rng)
        for d in world.domains:
            rows.append({"pool": k, "domain": d, **{f"knob_{n}": state[d][n] for n in pools.KNOBS},
                         **{c: cov[f"{c}_{d}"] for c in ("nl", "hes", "ws", "dup", "len", "share")}})
    return pd.DataFrame(rows)


def validity_correlations(df: pd.DataFrame) -> pd.DataFrame:
    """Spearman correlation of each knob with each covariate, pooled within domain (ranks per domain). A knob
    that did not vary over the pools has no correlation to show and is left out."""
    knobs = [c for c in df.columns if c.startswith("knob_") and df[c].nunique() > 1]
    covs = ["nl", "hes", "ws", "dup", "len", "share"]
    ranked = df.groupby("domain")[knobs + covs].rank()
    return ranked[knobs].apply(lambda k: ranked[covs].corrwith(k)).T.rename(index=lambda s: s[5:])


def within_domain_correlations(df: pd.DataFrame, knob: str) -> pd.DataFrame:
    """Per domain, the Spearman correlation of one knob with each covariate over the pools (domain x covariate);
    a covariate that tracks a knob in one domain and against it in another shows here, not in the pooled table."""
    covs = ["nl", "hes", "ws", "dup", "len", "share"]
    return df.groupby("domain").apply(lambda g: g[covs].rank().corrwith(g[f"knob_{knob}"].rank()))


def knob_manifest(cfg: DictConfig, levels: dict, seeds: int, size: int | None = None) -> dict:
    spec = {"sweep": sweep_spec(cfg), "levels": {k: list(map(float, v)) for k, v in levels.items()},
            "seeds": int(seeds), "size": int(size or cfg.data.pool_size)}
    return lineage.manifest(spec, "knobs")


def knob_store(cfg: DictConfig, levels: dict, seeds: int, size: int | None = None) -> RunStore:
    """The knob sweep's fine-tunes, stored like proxy runs (outputs/<scale>/knobs/runs/<key>), keyed by the
    config that shapes a fine-tune, the levels and seeds, and the code (lineage kind `knobs`)."""
    man = knob_manifest(cfg, levels, seeds, size)
    return RunStore(path(cfg, "out") / "knobs", lineage.store_key(man))


def knob_sweep(world: World, base, levels: dict[str, tuple[float, float]], seeds: int,
               size: int | None = None) -> pd.DataFrame:
    """Controlled sweep: equal mixture, every domain at a knob's low or high level (other knobs at
    their clean defaults), `seeds` fine-tunes each; the same seeds at both levels so they pair. Each
    fine-tune is stored (knob_store) and reused."""
    cfg = world.cfg
    clean = {"amount": 1.0, "noise": 0.0, "dup": 0.0, "trunc": 0.0, "difficulty": 0.5}
    equal = {d: 1 / len(world.domains) for d in world.domains}
    store = knob_store(cfg, levels, seeds, size)
    size = size or cfg.data.pool_size
    rows = []
    for knob, (lo, hi) in levels.items():
        for level, value in (("low", lo), ("high", hi)):
            for s in range(seeds):
                rid = int(config_hash({"knob": knob, "level": level, "value": float(value), "s": s}), 16) % 10**9
                if not store.done(rid):
                    lineage.write_manifest(store.dir / "manifest.json", knob_manifest(cfg, levels, seeds, size))
                    rng = rng_for(cfg, 5, s)
                    state = {d: {**clean, knob: value} for d in world.domains}
                    pool = pools.build(world.pool_samples(), state, size, world.families, rng,
                                       width=cfg.data.state.difficulty_width)
                    texts = pools.draw_training_set(pool, equal, cfg.proxy.samples, rng)
                    r = finetune_and_score(world, base, texts, seed=s, settings=cfg.proxy)
                    store.write(rid, {"run_id": rid, "knob": knob, "level": level, "value": float(value), "seed": s,
                                      **{k: v for k, v in r.items() if k.startswith(("acc_", "margin_"))}})
                r = store.read(rid).iloc[0]
                for d in world.domains:
                    rows.append({"knob": knob, "level": level, "value": value, "seed": s, "domain": d,
                                 "acc": float(r[f"acc_{d}"]), "margin": float(r[f"margin_{d}"])})
    return pd.DataFrame(rows)


def knob_effects(df: pd.DataFrame) -> pd.DataFrame:
    """Per knob and domain: mean paired (high - low) change in accuracy and margin, with 95% CI."""
    from causalmix.book.report import mean_ci
    wide = df.pivot_table(index=["knob", "domain", "seed"], columns="level", values=["acc", "margin"])
    rows = []
    for (knob, d), sub in wide.groupby(level=["knob", "domain"]):
        da = sub[("acc", "high")] - sub[("acc", "low")]
        dm = sub[("margin", "high")] - sub[("margin", "low")]
        m, lo, hi = mean_ci(dm)
        rows.append({"knob": knob, "domain": d, "d_acc": da.mean(), "d_margin": m, "d_margin_lo": lo,
                     "d_margin_hi": hi, "seeds": len(sub)})
    return pd.DataFrame(rows)
