"""Compose the Hydra config and reject bad values before any long work starts."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

from hydra import compose as hydra_compose
from hydra import initialize_config_dir
from hydra.errors import HydraException
from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from causalmix.errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parents[2]
CONF_DIR = REPO_ROOT / "conf"


def compose(overrides: list[str] | tuple[str, ...] = ()) -> DictConfig:
    """The one way every entry point (CLI, notebooks, tests) builds its config."""
    overrides = [o for o in overrides if o]
    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            cfg = hydra_compose(config_name="config", overrides=list(overrides))
    except (HydraException, OmegaConfBaseException, ValueError) as e:   # ValueError: e.g. an override "=3"
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ConfigError(f"bad config override in {list(overrides)}: {first}{_options_hint(first)}{_key_hint(first)}"
                          f"{_grammar_hint(first)}") from None
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


def _grammar_hint(message: str) -> str:
    if message.startswith(("Error parsing override", "no viable alternative", "mismatched input",
                           "Config group override must be")):
        return "; expected key=value overrides such as data.pool_size=400 or scale=smoke"
    return ""


def _key_hint(message: str) -> str:
    """Name the existing keys when an override names one that is not in the config (e.g. data.pol_size=3)."""
    import difflib
    import re
    m = re.search(r"Could not override '([\w.]+)'", message)
    if not m:
        return ""
    key = m.group(1)
    parent, _, leaf = key.rpartition(".")
    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            node = hydra_compose(config_name="config")
        node = OmegaConf.select(node, parent) if parent else node
    except Exception:  # only a hint: never mask the original error
        node = None
    if not isinstance(node, DictConfig):
        return f"; expected an existing key (use +{key}=... to add a new one)"
    if leaf in node:  # the key exists; the value did not fit it (e.g. a mapping with unknown keys)
        have = node[leaf]
        shape = f"a mapping with keys among {list(have)}" if isinstance(have, DictConfig) else f"a value like {have!r}"
        return f"; expected {shape} for {key}"
    near = difflib.get_close_matches(leaf, list(node), n=3)
    also = f" (did you mean {', '.join(f'{parent}.{k}' if parent else k for k in near)}?)" if near else ""
    return f"; expected an existing key{also}, or +{key}=... to add a new one"


def path(cfg: DictConfig, key: str) -> Path:
    """Config paths are relative to the repo root, wherever the caller runs (notebooks run in notebooks/)."""
    p = Path(OmegaConf.select(cfg, f"paths.{key}"))
    return p if p.is_absolute() else REPO_ROOT / p


def config_hash(node) -> str:
    """Short stable hash of a (resolved) config subtree: keys cached models and finished runs."""
    obj = OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else node
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:12]


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _positive(cfg: DictConfig, key: str, kind=int) -> None:
    v = OmegaConf.select(cfg, key)
    if not _is_number(v) or v <= 0 or (kind is int and int(v) != v):
        what = "a positive integer" if kind is int else "a positive number"
        raise ConfigError(f"{key}={v!r}: expected {what}")


def _number(cfg: DictConfig, key: str, lo: float, hi: float, lo_open=False, hi_open=False) -> float:
    """A number in [lo, hi] (either end open on request); the message names the interval."""
    v = OmegaConf.select(cfg, key)
    ok = _is_number(v) and v == v and (lo < v if lo_open else lo <= v) and (v < hi if hi_open else v <= hi)
    if not ok:
        raise ConfigError(f"{key}={v!r}: expected a number in {'(' if lo_open else '['}{lo:g}, {hi:g}"
                          f"{')' if hi_open else ']'}")
    return v


def _natural(cfg: DictConfig, key: str) -> None:
    """A seed: an integer >= 0 (numpy refuses negative seeds)."""
    v = OmegaConf.select(cfg, key)
    if not isinstance(v, int) or isinstance(v, bool) or v < 0:
        raise ConfigError(f"{key}={v!r}: expected an integer >= 0")


def _strings(cfg: DictConfig, key: str, allow_null=False) -> None:
    v = OmegaConf.select(cfg, key)
    if v is None and allow_null:
        return
    if not OmegaConf.is_list(v) or not all(isinstance(x, str) and x for x in v):
        raise ConfigError(f"{key}={v!r}: expected a list of names{' or null' if allow_null else ''}")


def _range(cfg: DictConfig, key: str, lo: float, hi: float) -> None:
    v = OmegaConf.select(cfg, key)
    ok = isinstance(v, (list, tuple)) or OmegaConf.is_list(v)
    if not ok or len(v) != 2 or not all(isinstance(x, (int, float)) for x in v) or not lo <= v[0] <= v[1] <= hi:
        raise ConfigError(f"{key}={v!r}: expected [low, high] with {lo} <= low <= high <= {hi}")


def validate(cfg: DictConfig) -> None:
    """Every check is cheap; each failure is one line naming the value and what was expected."""
    try:  # an interpolation that cannot resolve (e.g. ${scale.name} after ~scale) fails here, not mid-run
        OmegaConf.to_container(cfg, resolve=True)
    except OmegaConfBaseException as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ConfigError(f"config does not resolve: {first}; expected every ${{...}} to name an existing key") from None
    for key in ("data.sample_chars", "data.pool_size", "data.bench_items", "pretrain.steps",
                "pretrain.batch_size", "proxy.samples", "proxy.batch_size", "sweep.n_runs",
                "target.pool_factor", "target.sample_factor", "target.seeds", "target.batch_size",
                "model.context", "baselines.regmix.n_samples", "baselines.regmix.top_k",
                "estimator.cv", "estimator.n_estimators", "estimator.min_samples_leaf", "estimator.nuisance_trees",
                "policy.search_candidates", "threads", "power.pairs", "reproduce.jobs"):
        _positive(cfg, key)
    if not isinstance(cfg.power.seeds, int) or isinstance(cfg.power.seeds, bool) or cfg.power.seeds < 2:
        raise ConfigError(f"power.seeds={cfg.power.seeds!r}: expected an integer >= 2 (a spread needs two seeds)")
    for key in ("retest", "pool_retest"):
        rt = OmegaConf.select(cfg, f"power.{key}", default=0)
        if not isinstance(rt, int) or isinstance(rt, bool) or rt == 1 or rt < 0:
            raise ConfigError(f"power.{key}={rt!r}: expected 0 (none) or an integer >= 2 (a correlation needs two runs)")
    bs = OmegaConf.select(cfg, "power.base_seeds", default=[])
    if not isinstance(bs, ListConfig | list) or any(not isinstance(x, int) or isinstance(x, bool) or x < 0 for x in bs):
        raise ConfigError(f"power.base_seeds={OmegaConf.to_container(bs) if isinstance(bs, ListConfig) else bs!r}: "
                          "expected a list of non-negative integer seeds")
    sizes = OmegaConf.select(cfg, "power.curve.sizes", default=[])
    if not isinstance(sizes, ListConfig | list) or any(not isinstance(x, int) or isinstance(x, bool) or x < 15
                                                       for x in sizes):
        raise ConfigError(f"power.curve.sizes={OmegaConf.to_container(sizes) if isinstance(sizes, ListConfig) else sizes!r}: "
                          "expected a list of run counts, each an integer >= 15 (5 held-out folds, each fit on >= 12 runs)")
    if OmegaConf.select(cfg, "power.curve") is not None:
        _positive(cfg, "power.curve.reps")
        ext = OmegaConf.select(cfg, "power.curve.extend", default=0)
        if not isinstance(ext, int) or isinstance(ext, bool) or ext < 0:
            raise ConfigError(f"power.curve.extend={ext!r}: expected a run count >= 0 (at most sweep.n_runs: none)")
    if OmegaConf.select(cfg, "power.heldout") is not None:
        _positive(cfg, "power.heldout.repeats")
        folds = OmegaConf.select(cfg, "power.heldout.folds")
        if not isinstance(folds, int) or isinstance(folds, bool) or folds < 2:
            raise ConfigError(f"power.heldout.folds={folds!r}: expected an integer >= 2")
    for key in ("pretrain.lr", "proxy.lr", "proxy.epochs", "target.lr", "target.epochs",
                "sweep.mixture.alpha"):
        _positive(cfg, key, float)
    for key in ("pretrain.precision", "proxy.precision", "target.precision"):
        v = OmegaConf.select(cfg, key, default="fp32")
        if v not in ("fp32", "bf16"):
            raise ConfigError(f"{key}={v!r}: expected one of ['fp32', 'bf16']")
    for key in ("noise", "dup", "trunc", "difficulty"):
        _range(cfg, f"data.state.{key}", 0.0, 1.0)
    _range(cfg, "data.state.amount", 1e-6, 1.0)
    for key in ("seed", "target.state_seed", "sweep.seed_offset"):
        _natural(cfg, key)
    for key in ("cache", "out"):
        v = OmegaConf.select(cfg, f"paths.{key}")
        if not isinstance(v, str) or not v.strip():
            raise ConfigError(f"paths.{key}={v!r}: expected a directory path")
    if cfg.data.sample_chars > cfg.model.context:
        raise ConfigError(f"data.sample_chars={cfg.data.sample_chars}: expected <= model.context={cfg.model.context}")
    for size in ("proxy", "target"):
        for key in ("n_layer", "n_head", "n_embd"):
            _positive(cfg, f"model.{size}.{key}")
        if cfg.model[size].n_embd % cfg.model[size].n_head:
            raise ConfigError(f"model.{size}.n_embd={cfg.model[size].n_embd}: expected a multiple of "
                              f"model.{size}.n_head={cfg.model[size].n_head}")
        _number(cfg, f"model.{size}.dropout", 0, 1, hi_open=True)
    _validate_domains(cfg)
    domains = cfg.data.domains
    _number(cfg, "data.state.difficulty_width", 0, 1, lo_open=True)
    _positive(cfg, "data.covariates.score_samples")
    _number(cfg, "data.covariates.hes_top", 0, 1, lo_open=True)
    _number(cfg, "proxy.weight_decay", 0, float("inf"))
    _validate_estimator(cfg, domains)
    if cfg.policy.reference_mixture not in ("natural", "equal", "mean"):
        raise ConfigError(f"policy.reference_mixture={cfg.policy.reference_mixture!r}: expected natural, equal or mean")
    _number(cfg, "policy.radius", 0, 1)
    if OmegaConf.select(cfg, "policy.analytic_step", default="full") not in ("full", "scaled"):
        raise ConfigError(f"policy.analytic_step={cfg.policy.analytic_step!r}: expected full or scaled")
    _number(cfg, "policy.z", 0, float("inf"))
    floor = OmegaConf.select(cfg, "policy.floor")
    if not _is_number(floor) or not 0 <= floor < 1 / len(domains):
        raise ConfigError(f"policy.floor={floor!r}: expected 0 <= floor < 1/{len(domains)} (one share per domain)")
    if cfg.sweep.mixture.prior not in ("uniform", "natural"):
        raise ConfigError(f"sweep.mixture.prior={cfg.sweep.mixture.prior!r}: expected uniform or natural")
    share = OmegaConf.select(cfg, "sweep.mixture.min_share")
    if not _is_number(share) or not 0 <= share < 1 / len(domains):
        raise ConfigError(f"sweep.mixture.min_share={share!r}: expected 0 <= min_share < 1/{len(domains)}")
    design = OmegaConf.select(cfg, "sweep.design", default="randomised")
    if design not in ("randomised", "habit"):
        raise ConfigError(f"sweep.design={design!r}: expected randomised or habit")
    gamma = OmegaConf.select(cfg, "sweep.habit.confounding", default=0.0)
    if not _is_number(gamma) or gamma < 0:
        raise ConfigError(f"sweep.habit.confounding={gamma!r}: expected a number >= 0")
    n_cal = OmegaConf.select(cfg, "sweep.habit.calibration", default=2)
    if not isinstance(n_cal, int) or isinstance(n_cal, bool) or n_cal < 2:
        raise ConfigError(f"sweep.habit.calibration={n_cal!r}: expected an integer >= 2 (pools to standardise ws by)")
    real = OmegaConf.select(cfg, "analyses.observational.real_runs", default=20)
    if not isinstance(real, int) or isinstance(real, bool) or real < 20:
        raise ConfigError(f"analyses.observational.real_runs={real!r}: expected an integer >= 20 (two halves of "
                          "at least 10 runs, the estimator's minimum)")
    _strings(cfg, "target.methods")
    known = {"equal", "natural", "regmix", "dmo", "grid", "causalmix_a", "causalmix_s"}
    bad = [m for m in cfg.target.methods if m not in known]
    if bad:
        raise ConfigError(f"target.methods has {bad}: expected a subset of {sorted(known)}")
    _validate_target_state(cfg, domains)
    if cfg.baselines.regmix.top_k > cfg.baselines.regmix.n_samples:
        raise ConfigError(f"baselines.regmix.top_k={cfg.baselines.regmix.top_k}: expected <= "
                          f"baselines.regmix.n_samples={cfg.baselines.regmix.n_samples}")
    if cfg.device not in ("cpu", "cuda"):
        raise ConfigError(f"device={cfg.device!r}: expected cpu or cuda")
    split = OmegaConf.select(cfg, "data.split")
    if not isinstance(split, DictConfig) or set(split) != {"pretrain", "pool", "bench"} \
            or not all(_is_number(v) and v > 0 for v in split.values()) or abs(sum(split.values()) - 1) > 1e-6:
        shown = dict(split) if isinstance(split, DictConfig) else split
        raise ConfigError(f"data.split={shown!r}: expected positive pretrain/pool/bench fractions summing to 1")
    _strings(cfg, "reproduce.notebooks", allow_null=True)


def _validate_domains(cfg: DictConfig) -> None:
    """Each domain's spec (kind, keys, a JSONL file that exists and is not empty) and the pretraining corpus."""
    from causalmix.data import domains as dom# numpy/scipy: only once a config is composed
    domains = OmegaConf.select(cfg, "data.domains")
    if not isinstance(domains, DictConfig):
        raise ConfigError(f"data.domains={domains!r}: expected a mapping of domain name -> {{kind: ...}}")
    if len(domains) < 2:
        raise ConfigError(f"data.domains has {len(domains)} domain(s): expected at least 2")
    for name, spec in domains.items():
        if not isinstance(spec, DictConfig) or "kind" not in spec:
            raise ConfigError(f"data.domains.{name}={spec!r}: expected a mapping with a 'kind'")
        dom.check_spec(name, OmegaConf.to_container(spec, resolve=True), cfg.data.sample_chars)
    corpora = sorted(k for k, (_, corpus) in dom.KINDS.items() if corpus is not None)
    if cfg.pretrain.corpus not in corpora:
        raise ConfigError(f"pretrain.corpus={cfg.pretrain.corpus!r}: expected one of {corpora}")


def _validate_estimator(cfg: DictConfig, domains) -> None:
    e = cfg.estimator
    if e.name not in ("causal_forest", "linear"):
        raise ConfigError(f"estimator.name={e.name!r}: expected causal_forest or linear")
    if not isinstance(e.reference, str) or e.reference not in domains:
        raise ConfigError(f"estimator.reference={e.reference!r}: expected one of {list(domains)}")
    if e.get("features", "linear") not in ("linear", "sqrt"):
        raise ConfigError(f"estimator.features={e.features!r}: expected linear or sqrt")
    terms = list(e.get("training_set") or [])
    prefixes = ("repetition", "nl", "hes", "ws", "dup", "len", "share")   # data/covariates.py: measured per domain
    bad = [t for t in terms if t not in prefixes]
    if bad or len(set(terms)) != len(terms):
        raise ConfigError(f"estimator.training_set={terms}: expected distinct terms from {list(prefixes)}")
    if e.outcome not in ("avg_dev", "avg_margin"):
        raise ConfigError(f"estimator.outcome={e.outcome!r}: expected avg_dev or avg_margin")
    nuisances = ("rf", "gbr", "lasso", "ridge")   # estimator.NUISANCES (not imported: it pulls in joblib)
    for key in ("model_y", "model_t"):
        if e[key] not in nuisances:
            raise ConfigError(f"estimator.{key}={e[key]!r}: expected one of {list(nuisances)}")
    if e.cv < 2:
        raise ConfigError(f"estimator.cv={e.cv}: expected at least 2 cross-fitting folds")
    if e.name == "causal_forest" and e.n_estimators % 4:
        raise ConfigError(f"estimator.n_estimators={e.n_estimators}: expected a multiple of 4 (econml's subforests)")
    if e.max_depth is not None:
        _positive(cfg, "estimator.max_depth")
    if not isinstance(e.honest, bool):
        raise ConfigError(f"estimator.honest={e.honest!r}: expected true or false")
    _strings(cfg, "estimator.covariates")
    if not len(e.covariates):
        raise ConfigError("estimator.covariates=[]: expected at least one covariate name or glob")


def _validate_target_state(cfg: DictConfig, domains) -> None:
    """target.catalog names states that pin knobs of the target pool (known domains, known knobs, values in
    range); target.states and target.oracle.state name entries of it."""
    catalog = OmegaConf.select(cfg, "target.catalog")
    if not isinstance(catalog, DictConfig) or not len(catalog):
        raise ConfigError(f"target.catalog={catalog!r}: expected a mapping of state name -> pinned knobs")
    knobs = ("amount", "noise", "dup", "trunc", "difficulty")   # pool.KNOBS
    for name, state in catalog.items():
        key = f"target.catalog.{name}"
        if state is None:
            continue
        if not isinstance(state, DictConfig):
            raise ConfigError(f"{key}={state!r}: expected a mapping like {{math: {{noise: 0.7}}}}")
        for d, pinned in state.items():
            if d not in domains:
                raise ConfigError(f"{key} names unknown domain {d!r}: expected some of {list(domains)}")
            if not isinstance(pinned, DictConfig):
                raise ConfigError(f"{key}.{d}={pinned!r}: expected a mapping of knob -> value, knobs {list(knobs)}")
            for k in pinned:
                if k not in knobs:
                    raise ConfigError(f"{key}.{d}.{k}: unknown knob {k!r}; expected one of {list(knobs)}")
                _number(cfg, f"{key}.{d}.{k}", 0, 1, lo_open=(k == "amount"))
    states = OmegaConf.select(cfg, "target.states")
    if not OmegaConf.is_list(states) or not len(states):
        raise ConfigError(f"target.states={states!r}: expected a non-empty list of names from target.catalog")
    unknown = [s for s in states if s not in catalog]
    if unknown or len(set(states)) != len(states):
        raise ConfigError(f"target.states={list(states)}: expected distinct names from target.catalog {list(catalog)}")
    oracle = OmegaConf.select(cfg, "target.oracle.state")
    if oracle is not None and oracle not in catalog:
        raise ConfigError(f"target.oracle.state={oracle!r}: expected null or one of target.catalog {list(catalog)}")
    _number(cfg, "target.oracle.tilt", 1 / len(domains), 1, lo_open=True, hi_open=True)
    if "grid" in cfg.target.methods:
        _number(cfg, "baselines.grid.tilt", 1 / len(domains), 1, lo_open=True, hi_open=True)
        _positive(cfg, "baselines.grid.seeds")