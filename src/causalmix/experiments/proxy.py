"""One proxy run: draw a pool state and a mixture, measure the pool, fine-tune the base, score."""
from __future__ import annotations

import copy
import time

import numpy as np

from causalmix.data import benchmarks, covariates, pool as pools
from causalmix.data.pool import composition
from causalmix.lm.train import fit, fit_many
from causalmix.experiments.world import World, rng_for


def draw_mixture(cfg, domains: list[str], natural: dict[str, float], rng: np.random.Generator) -> dict:
    """RegMix-style: a Dirichlet around a prior (uniform or the pool's own proportions)."""
    m = cfg.sweep.mixture
    prior = np.ones(len(domains)) / len(domains) if m.prior == "uniform" else np.array([natural[d] for d in domains])
    w = rng.dirichlet(m.alpha * len(domains) * prior)
    if m.min_share > 0:
        w = np.maximum(w, m.min_share)
        w /= w.sum()
    return dict(zip(domains, w.tolist()))


def precision(settings) -> str:
    """fp32 | bf16 (autocast) for a training/scoring block of the config (proxy, target)."""
    return str(settings.get("precision", "fp32"))


def measure_pool(world: World, scorer, pool: dict, rng) -> dict:
    c = world.cfg.data.covariates
    return covariates.measure(scorer, pool, world.families, world.vocabs,
                              score_samples=c.score_samples, hes_top=c.hes_top, rng=rng,
                              device=world.cfg.device, precision=precision(world.cfg.proxy))


def finetune_and_score(world: World, base, train_texts: list[str], seed: int, settings) -> dict:
    model = copy.deepcopy(base).to(world.cfg.device)
    stats = fit(model, train_texts, epochs=settings.epochs, batch_size=settings.batch_size, lr=settings.lr,
                weight_decay=settings.get("weight_decay", 0.0), seed=seed, device=world.cfg.device,
                precision=precision(settings))
    return _scored(world, model, stats, settings)


def finetune_and_score_many(world: World, base, texts: list[list[str]], seeds: list[int], settings) -> list[dict]:
    """[finetune_and_score(world, base, t, s, settings) ...] with the models trained at once as one stacked
    model (train.fit_many): the same results up to float rounding. For proxy runs, target runs and power
    seeds alike (the trainings must have the same step count)."""
    if len(texts) == 1:
        return [finetune_and_score(world, base, texts[0], seeds[0], settings)]
    models = [copy.deepcopy(base).to(world.cfg.device) for _ in texts]
    stats = fit_many(models, texts, seeds, epochs=settings.epochs, batch_size=settings.batch_size, lr=settings.lr,
                     weight_decay=settings.get("weight_decay", 0.0), device=world.cfg.device,
                     precision=precision(settings))
    return [_scored(world, m, st, settings) for m, st in zip(models, stats)]


def _scored(world: World, model, stats: dict, settings) -> dict:
    scores = benchmarks.evaluate(model, world.benches, device=world.cfg.device, precision=precision(settings))
    return {**scores, "tokens": stats["tokens"], "steps": stats["steps"], "train_loss": stats["final_loss"]}


def _prepare(world: World, base, run_id: int) -> dict:
    """Everything of a run before training: its state, pool, mixture, covariates, texts and seed."""
    cfg = world.cfg
    t0 = time.perf_counter()
    rng = rng_for(cfg, 1, cfg.sweep.seed_offset + run_id)
    state = pools.draw_state(world.domains, cfg.data.state, rng)
    pool = pools.build(world.pool_samples(), state, cfg.data.pool_size, world.families, rng,
                       width=cfg.data.state.difficulty_width)
    mixture = draw_mixture(cfg, world.domains, composition(state), rng)
    covs = measure_pool(world, base, pool, rng)
    texts = pools.draw_training_set(pool, mixture, cfg.proxy.samples, rng)
    head = {"run_id": run_id, "seed": int(cfg.seed), **{f"w_{d}": w for d, w in mixture.items()},
            **pools.flat_state(state), **covs}
    return {"head": head, "texts": texts, "seed": int(rng.integers(2**31)), "seconds": time.perf_counter() - t0}


def run(world: World, base, run_id: int) -> dict:
    t0 = time.perf_counter()
    p = _prepare(world, base, run_id)
    scores = finetune_and_score(world, base, p["texts"], seed=p["seed"], settings=world.cfg.proxy)
    return {**p["head"], **scores, "wall_seconds": time.perf_counter() - t0}


def run_many(world: World, base, run_ids: list[int]) -> list[dict]:
    """[run(world, base, i) for i in run_ids], with the proxies trained at once as one stacked model
    (train.fit_many): the same records up to float rounding; wall_seconds shares the batch's time."""
    if len(run_ids) <= 1:
        return [run(world, base, i) for i in run_ids]
    prepared = [_prepare(world, base, i) for i in run_ids]
    t0 = time.perf_counter()
    scores = finetune_and_score_many(world, base, [p["texts"] for p in prepared], [p["seed"] for p in prepared],
                                     world.cfg.proxy)
    records = [{**p["head"], **sc} for p, sc in zip(prepared, scores)]
    shared = (time.perf_counter() - t0) / len(run_ids)
    return [{**r, "wall_seconds": p["seconds"] + shared} for r, p in zip(records, prepared)]
