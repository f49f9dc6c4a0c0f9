"""The proxy sweep: N proxy runs into the run store, skipping the ones already finished."""
from __future__ import annotations

import sys
import time

import pandas as pd
from omegaconf import DictConfig, OmegaConf
from tqdm.auto import tqdm

from . import lineage, proxy
from .config import config_hash, path
from .errors import ConfigError
from .store import RunStore, file_lock
from .world import base_model, build_world, set_threads


def sweep_spec(cfg: DictConfig) -> dict:
    """Every config value that changes a run's result, and nothing that does not (n_runs, paths, device)."""
    keys = ["data", "pretrain", "proxy", "sweep.mixture", "sweep.seed_offset", "seed", "model.proxy",
            "model.context"]
    return {k: OmegaConf.to_container(OmegaConf.select(cfg, k), resolve=True)
            if isinstance(OmegaConf.select(cfg, k), DictConfig) else OmegaConf.select(cfg, k) for k in keys}


def sweep_manifest(cfg: DictConfig) -> dict:
    return lineage.manifest(sweep_spec(cfg), "runs")


def sweep_hash(cfg: DictConfig) -> str:
    """The store's key: the config that shapes a run and the code that computes one (see lineage)."""
    man = sweep_manifest(cfg)
    return config_hash({"config": man["config_key"], "code": lineage.digest(man["code"])})


def store_for(cfg: DictConfig) -> RunStore:
    return RunStore(path(cfg, "out"), sweep_hash(cfg))


def shard_ids(cfg: DictConfig, ids: list[int]) -> list[int]:
    """This worker's share of the run ids: every n_shards-th id from `shard` (sweep.shard, sweep.n_shards)."""
    shard, n = OmegaConf.select(cfg, "sweep.shard", default=0), OmegaConf.select(cfg, "sweep.n_shards", default=1)
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ConfigError(f"sweep.n_shards={n!r}: expected a positive integer")
    if not isinstance(shard, int) or isinstance(shard, bool) or not 0 <= shard < n:
        raise ConfigError(f"sweep.shard={shard!r}: expected an integer in [0, sweep.n_shards={n})")
    return [i for i in ids if i % n == shard]


def run_sweep(cfg: DictConfig, run_ids: list[int] | None = None, world=None, log=print) -> pd.DataFrame:
    """Compute this worker's runs that are not in the store yet and return them all (finished ones read back).

    Workers on one store (Hydra launcher jobs, or two `causalmix sweep` at once) claim each run before
    computing it (store.claimed), so no run is computed twice; a run held by another worker is waited for."""
    set_threads(cfg)
    store = store_for(cfg)
    ids = shard_ids(cfg, list(range(cfg.sweep.n_runs)) if run_ids is None else list(run_ids))
    todo = [i for i in ids if not store.done(i)]
    log(f"sweep {store.hash}: {len(ids) - len(todo)} of {len(ids)} runs already in {store.dir}, {len(todo)} to go")
    if todo:
        with file_lock(path(cfg, "cache") / "prepare.lock"):    # one worker builds the shared caches at a time
            lineage.write_manifest(store.dir / "manifest.json", sweep_manifest(cfg))
            world = world or build_world(cfg)
            base = base_model(cfg, "proxy", log=log)
        t0, n = time.perf_counter(), 0
        size = int(OmegaConf.select(cfg, "sweep.batch", default=1) or 1)   # proxies trained at once
        bar = tqdm(total=len(todo), desc="proxy runs", unit="run", file=sys.stderr, mininterval=30)
        for i in store.claimed(todo, log=log):
            extra = []    # up to size-1 later runs this worker can claim now: they train with run i as one model
            for j in todo[todo.index(i) + 1:]:
                if len(extra) == size - 1:
                    break
                c = None if store.done(j) else store.claim(j, log=log)
                if c is not None and store.done(j):    # finished by another worker meanwhile
                    c.release()
                elif c is not None:
                    extra.append((j, c))
            group = [i] + [j for j, _ in extra]
            try:
                for j, record in zip(group, proxy.run_many(world, base, group)):
                    store.write(j, {"config_hash": store.hash, **record, "worker": store.worker})
            finally:
                for _, c in extra:
                    c.release()
            n += len(group)
            bar.update(len(group))
        bar.close()
        log(f"{n} runs in {time.perf_counter() - t0:.0f}s ({(time.perf_counter() - t0) / max(n, 1):.1f}s per run)"
            + (f"; {len(todo) - n} finished by other workers" if n < len(todo) else ""))
    df = store.load()
    return df[df.run_id.isin(ids)].reset_index(drop=True)
