"""An observational sweep (`sweep.design: habit`): proxy runs whose mixture follows the pool's measured state.

The randomised sweep (proxy.py) draws each run's mixture independently of its pool, so the state cannot
predict the mixture and no regression is confounded. A practitioner's logs are not like that: more share goes
to the domains whose data looks clean. This design does the same, on real proxies:

    z_{i,d} = clip((ws_{i,d} - m_d) / s_d, -2.5, 2.5)     run i's measured cleanliness of domain d, standardised
                                                          by m_d, s_d over `sweep.habit.calibration` pools drawn
                                                          on their own seed stream (so a run never depends on
                                                          which other runs exist or on sweep.n_runs)
    W_i     ~ Dirichlet(alpha K p_i),   p_i = prior * softmax(gamma z_i), normalised

with alpha, the prior and min_share of `sweep.mixture` and gamma = `sweep.habit.confounding` (0: the same
distribution as the randomised design). Run i's pool state, pool, covariates and training seed are those of
randomised run i (the same seed stream), so the two sweeps differ only in how the mixture was chosen. A clean
pool then gets more share for its clean domains, and cleanliness also moves the outcome through the state
itself: a regression that does not adjust for the state credits the mixture with it.
"""
from __future__ import annotations

import time

import numpy as np

from causalmix.data import pool as pools
from causalmix.data.pool import composition
from causalmix.experiments import proxy
from causalmix.experiments.world import World, rng_for

_CALIBRATION: dict = {}     # (seed, calibration, config of a pool) -> (m, s): measured once per process


def calibration(world: World, base) -> tuple[np.ndarray, np.ndarray]:
    """m_d, s_d: mean and SD of ws_<d> over `sweep.habit.calibration` pools (seed stream 14)."""
    cfg = world.cfg
    n = int(cfg.sweep.habit.calibration)
    key = (int(cfg.seed), n, repr(cfg.data), repr(cfg.model.proxy), cfg.pretrain.steps)
    if key not in _CALIBRATION:
        ws = []
        for j in range(n):
            rng = rng_for(cfg, 14, j)
            state = pools.draw_state(world.domains, cfg.data.state, rng)
            pool = pools.build(world.pool_samples(), state, cfg.data.pool_size, world.families, rng,
                               width=cfg.data.state.difficulty_width)
            covs = proxy.measure_pool(world, base, pool, rng)
            ws.append([covs[f"ws_{d}"] for d in world.domains])
        ws = np.array(ws)
        sd = ws.std(axis=0)
        _CALIBRATION[key] = (ws.mean(axis=0), np.where(sd > 0, sd, 1.0))
    return _CALIBRATION[key]


def habit_mixture(cfg, domains: list[str], natural: dict[str, float], z: np.ndarray, rng) -> dict:
    """The practitioner's draw: a Dirichlet around the prior tilted by softmax(gamma z)."""
    m = cfg.sweep.mixture
    prior = np.ones(len(domains)) / len(domains) if m.prior == "uniform" else np.array([natural[d] for d in domains])
    e = np.exp(float(cfg.sweep.habit.confounding) * (z - z.max()))
    p = prior * e / e.sum()
    w = rng.dirichlet(m.alpha * len(domains) * p / p.sum())
    if m.min_share > 0:
        w = np.maximum(w, m.min_share)
        w /= w.sum()
    return dict(zip(domains, w.tolist()))


def _prepare(world: World, base, run_id: int) -> dict:
    """As proxy._prepare, with the mixture drawn from the measured pool (its own stream, 13)."""
    cfg = world.cfg
    t0 = time.perf_counter()
    rng = rng_for(cfg, 1, cfg.sweep.seed_offset + run_id)
    state = pools.draw_state(world.domains, cfg.data.state, rng)
    pool = pools.build(world.pool_samples(), state, cfg.data.pool_size, world.families, rng,
                       width=cfg.data.state.difficulty_width)
    proxy.draw_mixture(cfg, world.domains, composition(state), rng)   # the randomised run's draw: keeps the stream
    covs = proxy.measure_pool(world, base, pool, rng)
    m, s = calibration(world, base)
    z = np.clip((np.array([covs[f"ws_{d}"] for d in world.domains]) - m) / s, -2.5, 2.5)
    mixture = habit_mixture(cfg, world.domains, composition(state), z,
                            rng_for(cfg, 13, cfg.sweep.seed_offset + run_id))
    texts = pools.draw_training_set(pool, mixture, cfg.proxy.samples, rng)
    head = {"run_id": run_id, "seed": int(cfg.seed), **{f"w_{d}": w for d, w in mixture.items()},
            **pools.flat_state(state), **covs}
    return {"head": head, "texts": texts, "seed": int(rng.integers(2**31)), "seconds": time.perf_counter() - t0}


def run_many(world: World, base, run_ids: list[int]) -> list[dict]:
    """proxy.run_many for this design: one block trained as one stacked model."""
    prepared = [_prepare(world, base, i) for i in run_ids]
    t0 = time.perf_counter()
    scores = proxy.finetune_and_score_many(world, base, [p["texts"] for p in prepared],
                                           [p["seed"] for p in prepared], world.cfg.proxy)
    shared = (time.perf_counter() - t0) / max(len(run_ids), 1)
    return [{**p["head"], **sc, "wall_seconds": p["seconds"] + shared} for p, sc in zip(prepared, scores)]
