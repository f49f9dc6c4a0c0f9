"""Compose the Hydra config and reject bad values before any long work starts."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

from hydra import compose as hydra_compose
from hydra import initialize_config_dir
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from .errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parents[2]
CONF_DIR = REPO_ROOT / "conf"


def compose(overrides: list[str] | tuple[str, ...] = ()) -> DictConfig:
    """The one way every entry point (CLI, notebooks, tests) builds its config."""
    overrides = [o for o in overrides if o]
    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            cfg = hydra_compose(config_name="config", overrides=list(overrides))
    except (HydraException, OmegaConfBaseException) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ConfigError(f"bad config override in {list(overrides)}: {first}{_options_hint(first)}") from None
    validate(cfg)
    return cfg


def _options_hint(message: str) -> str:
    """Name the choices when Hydra could not find a group option (e.g. scale=huge)."""
    import re
    m = re.search(r"Could not find '(\w+)/", message)
    if not m or not (CONF_DIR / m.group(1)).is_dir():
        return ""
    opts = sorted(p.stem for p in (CONF_DIR / m.group(1)).glob("*.yaml"))
    return f"; expected {m.group(1)}= one of {opts}"


def path(cfg: DictConfig, key: str) -> Path:
    """Config paths are relative to the repo root, wherever the caller runs (notebooks run in notebooks/)."""
    p = Path(OmegaConf.select(cfg, f"paths.{key}"))
    return p if p.is_absolute() else REPO_ROOT / p


def config_hash(node) -> str:
    """Short stable hash of a (resolved) config subtree: keys cached models and finished runs."""
    obj = OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else node
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:12]


def _positive(cfg: DictConfig, key: str, kind=int) -> None:
    v = OmegaConf.select(cfg, key)
    if not isinstance(v, (int, float)) or isinstance(v, bool) or v <= 0 or (kind is int and int(v) != v):
        what = "a positive integer" if kind is int else "a positive number"
        raise ConfigError(f"{key}={v!r}: expected {what}")


def _range(cfg: DictConfig, key: str, lo: float, hi: float) -> None:
    v = OmegaConf.select(cfg, key)
    ok = isinstance(v, (list, tuple)) or OmegaConf.is_list(v)
    if not ok or len(v) != 2 or not all(isinstance(x, (int, float)) for x in v) or not lo <= v[0] <= v[1] <= hi:
        raise ConfigError(f"{key}={v!r}: expected [low, high] with {lo} <= low <= high <= {hi}")


def validate(cfg: DictConfig) -> None:
    """Every check is cheap; each failure is one line naming the value and what was expected."""
    for key in ("data.sample_chars", "data.pool_size", "data.bench_items", "pretrain.steps",
                "pretrain.batch_size", "proxy.samples", "proxy.batch_size", "sweep.n_runs",
                "target.pool_factor", "target.sample_factor", "target.seeds", "target.batch_size",
                "model.context", "baselines.regmix.n_samples", "baselines.regmix.top_k",
                "estimator.cv", "estimator.n_estimators", "estimator.min_samples_leaf",
                "policy.search_candidates", "threads"):
        _positive(cfg, key)
    for key in ("pretrain.lr", "proxy.lr", "proxy.epochs", "target.lr", "target.epochs",
                "sweep.mixture.alpha", "policy.radius"):
        _positive(cfg, key, float)
    for key in ("noise", "dup", "trunc", "difficulty"):
        _range(cfg, f"data.state.{key}", 0.0, 1.0)
    _range(cfg, "data.state.amount", 1e-6, 1.0)
    if cfg.data.sample_chars > cfg.model.context:
        raise ConfigError(f"data.sample_chars={cfg.data.sample_chars}: expected <= model.context={cfg.model.context}")
    domains = cfg.data.domains
    if not domains or len(domains) < 2:
        raise ConfigError(f"data.domains has {len(domains or [])} domain(s): expected at least 2")
    for name, spec in domains.items():
        if not isinstance(spec, DictConfig) or "kind" not in spec:
            raise ConfigError(f"data.domains.{name}={spec!r}: expected a mapping with a 'kind'")
    if cfg.estimator.name not in ("causal_forest", "linear"):
        raise ConfigError(f"estimator.name={cfg.estimator.name!r}: expected causal_forest or linear")
    if cfg.estimator.reference not in domains:
        raise ConfigError(f"estimator.reference={cfg.estimator.reference!r}: expected one of {list(domains)}")
    if cfg.estimator.outcome not in ("avg_dev", "avg_margin"):
        raise ConfigError(f"estimator.outcome={cfg.estimator.outcome!r}: expected avg_dev or avg_margin")
    if cfg.policy.reference_mixture not in ("natural", "equal", "mean"):
        raise ConfigError(f"policy.reference_mixture={cfg.policy.reference_mixture!r}: expected natural, equal or mean")
    if not 0 <= cfg.policy.floor < 1 / len(domains):
        raise ConfigError(f"policy.floor={cfg.policy.floor}: expected 0 <= floor < 1/{len(domains)}")
    if cfg.sweep.mixture.prior not in ("uniform", "natural"):
        raise ConfigError(f"sweep.mixture.prior={cfg.sweep.mixture.prior!r}: expected uniform or natural")
    known = {"equal", "natural", "regmix", "causalmix_a", "causalmix_s"}
    bad = [m for m in cfg.target.methods if m not in known]
    if bad:
        raise ConfigError(f"target.methods has {bad}: expected a subset of {sorted(known)}")
    if cfg.device not in ("cpu", "cuda"):
        raise ConfigError(f"device={cfg.device!r}: expected cpu or cuda")
    split = dict(cfg.data.split)
    if set(split) != {"pretrain", "pool", "bench"} or any(v <= 0 for v in split.values()) \
            or abs(sum(split.values()) - 1) > 1e-6:
        raise ConfigError(f"data.split={split}: expected positive pretrain/pool/bench fractions summing to 1")
