"""The proxy sweep: N proxy runs into the run store, skipping the ones already finished."""
from __future__ import annotations

import sys
import time

import pandas as pd
from omegaconf import DictConfig, OmegaConf
from tqdm.auto import tqdm

from causalmix import lineage
from causalmix.experiments import proxy
from causalmix.config import path
from causalmix.errors import ConfigError
from causalmix.experiments.store import RunStore, file_lock
from causalmix.experiments.world import base_model, build_world, set_threads


def sweep_spec(cfg: DictConfig) -> dict:
    """Every config value that changes a run's result, and nothing that does not (n_runs, paths, device)."""
    keys = ["data", "pretrain", "proxy", "sweep.mixture", "sweep.seed_offset", "sweep.batch", "seed",
            "model.proxy", "model.context"]
    if design(cfg) != "randomised":      # the default design adds no key, so its stores keep their names
        keys += ["sweep.design", "sweep.habit"]
    return {k: OmegaConf.to_container(OmegaConf.select(cfg, k), resolve=True)
            if isinstance(OmegaConf.select(cfg, k), DictConfig) else OmegaConf.select(cfg, k) for k in keys}


def design(cfg: DictConfig) -> str:
    """randomised (mixtures independent of the pool: proxy.py) | habit (mixtures follow the measured pool: habit.py)."""
    return str(OmegaConf.select(cfg, "sweep.design", default="randomised"))


def sweep_manifest(cfg: DictConfig) -> dict:
    return lineage.manifest(sweep_spec(cfg), "runs" if design(cfg) == "randomised" else "habit")


def sweep_hash(cfg: DictConfig) -> str:
    """The store's key: the config that shapes a run and the code that computes one (see lineage)."""
    return lineage.store_key(sweep_manifest(cfg))


def store_for(cfg: DictConfig) -> RunStore:
    return RunStore(path(cfg, "out"), sweep_hash(cfg))


def export(cfg: DictConfig):
    """The RegMix/Olmix CSVs (RunStore.export's format) of the sweep's runs (ids below sweep.n_runs) that its store
    holds, beside the store. The store may also hold a larger sweep of the same config (chapter 2's
    power.curve.extend), which RunStore.export would write whole; it reads the runs through .load(), so it is
    handed the sweep's (store.py stays as it is: it enters code keys, and an edit would retire stores)."""
    from types import SimpleNamespace
    store = store_for(cfg)
    df = store.load()
    mine = df[df.run_id < int(cfg.sweep.n_runs)].reset_index(drop=True)
    return RunStore.export(SimpleNamespace(load=lambda: mine), store.dir.parent.parent / "export" / store.hash,
                           list(cfg.data.domains))


def batch_size(cfg: DictConfig) -> int:
    return int(OmegaConf.select(cfg, "sweep.batch", default=1) or 1)


def shard_ids(cfg: DictConfig, ids: list[int]) -> list[int]:
    """This worker's share of the run ids: every n_shards-th block of sweep.batch runs from `shard`
    (sweep.shard, sweep.n_shards), so that a block never straddles two shards."""
    shard, n = OmegaConf.select(cfg, "sweep.shard", default=0), OmegaConf.select(cfg, "sweep.n_shards", default=1)
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ConfigError(f"sweep.n_shards={n!r}: expected a positive integer")
    if not isinstance(shard, int) or isinstance(shard, bool) or not 0 <= shard < n:
        raise ConfigError(f"sweep.shard={shard!r}: expected an integer in [0, sweep.n_shards={n})")
    size = batch_size(cfg)
    return [i for i in ids if (i // size) % n == shard]


def blocks(cfg: DictConfig, ids: list[int]) -> dict[int, list[int]]:
    """The fixed blocks that hold `ids`: block b is run ids [b*batch, (b+1)*batch) below sweep.n_runs (or the
    largest id asked for). Proxies of a block train as one stacked model, always together, so a run's numbers
    never depend on which worker, shard or resumed sweep computed it, or on which other runs were missing."""
    size = batch_size(cfg)
    limit = max([int(cfg.sweep.n_runs), *[i + 1 for i in ids]])
    out = {}
    for i in ids:
        b = i - i % size
        out.setdefault(b, list(range(b, min(b + size, limit))))
    return out


def prepare(cfg: DictConfig, world=None, log=print):
    """(world, proxy base), built under the cache's lock: one process at a time parses corpora or pretrains a
    base, and the others then load what it wrote (workers of one sweep; chapters run side by side)."""
    with file_lock(path(cfg, "cache") / "prepare.lock"):
        return world or build_world(cfg), base_model(cfg, "proxy", log=log)


def run_sweep(cfg: DictConfig, run_ids: list[int] | None = None, world=None, log=print) -> pd.DataFrame:
    """Compute this worker's runs that are not in the store yet and return them all (finished ones read back).

    Work is done in fixed blocks of sweep.batch runs (see `blocks`). Workers on one store (Hydra launcher jobs,
    or two `causalmix sweep` at once) claim a block before computing it (store.claimed, on the block's first
    id), so no run is computed twice; a block held by another worker is waited for. A block that a killed
    worker left half-written is trained again whole, and only its missing runs are written."""
    set_threads(cfg)
    store = store_for(cfg)
    ids = shard_ids(cfg, list(range(cfg.sweep.n_runs)) if run_ids is None else list(run_ids))
    todo = [i for i in ids if not store.done(i)]
    log(f"sweep {store.hash}: {len(ids) - len(todo)} of {len(ids)} runs already in {store.dir}, {len(todo)} to go")
    if todo:
        lineage.write_manifest(store.dir / "manifest.json", sweep_manifest(cfg))
        world, base = prepare(cfg, world, log=log)
        todo_blocks = blocks(cfg, todo)
        if design(cfg) == "randomised":
            runner = proxy.run_many
        else:
            from causalmix.experiments.habit import run_many as runner
        finished = lambda b: all(store.done(j) for j in todo_blocks[b])  # noqa: E731
        t0, n = time.perf_counter(), 0
        bar = tqdm(total=len(todo), desc="proxy runs", unit="run", file=sys.stderr, mininterval=30)
        for b in store.claimed(sorted(todo_blocks), log=log, done=finished):
            block = todo_blocks[b]
            for j in block:
                store.clear_dead_temps(j)
            missing = [j for j in block if not store.done(j)]
            for j, record in zip(block, runner(world, base, block)):
                if j in missing:
                    store.write(j, {"config_hash": store.hash, **record, "worker": store.worker})
            n += len([j for j in missing if j in todo])
            bar.update(len([j for j in missing if j in todo]))
        bar.close()
        log(f"{n} runs in {time.perf_counter() - t0:.0f}s ({(time.perf_counter() - t0) / max(n, 1):.1f}s per run)"
            + (f"; {len(todo) - n} finished by other workers" if n < len(todo) else ""))
    df = store.load()
    return df[df.run_id.isin(ids)].reset_index(drop=True)
