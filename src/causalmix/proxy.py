"""One proxy run: draw a pool state and a mixture, measure the pool, fine-tune the base, score."""
from __future__ import annotations

import copy
import time

import numpy as np

from . import benchmarks, covariates, pool as pools
from .pool import composition
from .train import fit
from .world import World, rng_for


def draw_mixture(cfg, domains: list[str], natural: dict[str, float], rng: np.random.Generator) -> dict:
    """RegMix-style: a Dirichlet around a prior (uniform or the pool's own proportions)."""
    m = cfg.sweep.mixture
    prior = np.ones(len(domains)) / len(domains) if m.prior == "uniform" else np.array([natural[d] for d in domains])
    w = rng.dirichlet(m.alpha * len(domains) * prior)
    if m.min_share > 0:
        w = np.maximum(w, m.min_share)
        w /= w.sum()
    return dict(zip(domains, w.tolist()))


def measure_pool(world: World, scorer, pool: dict, rng) -> dict:
    c = world.cfg.data.covariates
    return covariates.measure(scorer, pool, world.families, world.vocabs,
                              score_samples=c.score_samples, hes_top=c.hes_top, rng=rng,
                              device=world.cfg.device)


def finetune_and_score(world: World, base, train_texts: list[str], seed: int, settings) -> dict:
    model = copy.deepcopy(base).to(world.cfg.device)
    stats = fit(model, train_texts, epochs=settings.epochs, batch_size=settings.batch_size, lr=settings.lr,
                weight_decay=settings.get("weight_decay", 0.0), seed=seed, device=world.cfg.device)
    scores = benchmarks.evaluate(model, world.benches, device=world.cfg.device)
    return {**scores, "tokens": stats["tokens"], "steps": stats["steps"], "train_loss": stats["final_loss"]}


def run(world: World, base, run_id: int) -> dict:
    cfg = world.cfg
    t0 = time.perf_counter()
    rng = rng_for(cfg, 1, cfg.sweep.seed_offset + run_id)
    state = pools.draw_state(world.domains, cfg.data.state, rng)
    pool = pools.build(world.pool_samples(), state, cfg.data.pool_size, world.families, rng,
                       width=cfg.data.state.difficulty_width)
    natural = composition(state)
    mixture = draw_mixture(cfg, world.domains, natural, rng)
    covs = measure_pool(world, base, pool, rng)
    texts = pools.draw_training_set(pool, mixture, cfg.proxy.samples, rng)
    scores = finetune_and_score(world, base, texts, seed=int(rng.integers(2**31)), settings=cfg.proxy)
    return {"run_id": run_id, "seed": int(cfg.seed), **{f"w_{d}": w for d, w in mixture.items()},
            **pools.flat_state(state), **covs, **scores, "wall_seconds": time.perf_counter() - t0}
