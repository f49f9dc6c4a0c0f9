"""`--dry-run`: what a command would reuse and what it would recompute, and why. Computes nothing.

Reads manifests, file names and stored records: the parsed-corpus cache, the base models, the proxy run store,
the kept target states and proposals, and the target run store of the composed config, each compared with what
the current code would make."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
from omegaconf import DictConfig, OmegaConf

from causalmix.data import domains as dom
from causalmix import lineage
from causalmix.config import path
from causalmix.experiments.sweep import store_for, sweep_manifest
from causalmix.experiments.target import state_id, state_manifest, state_store, target_manifest, target_store
from causalmix.experiments.world import base_file


def _rel(p: Path) -> str:
    from causalmix.config import REPO_ROOT
    try:
        return str(Path(p).resolve().relative_to(REPO_ROOT))
    except ValueError:
        return str(p)


def _samples(cfg: DictConfig) -> list[str]:
    cache = path(cfg, "cache") / "samples"
    specs = OmegaConf.to_container(cfg.data.domains, resolve=True)
    fresh, stale = [], []
    for name, spec in specs.items():
        try:
            key = dom._cache_key(name, spec, cfg.data.sample_chars, cfg.seed)
        except Exception as e:   # e.g. a JSONL path that does not exist: the real run reports it
            stale.append(f"{name} ({type(e).__name__}: {e})")
            continue
        (fresh if (cache / f"{name}-{key}.jsonl").is_file() else stale).append(name)
    out = [f"parsed corpora: reuse {len(fresh)} of {len(specs)} ({', '.join(fresh) or 'none'})"]
    if stale:
        older = {f.name.split("-")[0] for f in cache.glob("*.jsonl")} if cache.is_dir() else set()
        why = [f"{n} ({'parsed by other code or config' if n in older else 'never parsed'})" for n in stale]
        out.append(f"  recompute: {', '.join(why)}")
    return out


def _base(cfg: DictConfig, size: str) -> str:
    file, man = base_file(cfg, size)
    if file.is_file():
        return f"base model {size}: reuse {_rel(file)} (same config and code)"
    others = sorted(file.parent.glob(f"{size}-*.json")) if file.parent.is_dir() else []
    return f"base model {size}: pretrain ({lineage.why_not_reused(others, man)})"


def _why(store, man: dict) -> str:
    """Why nothing in `store` is reused: what made the other stores beside it (lineage.why_not_reused)."""
    others = [m for m in store.dir.parent.glob("*/manifest.json") if m.parent != store.dir]
    return lineage.why_not_reused(others, man)


def _reuse(what: str, store, ids, man: dict) -> list[str]:
    """One line for a store of numbered runs: how many of `ids` it reuses and computes; why, when none."""
    done = sum(store.done(i) for i in ids)
    line = f"{what}: reuse {done} of {len(ids)} from {_rel(store.dir)}, compute {len(ids) - done}"
    if done == len(ids):
        return [line]
    if done:
        return [line + " (not run yet)"]
    return [line, f"  why: {_why(store, man)}"]


def _runs(cfg: DictConfig) -> list[str]:
    return _reuse("proxy runs", store_for(cfg), range(cfg.sweep.n_runs), sweep_manifest(cfg))


def _targets(cfg: DictConfig) -> list[str]:
    store = target_store(cfg)
    n = len(cfg.target.states) * len(cfg.target.methods) * cfg.target.seeds
    have = len(list(store.dir.glob("run_*.csv"))) if store.dir.is_dir() else 0
    known = _target_reuse(cfg)
    line = (f"target runs: {have} stored in {_rel(store.dir)} for {n} (state x method x seed) runs plus the "
            f"oracle grid; a run is reused when its method's proposed mixture is the stored one")
    out = [line + (f": {known}" if known else " (known only after the fit: a proposal below is not kept)")]
    if not have:
        out.append(f"  why none: {_why(store, target_manifest(cfg))}")
    named = list(dict.fromkeys([*cfg.target.states, *([cfg.target.oracle.state] if cfg.target.oracle.state else [])]))
    out += _reuse("target states' measured covariates", state_store(cfg), [state_id(cfg, n) for n in named],
                  state_manifest(cfg))
    from causalmix.experiments import proposals
    for what in ("main", "ablations"):
        st = proposals.store(cfg, what)
        have = len(list(st.dir.glob("run_*.csv"))) if st.dir.is_dir() else 0
        out.append(f"proposals ({what}): {have} kept in {_rel(st.dir)}; a state's is reused when the sweep's runs "
                   f"and its measured covariates are those it was fitted on, else fitted (seconds)")
        if not have:
            out.append(f"  why none: {_why(st, proposals.manifest(cfg, what))}")
    if "grid" in cfg.target.methods:
        from causalmix.experiments.grid import grid_manifest, grid_store, points
        g = grid_store(cfg)
        states = set(cfg.target.states) | ({cfg.target.oracle.state} - {None})   # mainresults.prepare's states
        want = len(states) * len(points(cfg, list(cfg.data.domains))) * int(cfg.baselines.grid.seeds)
        got = len(list(g.dir.glob("run_*.csv"))) if g.dir.is_dir() else 0
        out.append(f"grid proxy runs: {got} stored in {_rel(g.dir)} for {want} (state x point x seed); each is "
                   f"reused when stored")
        if not got:
            out.append(f"  why none: {_why(g, grid_manifest(cfg))}")
    return out


def _target_reuse(cfg: DictConfig) -> str | None:
    """How many of chapter 4's target runs (state x method x seed) and chapter 6's ablation runs are stored for
    the mixtures the kept proposals give; None when a proposal, a state's covariates or Grid's trials are not
    stored yet (then only the fit knows)."""
    from causalmix.data.pool import composition
    from causalmix.experiments import ablations as ab, proposals
    from causalmix.experiments.grid import grid_store, pick
    from causalmix.experiments.sweep import run_sweep
    from causalmix.experiments.target import same_mixture, stored_state, target_state
    sweep = store_for(cfg)
    covariates = {n: stored_state(cfg, n) for n in cfg.target.states}
    if not all(sweep.done(i) for i in range(cfg.sweep.n_runs)) or None in covariates.values():
        return None
    runs = run_sweep(cfg, log=lambda *a: None)            # every run stored: read back, nothing trained
    trials = grid_store(cfg).load() if "grid" in cfg.target.methods and grid_store(cfg).dir.is_dir() else None
    stored = target_store(cfg).load() if target_store(cfg).dir.is_dir() else pd.DataFrame()
    want = {"main": 0, "ablations": 0}
    have = {"main": 0, "ablations": 0}
    for name in cfg.target.states:
        digest = proposals.inputs_digest(runs, covariates[name], composition(target_state(cfg, name)))
        for what in ("main", "ablations"):
            st = proposals.store(cfg, what)
            rid = proposals.record_id(name, digest)
            if what == "ablations" and not list(cfg.ablations.run):
                continue
            if not st.done(rid):
                return None
            mixes, _ = proposals.from_record(st.read(rid).iloc[0].to_dict())
            if what == "main" and "grid" in cfg.target.methods:
                t = trials[trials.state == name] if trials is not None and len(trials) else None
                if t is None or t.empty:
                    return None
                mixes["grid"] = pick(cfg, t)[1]
            if what == "main":
                base = mixes.get(ab.BASE)
                jobs = [(m, mix, int(cfg.target.seeds)) for m, mix in mixes.items()]
            else:               # what ablations.run trains: each variant beside CausalMix-S on its seeds
                jobs = [(m, mix, n) for n, group in ab.seed_groups(cfg, base, mixes) for m, mix in group.items()]
            for m, mix, seeds in jobs:
                for s in range(seeds):
                    want[what] += 1
                    rows = stored[(stored.state == name) & (stored.seed == s)] if len(stored) else stored
                    have[what] += any(same_mixture(mix, {d: r[f"w_{d}"] for d in mix}) for _, r in rows.iterrows())
    return (f"reuse {have['main']} of {want['main']} for the kept proposals, train {want['main'] - have['main']}; "
            f"ablations (chapter 6): reuse {have['ablations']} of {want['ablations']}, "
            f"train {want['ablations'] - have['ablations']}")


def _noise(cfg: DictConfig) -> list[str]:
    """Chapter 2's noise-floor runs (power.pairs x power.seeds), retest runs (the sweep's first power.retest) and
    fresh-pool retest runs (its first power.pool_retest)."""
    from causalmix.experiments import power
    ids = [p * 1000 + s for p in range(int(cfg.power.pairs)) for s in range(int(cfg.power.seeds))]
    out = _reuse("noise-floor runs (chapter 2)", power.floor_store(cfg), ids, power.floor_manifest(cfg))
    n = min(int(cfg.power.get("retest", 0) or 0), int(cfg.sweep.n_runs))
    if n:
        out += _reuse("retest runs (chapter 2)", power.retest_store(cfg), range(n), power.retest_manifest(cfg))
    n = min(int(cfg.power.get("pool_retest", 0) or 0), int(cfg.sweep.n_runs))
    if n:
        out += _reuse("fresh-pool retest runs (chapter 2)", power.pool_retest_store(cfg), range(n),
                      power.pool_retest_manifest(cfg))
    return out


def _draws(cfg: DictConfig) -> list[str]:
    """Chapter 2's other draws of the instrument (power.base_seeds): a base and a sweep each; and the configured
    draw's sweep extended for the runs curve (power.curve.extend), in the sweep's own store."""
    from causalmix.experiments.validation import extended
    ext = extended(cfg)
    out = [] if ext is cfg else _reuse("proxy runs, extended for chapter 2's runs curve (power.curve.extend)",
                                       store_for(ext), range(ext.sweep.n_runs), sweep_manifest(ext))
    for x in cfg.power.base_seeds:
        c = OmegaConf.merge(cfg, {"seed": int(x)})
        out += [f"seed {x} (power.base_seeds): " + _base(c, "proxy"),
                *(f"seed {x} (power.base_seeds): " + line for line in _runs(c))]
    return out


def _long_cot(cfg: DictConfig) -> list[str]:
    """Chapter 7's stores (experiments/longcot.py): its sweep, Grid trials and target runs."""
    from causalmix.experiments import longcot as lc
    if "07_long_cot" not in (cfg.reproduce.notebooks or ["07_long_cot"]):
        return []
    lcfg = lc.config(cfg)
    out = [_base(lcfg, "target").replace("base model target", "long CoT base model target")
           + ("" if "reuse" in _base(lcfg, "target") else "; only if a target run below is missing")]
    for what, n in (("runs", lcfg.sweep.n_runs), ("grid", None), ("target", None)):
        st = lc.store(lcfg, what)
        have = len(list(st.dir.glob("run_*.csv"))) if st.dir.is_dir() else 0
        line = f"long CoT {what}: {have} stored in {_rel(st.dir)}" + (f" for {n}" if n else "")
        if not have:
            line += f"; why none: {_why(st, lc._manifest(lcfg, what))}"
        out.append(line)
    return out


def _habit(cfg: DictConfig) -> list[str]:
    """Chapter 5's habit sweep (sweep.design=habit) on the sweep's first analyses.observational.real_runs pools."""
    n = min(int(cfg.analyses.observational.real_runs), int(cfg.sweep.n_runs))
    c = OmegaConf.merge(cfg, {"sweep": {"design": "habit", "n_runs": n}})
    return ["habit sweep (chapter 5): " + line for line in _runs(c)]


def plan(cfg: DictConfig, what: str = "reproduce") -> list[str]:
    """Lines saying, per cached stage, reuse or recompute and why."""
    lines = [f"dry run ({what}, scale={cfg.scale.name}): nothing is computed or written", *_samples(cfg),
             _base(cfg, "proxy"), *_runs(cfg)]
    if what == "reproduce":
        lines += [_base(cfg, "target"), *_targets(cfg), *_noise(cfg), *_draws(cfg), *_habit(cfg), *_long_cot(cfg),
                  "notebooks: every notebook is executed again (fast where the stages above are reused), "
                  f"{int(OmegaConf.select(cfg, 'reproduce.jobs') or 1)} at a time (reproduce.jobs)"]
    return lines
