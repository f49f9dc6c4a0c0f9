"""The proxy sweep: N proxy runs into the run store, skipping the ones already finished."""
from __future__ import annotations

import sys
import time

import pandas as pd
from omegaconf import DictConfig, OmegaConf
from tqdm.auto import tqdm

from . import proxy
from .config import config_hash, path
from .store import RunStore
from .world import base_model, build_world, set_threads


def sweep_hash(cfg: DictConfig) -> str:
    """Everything that changes a run's result, and nothing that does not (n_runs, paths, device)."""
    keys = ["data", "pretrain", "proxy", "sweep.mixture", "sweep.seed_offset", "seed", "model.proxy",
            "model.context"]
    return config_hash({k: OmegaConf.to_container(OmegaConf.select(cfg, k), resolve=True)
                        if isinstance(OmegaConf.select(cfg, k), DictConfig) else OmegaConf.select(cfg, k)
                        for k in keys})


def store_for(cfg: DictConfig) -> RunStore:
    return RunStore(path(cfg, "out"), sweep_hash(cfg))


def run_sweep(cfg: DictConfig, run_ids: list[int] | None = None, world=None, log=print) -> pd.DataFrame:
    set_threads(cfg)
    store = store_for(cfg)
    ids = list(range(cfg.sweep.n_runs)) if run_ids is None else list(run_ids)
    todo = [i for i in ids if not store.done(i)]
    log(f"sweep {store.hash}: {len(ids) - len(todo)} of {len(ids)} runs already in {store.dir}, {len(todo)} to go")
    if todo:
        world = world or build_world(cfg)
        base = base_model(cfg, "proxy", log=log)
        t0 = time.perf_counter()
        for i in tqdm(todo, desc="proxy runs", unit="run", file=sys.stderr, mininterval=30):
            store.write(i, {"config_hash": store.hash, **proxy.run(world, base, i)})
        log(f"{len(todo)} runs in {time.perf_counter() - t0:.0f}s "
            f"({(time.perf_counter() - t0) / len(todo):.1f}s per run)")
    df = store.load()
    return df[df.run_id.isin(ids)].reset_index(drop=True)
