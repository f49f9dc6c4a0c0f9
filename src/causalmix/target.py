"""The main table: an 8x pool in a new state, each method's mixture, a 4x target model, paired seeds."""
from __future__ import annotations

import fnmatch
import sys
import time

import numpy as np
import pandas as pd
from omegaconf import DictConfig, OmegaConf
from tqdm.auto import tqdm

from . import lineage, pool as pools
from .config import config_hash, path
from .errors import ConfigError
from .proxy import finetune_and_score
from .store import RunStore
from .sweep import sweep_spec
from .world import World, base_model, rng_for

METHOD_LABELS = {"equal": "Equal", "natural": "Natural", "regmix": "RegMix",
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


def target_pool(world: World) -> tuple[dict, dict]:
    """A pool in a state no proxy saw (its own seed, optional pinned knobs), pool_factor x larger."""
    cfg = world.cfg
    rng = rng_for(cfg, 2, cfg.target.state_seed)
    fixed = OmegaConf.to_container(cfg.target.state, resolve=True) or {}
    unknown = [d for d in fixed if d not in world.domains]
    if unknown:
        raise ConfigError(f"target.state names unknown domains {unknown}: expected some of {world.domains}")
    state = pools.draw_state(world.domains, cfg.data.state, rng, fixed=fixed)
    pool = pools.build(world.pool_samples(), state, cfg.data.pool_size * cfg.target.pool_factor,
                       world.families, rng, width=cfg.data.state.difficulty_width)
    return state, pool


def fit_effect_model(cfg: DictConfig, runs: pd.DataFrame, domains: list[str]):
    from .estimator import MixtureEffectModel   # econml is imported only where it is used
    e = cfg.estimator
    model = MixtureEffectModel([f"w_{d}" for d in domains], covariate_columns(cfg, runs.columns),
                               reference=f"w_{e.reference}", estimator=e.name, model_y=e.model_y,
                               model_t=e.model_t, cv=e.cv, n_estimators=e.n_estimators,
                               min_samples_leaf=e.min_samples_leaf, max_depth=e.max_depth, honest=e.honest,
                               random_state=cfg.seed)
    return model.fit(runs, e.outcome)


def propose(cfg: DictConfig, runs: pd.DataFrame, domains: list[str], target_covs: dict, natural: dict,
            model=None) -> tuple[dict[str, dict], dict]:
    """Each method's mixture for the target pool, and the predicted gains of CausalMix's."""
    from .baselines import RegMix, equal_mixture
    from .policy import recommend
    w_cols = [f"w_{d}" for d in domains]
    ref = {"natural": natural, "equal": equal_mixture(domains),
           "mean": dict(zip(domains, runs[w_cols].mean().to_numpy()))}[cfg.policy.reference_mixture]
    out, info = {}, {}
    for m in cfg.target.methods:
        if m == "equal":
            out[m] = equal_mixture(domains)
        elif m == "natural":
            out[m] = dict(natural)
        elif m == "regmix":
            r = cfg.baselines.regmix
            reg = RegMix(seed=cfg.seed).fit(runs[w_cols].rename(columns=dict(zip(w_cols, domains))),
                                            runs[cfg.estimator.outcome].to_numpy())
            out[m] = reg.propose(n_samples=r.n_samples, top_k=r.top_k, seed=cfg.seed)
        else:
            model = model or fit_effect_model(cfg, runs, domains)
            X = pd.DataFrame([target_covs])[model.covariates]
            p = cfg.policy
            rec = recommend(model, X, np.array([ref[d] for d in domains]),
                            policy="analytic" if m == "causalmix_a" else "search", radius=p.radius, z=p.z,
                            floor=p.floor, n_candidates=p.search_candidates, seed=cfg.seed)
            out[m] = {d: float(rec.iloc[0][f"w_{d}"]) for d in domains}
            info[m] = float(rec.iloc[0]["predicted_gain"])
    return out, info


def target_manifest(cfg: DictConfig) -> dict:
    spec = {"sweep": sweep_spec(cfg), "target": OmegaConf.to_container(cfg.target, resolve=True),
            "model": OmegaConf.to_container(cfg.model.target)}
    return lineage.manifest(spec, "target")


def target_store(cfg: DictConfig) -> RunStore:
    """Keyed by the sweep (config and code), the target config and model, and the code of a target run."""
    man = target_manifest(cfg)
    return RunStore(path(cfg, "out") / "target", config_hash({"config": man["config_key"],
                                                              "code": lineage.digest(man["code"])}))


def run_targets(world: World, mixtures: dict[str, dict], pool: dict, log=print) -> pd.DataFrame:
    """Every method x seed; a seed fixes the training draw and order, so methods pair by seed."""
    cfg = world.cfg
    store = target_store(cfg)
    base = None
    jobs = [(m, s) for s in range(cfg.target.seeds) for m in mixtures]
    rows = []
    for k, (m, s) in enumerate(tqdm(jobs, desc="target runs", unit="run", file=sys.stderr, mininterval=30)):
        mix = mixtures[m]
        run_id = int(config_hash({"m": m, "s": s, "w": {d: round(w, 6) for d, w in mix.items()}}), 16) % 10**9
        if not store.done(run_id):
            lineage.write_manifest(store.dir / "manifest.json", target_manifest(cfg))
            base = base or base_model(cfg, "target", log=log)
            t0 = time.perf_counter()
            rng = rng_for(cfg, 3, s)
            texts = pools.draw_training_set(pool, mix, cfg.proxy.samples * cfg.target.sample_factor, rng)
            scores = finetune_and_score(world, base, texts, seed=1000 + s, settings=cfg.target)
            store.write(run_id, {"run_id": run_id, "method": m, "seed": s, "device": cfg.device,
                                 **{f"w_{d}": w for d, w in mix.items()}, **scores,
                                 "wall_seconds": time.perf_counter() - t0})
        rows.append(pd.read_csv(store.file(run_id)))
    return pd.concat(rows, ignore_index=True)
