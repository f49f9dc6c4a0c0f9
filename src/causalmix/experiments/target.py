"""The main table: an 8x pool in a new state, each method's mixture, a 4x target model, paired seeds."""
from __future__ import annotations

import fnmatch
import sys
import time

import numpy as np
import pandas as pd
from omegaconf import DictConfig, OmegaConf
from tqdm.auto import tqdm

from causalmix import lineage
from causalmix.data import pool as pools
from causalmix.config import config_hash, path
from causalmix.errors import ConfigError
from causalmix.experiments.proxy import finetune_and_score
from causalmix.experiments.store import RunStore
from causalmix.experiments.sweep import sweep_spec
from causalmix.experiments.world import World, base_model, rng_for

METHOD_LABELS = {"equal": "Equal", "natural": "Natural", "regmix": "RegMix", "dmo": "DMO", "grid": "Grid",
                 "causalmix_a": "CausalMix-A", "causalmix_s": "CausalMix-S"}


def covariate_columns(cfg: DictConfig, columns) -> list[str]:
    """Resolve the estimator's covariate names and globs against a runs table's columns."""
    out = []
    for pat in cfg.estimator.covariates:
        hits = [c for c in columns if fnmatch.fnmatchcase(c, pat)]
        if not hits:
            raise ConfigError(f"estimator.covariates entry {pat!r} matches no measured covariate "
                              f"(have e.g. {[c for c in columns if c.startswith(('nl_', 'ws_', 'pool_'))][:6]})")
        out += [h for h in hits if h not in out]
    return out


def state_pins(cfg: DictConfig, name: str) -> dict:
    """The latent knobs a named target state pins (target.catalog.<name>); the rest are drawn."""
    if name not in cfg.target.catalog:
        raise ConfigError(f"target state {name!r}: expected one of target.catalog {list(cfg.target.catalog)}")
    return OmegaConf.to_container(cfg.target.catalog[name], resolve=True) or {}


def target_pool(world: World, name: str = "drawn") -> tuple[dict, dict]:
    """A pool in a state no proxy saw, pool_factor x larger: drawn with target.state_seed, then the named
    state's pinned knobs on top. Every named state shares that draw, so an atypical state is the typical
    one plus a stated damage."""
    cfg = world.cfg
    rng = rng_for(cfg, 2, cfg.target.state_seed)
    state = pools.draw_state(world.domains, cfg.data.state, rng, fixed=state_pins(cfg, name))
    pool = pools.build(world.pool_samples(), state, cfg.data.pool_size * cfg.target.pool_factor,
                       world.families, rng, width=cfg.data.state.difficulty_width)
    return state, pool


def fit_effect_model(cfg: DictConfig, runs: pd.DataFrame, domains: list[str]):
    from causalmix.causal.estimator import MixtureEffectModel   # econml is imported only where it is used
    e = cfg.estimator
    model = MixtureEffectModel([f"w_{d}" for d in domains], covariate_columns(cfg, runs.columns),
                               reference=f"w_{e.reference}", estimator=e.name, model_y=e.model_y,
                               model_t=e.model_t, cv=e.cv, n_estimators=e.n_estimators,
                               min_samples_leaf=e.min_samples_leaf, max_depth=e.max_depth, honest=e.honest,
                               random_state=cfg.seed, features=e.get("features", "linear"),
                               training_set=list(e.get("training_set") or []),
                               nuisance_trees=e.get("nuisance_trees", 100))
    return model.fit(runs, e.outcome)


def fit_methods(cfg: DictConfig, runs: pd.DataFrame, domains: list[str]) -> dict:
    """The fits every target state shares: the causal model, and RegMix's and DMO's (state-agnostic) mixtures."""
    from causalmix.causal.baselines import RegMix
    out = {}
    if {"causalmix_a", "causalmix_s"} & set(cfg.target.methods):
        out["model"] = fit_effect_model(cfg, runs, domains)
    if "regmix" in cfg.target.methods:
        w_cols, r = [f"w_{d}" for d in domains], cfg.baselines.regmix
        reg = RegMix(seed=cfg.seed).fit(runs[w_cols].rename(columns=dict(zip(w_cols, domains))),
                                        runs[cfg.estimator.outcome].to_numpy())
        out["regmix"] = reg.propose(n_samples=r.n_samples, top_k=r.top_k, seed=cfg.seed)
    if "dmo" in cfg.target.methods:
        out["dmo"] = fit_dmo(cfg, runs, domains).propose(floor=cfg.policy.floor)
    return out


def per_domain_prefix(outcome: str) -> str:
    """The per-domain columns whose mean is the outcome: acc_<d> for avg_dev, margin_<d> for avg_margin."""
    prefixes = {"avg_dev": "acc_", "avg_margin": "margin_"}
    if outcome not in prefixes:
        raise ConfigError(f"the DMO baseline fits per-domain laws of estimator.outcome={outcome!r}; "
                          f"expected one of {', '.join(prefixes)}")
    return prefixes[outcome]


def fit_dmo(cfg: DictConfig, runs: pd.DataFrame, domains: list[str]):
    """The DMO-style per-domain laws (causal/dmo.py), fitted on the proxy runs, state ignored."""
    from causalmix.causal.dmo import DMOLaw
    pre = per_domain_prefix(cfg.estimator.outcome)
    return DMOLaw().fit(runs[[f"w_{d}" for d in domains]].set_axis(domains, axis=1),
                        runs[[f"{pre}{d}" for d in domains]].set_axis(domains, axis=1))


def reference_mixture(cfg: DictConfig, runs: pd.DataFrame, domains: list[str], natural: dict) -> dict:
    """The policies' reference (policy.reference_mixture): the target pool's natural mixture, Equal, or the
    proxy runs' mean mixture."""
    from causalmix.causal.baselines import equal_mixture
    w_cols = [f"w_{d}" for d in domains]
    return {"natural": natural, "equal": equal_mixture(domains),
            "mean": dict(zip(domains, runs[w_cols].mean().to_numpy()))}[cfg.policy.reference_mixture]


def propose(cfg: DictConfig, runs: pd.DataFrame, domains: list[str], target_covs: dict, natural: dict,
            fits: dict | None = None) -> tuple[dict[str, dict], dict]:
    """Each method's mixture for the target pool, and the predicted gains of CausalMix's."""
    from causalmix.causal.baselines import equal_mixture
    from causalmix.causal.policy import recommend
    fits = fits if fits is not None else fit_methods(cfg, runs, domains)
    ref = reference_mixture(cfg, runs, domains, natural)
    out, info = {}, {}
    for m in cfg.target.methods:
        if m == "equal":
            out[m] = equal_mixture(domains)
        elif m == "natural":
            out[m] = dict(natural)
        elif m in ("regmix", "dmo"):
            out[m] = dict(fits[m])
        elif m == "grid":
            continue        # per state, from proxy trials on its pool: mainresults.prepare (experiments/grid.py)
        else:
            model = fits["model"]
            X = pd.DataFrame([target_covs])[model.inputs]
            p = cfg.policy
            rec = recommend(model, X, np.array([ref[d] for d in domains]),
                            policy="analytic" if m == "causalmix_a" else "search", radius=p.radius, z=p.z,
                            floor=p.floor, n_candidates=p.search_candidates, seed=cfg.seed,
                            step=p.get("analytic_step", "full"))
            out[m] = {d: float(rec.iloc[0][f"w_{d}"]) for d in domains}
            info[m] = float(rec.iloc[0]["predicted_gain"])
    return out, info


def tilted_grid(domains: list[str], tilt: float) -> dict[str, dict]:
    """Equal ("equal"), and each domain (named by it) at share `tilt` with the rest shared equally."""
    k = len(domains)
    out = {"equal": {d: 1 / k for d in domains}}
    for d in domains:
        out[d] = {e: tilt if e == d else (1 - tilt) / (k - 1) for e in domains}
    return out


def same_mixture(a: dict, b: dict, tol: float = 1e-6) -> bool:
    """Equal shares to the store's resolution (run ids round shares to 6 decimals)."""
    return all(abs(a[d] - b[d]) < tol for d in a)


def oracle_candidates(cfg: DictConfig, domains: list[str]) -> dict[str, dict]:
    """A coarse grid for the oracle reference: tilted_grid at target.oracle.tilt, named grid:<point>."""
    return {f"grid:{k}": w for k, w in tilted_grid(domains, float(cfg.target.oracle.tilt)).items()}


# Which states run, which methods, how many seeds and the oracle's grid choose runs; they do not change
# what a run computes, so they stay out of the store's key (a new state or seed reuses every other run).
_CHOOSERS = ("states", "catalog", "methods", "seeds", "oracle")


def target_manifest(cfg: DictConfig) -> dict:
    settings = {k: v for k, v in OmegaConf.to_container(cfg.target, resolve=True).items() if k not in _CHOOSERS}
    spec = {"sweep": sweep_spec(cfg), "target": settings, "model": OmegaConf.to_container(cfg.model.target)}
    return lineage.manifest(spec, "target")


def target_store(cfg: DictConfig) -> RunStore:
    """Keyed by the sweep (config and code), the target config and model, and the code of a target run."""
    return RunStore(path(cfg, "out") / "target", lineage.store_key(target_manifest(cfg)))


def target_state(cfg: DictConfig, name: str) -> dict:
    """target_pool's latent state alone, without building the world or the pool (the dry run's natural
    mixture); tests/test_mainresults.py checks it is target_pool's."""
    rng = rng_for(cfg, 2, cfg.target.state_seed)
    return pools.draw_state(list(cfg.data.domains), cfg.data.state, rng, fixed=state_pins(cfg, name))


def state_store(cfg: DictConfig) -> RunStore:
    """What the methods see of each target pool, its measured covariates: one record per state. Measured once
    and kept (and shipped with the target runs) rather than measured again on every machine: the measurement
    runs the proxy base in bf16, which rounds differently on another CPU (by up to 2e-5, relative), and a
    covariate that crosses one of the causal forest's split points changes its effect estimates by a step. On a
    Zen 3 without bf16 instructions that moved CausalMix-A's mixture by up to 0.011 per domain, so every one of
    its shipped target runs was recomputed there. Keyed by the sweep (its base and measurement settings), the
    target pools' draw (pool_factor, state_seed) and the code that measures them (lineage `states`); a state's
    pins name its record."""
    return RunStore(path(cfg, "out") / "states", lineage.store_key(state_manifest(cfg)))


def state_manifest(cfg: DictConfig) -> dict:
    spec = {"sweep": sweep_spec(cfg), "pool_factor": cfg.target.pool_factor, "state_seed": cfg.target.state_seed}
    return lineage.manifest(spec, "states")


def state_id(cfg: DictConfig, name: str) -> int:
    return int(config_hash({"state": state_pins(cfg, name)}), 16) % 10**9


def measured_state(world: World, scorer, name: str, pool: dict, log=print) -> dict:
    """A target state's covariates (proxy.measure_pool with the proxy base), from `state_store` when stored,
    else measured and stored; always as read back from the store, so a fresh measurement and a reused one
    propose the same mixtures."""
    from causalmix.experiments.proxy import measure_pool
    cfg = world.cfg
    store, rid = state_store(cfg), state_id(cfg, name)
    if not store.done(rid):
        lineage.write_manifest(store.dir / "manifest.json", state_manifest(cfg))
        log(f"target state {name}: measuring its pool's covariates")
        store.write(rid, {"run_id": rid, "state": name, **measure_pool(world, scorer, pool, rng_for(cfg, 6))})
    return stored_state(cfg, name)


def stored_state(cfg: DictConfig, name: str) -> dict | None:
    """A target state's covariates as `state_store` holds them (None when not measured yet): what
    measured_state returns, and what the dry run reads without building the world."""
    from causalmix.experiments.store import CHECK
    store, rid = state_store(cfg), state_id(cfg, name)
    if not store.done(rid):
        return None
    row = store.read(rid).iloc[0].to_dict()
    return {k: float(v) for k, v in row.items() if k not in ("run_id", "state", CHECK)}


def run_targets(world: World, mixtures: dict[str, dict], pool: dict, state: str = "drawn",
                log=print) -> pd.DataFrame:
    """Every method x seed on one target state's pool; a seed fixes the training draw and order, so methods
    pair by (state, seed). A run is keyed by its state's pins, method, seed and mixture."""
    cfg = world.cfg
    store = target_store(cfg)
    pins = state_pins(cfg, state)
    base = None
    jobs = [(m, s) for s in range(cfg.target.seeds) for m in mixtures]
    rows = []
    for m, s in tqdm(jobs, desc=f"target runs ({state})", unit="run", file=sys.stderr, mininterval=30):
        mix = mixtures[m]
        run_id = int(config_hash({"state": pins, "m": m, "s": s,
                                  "w": {d: round(w, 6) for d, w in mix.items()}}), 16) % 10**9
        if not store.done(run_id):
            lineage.write_manifest(store.dir / "manifest.json", target_manifest(cfg))
            base = base or base_model(cfg, "target", log=log)
            t0 = time.perf_counter()
            rng = rng_for(cfg, 3, s)
            texts = pools.draw_training_set(pool, mix, cfg.proxy.samples * cfg.target.sample_factor, rng)
            scores = finetune_and_score(world, base, texts, seed=1000 + s, settings=cfg.target)
            store.write(run_id, {"run_id": run_id, "state": state, "method": m, "seed": s, "device": cfg.device,
                                 **{f"w_{d}": w for d, w in mix.items()}, **scores,
                                 "wall_seconds": time.perf_counter() - t0})
        rows.append(store.read(run_id).assign(state=state))
    return pd.concat(rows, ignore_index=True)
