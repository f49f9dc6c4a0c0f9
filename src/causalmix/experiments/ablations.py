"""Ablations: CausalMix-S with one part changed, judged by target runs on the main results' states.

Each variant in `ablations.variants` states only its delta from the configured CausalMix-S:

- `estimator: {...}` and `policy: {...}` merge into the config (e.g. `estimator: {name: linear}`,
  `policy: {radius: 0.15}`, `estimator: {reference: bible}`);
- `estimator: {covariates: [const]}` fits the same forest on a constant covariate: one effect for every
  pool, a state-agnostic model that is otherwise CausalMix;
- `dml: false` drops orthogonalisation: a random forest of the outcome on the raw shares and covariates,
  and the same trust-region search over its predicted gain (no standard errors, so no conservatism);
- `runs: 0.25` fits on the sweep's first quarter of runs (by run id): with several fractions, the quality
  of the chosen mixture against the number of proxy runs (`count_curve`);
- `seeds: 6` pairs that variant with CausalMix-S over more target seeds than chapter 4's `target.seeds` (the
  first of them are chapter 4's runs, reused; CausalMix-S is run on the others too): more pairs, a narrower CI,
  where one comparison matters more than the rest (no_covariates: does knowing the pool's state pay?).

`ablations.run` lists the variants to run. Every variant proposes one mixture per state in `target.states`;
its target runs pair with CausalMix-S's by (state, seed), and the table is the paired difference to it,
pooled over states and seeds. Where a variant proposes CausalMix-S's own mixture, its runs would be the same
runs (same mixture, seeds and draws), so CausalMix-S's are used for it and it differs there by exactly 0."""
from __future__ import annotations

import numpy as np
import pandas as pd
from omegaconf import DictConfig, OmegaConf

from causalmix.book.report import mean_ci
from causalmix.config import validate
from causalmix.errors import ConfigError
from causalmix.experiments import mainresults as mr
from causalmix.experiments import target as tg

BASE = "causalmix_s"
KEYS = {"estimator", "policy", "dml", "runs", "seeds"}
MIN_RUNS = 10          # the estimator's minimum (causal/estimator.py validate_runs)
PREFIX = "ablation:"


def check(cfg: DictConfig) -> list[str]:
    """The variants to run, each checked: one line naming a bad value, before any fit."""
    variants = cfg.ablations.variants
    names = list(cfg.ablations.run)
    unknown = [n for n in names if n not in variants]
    if unknown:
        raise ConfigError(f"ablations.run has {unknown}: expected names from ablations.variants {list(variants)}")
    if BASE not in cfg.target.methods:
        raise ConfigError(f"ablations compare with {BASE}, which target.methods {list(cfg.target.methods)} lacks")
    for n in names:
        spec = variants[n]
        bad = sorted(set(spec) - KEYS)
        if bad:
            raise ConfigError(f"ablations.variants.{n} has {bad}: expected only {sorted(KEYS)}")
        if "seeds" in spec and (not isinstance(spec.seeds, int) or isinstance(spec.seeds, bool) or spec.seeds < 2):
            raise ConfigError(f"ablations.variants.{n}.seeds={spec.seeds!r}: expected an integer >= 2 (paired target seeds)")
        if "dml" in spec and not isinstance(spec.dml, bool):
            raise ConfigError(f"ablations.variants.{n}.dml={spec.dml!r}: expected true or false")
        if "runs" in spec:
            f = spec.runs
            if isinstance(f, bool) or not isinstance(f, (int, float)) or not 0 < f <= 1:
                raise ConfigError(f"ablations.variants.{n}.runs={f!r}: expected a fraction of the sweep's runs in (0, 1]")
            if n_runs(cfg, f) < MIN_RUNS:
                raise ConfigError(f"ablations.variants.{n}.runs={f} is {n_runs(cfg, f)} of the sweep's {cfg.sweep.n_runs} "
                                  f"runs; expected at least {MIN_RUNS} (the estimator's minimum)")
        validate(variant_cfg(cfg, spec))
    return names


def n_runs(cfg: DictConfig, fraction: float) -> int:
    return int(round(float(fraction) * int(cfg.sweep.n_runs)))


def variant_cfg(cfg: DictConfig, spec) -> DictConfig:
    return OmegaConf.merge(cfg, {k: spec[k] for k in ("estimator", "policy") if k in spec})


def label(method: str) -> str:
    return method[len(PREFIX):] if method.startswith(PREFIX) else tg.METHOD_LABELS.get(method, method)


class _RawForest:
    """No orthogonalisation: E[Y | T, X] by one random forest; a mixture's gain is a difference of predictions."""

    def __init__(self, cfg: DictConfig, runs: pd.DataFrame, domains: list[str]):
        from sklearn.ensemble import RandomForestRegressor
        self.w_cols = [f"w_{d}" for d in domains]
        self.x_cols = tg.covariate_columns(cfg, runs.columns)
        e = cfg.estimator
        self.forest = RandomForestRegressor(n_estimators=int(e.n_estimators), min_samples_leaf=int(e.min_samples_leaf),
                                            max_features=0.5, random_state=int(cfg.seed), n_jobs=1)
        self.forest.fit(runs[self.w_cols + self.x_cols].to_numpy(float), runs[e.outcome].to_numpy(float))

    def score(self, x: dict):
        xs = np.array([float(x[c]) for c in self.x_cols])

        def predict(W):
            W = np.atleast_2d(W)
            return self.forest.predict(np.hstack([W, np.repeat(xs[None], len(W), axis=0)]))
        return predict


def propose(cfg: DictConfig, runs: pd.DataFrame, states: list, log=print) -> dict[str, dict[str, dict]]:
    """{state: {"ablation:<variant>": mixture}} for every variant in ablations.run and state in target.states,
    kept once fitted (experiments/proposals.py: the same fit on another CPU may propose other mixtures)."""
    from causalmix.experiments import proposals
    check(cfg)
    main = {s.name: s for s in states if s.name in cfg.target.states}
    digests = {n: proposals.inputs_digest(runs, s.covariates, s.natural) for n, s in main.items()}
    got = proposals.kept(cfg, "ablations", digests,
                         lambda names: {n: (m, {}) for n, m in
                                        fitted_proposals(cfg, runs, [main[n] for n in names], log).items()}, log)
    return {n: mixtures for n, (mixtures, _) in got.items()}


def fitted_proposals(cfg: DictConfig, runs: pd.DataFrame, states: list, log=print) -> dict[str, dict[str, dict]]:
    """propose(), fitted now: each variant's fit, then its mixture for each state."""
    from causalmix.causal.policy import causalmix_search, recommend
    domains = [c[2:] for c in runs.columns if c.startswith("w_")]
    main = [s for s in states if s.name in cfg.target.states]
    out = {s.name: {} for s in main}
    runs = pd.concat([runs, pd.Series(0.0, index=runs.index, name="const")], axis=1)   # no_covariates
    for name in check(cfg):
        spec = cfg.ablations.variants[name]
        v = variant_cfg(cfg, spec)
        p = v.policy
        fit_on = runs.sort_values("run_id").head(n_runs(cfg, spec.runs)) if "runs" in spec else runs
        if spec.get("dml", True):
            model = tg.fit_effect_model(v, fit_on, domains)
        else:
            forest = _RawForest(v, fit_on, domains)
        for s in main:
            ref = tg.reference_mixture(v, runs, domains, s.natural)
            w0 = np.array([ref[d] for d in domains])
            x = {**s.covariates, "const": 0.0}
            if spec.get("dml", True):
                rec = recommend(model, pd.DataFrame([x])[model.inputs], w0, policy="search", radius=p.radius,
                                z=p.z, floor=p.floor, n_candidates=p.search_candidates, seed=cfg.seed)
                w = [float(rec.iloc[0][f"w_{d}"]) for d in domains]
            else:
                f = forest.score(x)
                base = f(w0)[0]
                w = causalmix_search(lambda C: f(C) - base, w0, p.radius, p.search_candidates, p.floor, cfg.seed)
            out[s.name][PREFIX + name] = dict(zip(domains, map(float, w)))
        log(f"ablation {name}: proposed a mixture for {len(main)} states")
    return out


def seeds_of(cfg: DictConfig, method: str) -> int:
    """Paired target seeds for a variant's method name: its `seeds`, else target.seeds."""
    spec = cfg.ablations.variants.get(label(method), {}) if method.startswith(PREFIX) else {}
    return int(spec.get("seeds", cfg.target.seeds))


def run(world, states: list, proposals: dict[str, dict[str, dict]], log=print) -> pd.DataFrame:
    """Each state's variants beside CausalMix-S's own mixture, on the same paired seeds (mixtures that are
    the same share their runs: mainresults.run_shared). A variant with its own `seeds` runs with CausalMix-S
    over that many seeds (target.seeds is not in the target store's key, so the shared seeds are reused)."""
    from dataclasses import replace
    cfg, out = world.cfg, []
    for s in [s for s in states if s.name in proposals]:
        for n, mixtures in seed_groups(cfg, s.mixtures[BASE], proposals[s.name]):
            w_n = world if n == int(cfg.target.seeds) else replace(world, cfg=OmegaConf.merge(cfg, {"target": {"seeds": n}}))
            out.append(mr.run_shared(w_n, mixtures, s.pool, s.name, log=log))
    return pd.concat(out, ignore_index=True).drop_duplicates(["state", "method", "seed"], ignore_index=True)


def seed_groups(cfg: DictConfig, base: dict, variants: dict[str, dict]) -> list[tuple[int, dict[str, dict]]]:
    """One state's chapter-6 target runs as (seed count, {method: mixture}) groups, fewest seeds first: every
    variant beside CausalMix-S's mixture (`base`) on the same paired seeds, so a variant with its own `seeds`
    runs CausalMix-S over that many too. run() trains them; the dry run counts them."""
    groups: dict[int, dict] = {}
    for m, w in variants.items():
        groups.setdefault(seeds_of(cfg, m), {})[m] = w
    return [(n, {BASE: base, **groups.get(n, {})}) for n in sorted(groups or {int(cfg.target.seeds): {}})]


def moved(states: list, proposals: dict[str, dict[str, dict]]) -> pd.DataFrame:
    """How far each variant's mixture is from CausalMix-S's (total-variation distance), per state."""
    rows = []
    for s in states:
        for m, w in proposals.get(s.name, {}).items():
            rows.append({"variant": label(m), "state": s.name,
                         "TV to CausalMix-S": 0.5 * sum(abs(w[d] - s.mixtures[BASE][d]) for d in w)})
    return pd.DataFrame(rows).pivot(index="variant", columns="state", values="TV to CausalMix-S")


def table(res: pd.DataFrame, value: str = "avg_dev") -> pd.DataFrame:
    """Per variant, per state and pooled over (state, seed): its mean and its paired difference to CausalMix-S
    with a 95% CI (columns as the main results', so figures.paired_diffs draws it)."""
    wide = res.pivot_table(index=["state", "seed"], columns="method", values=value)
    c = "vs CausalMix-S"
    rows = []
    for m in [m for m in wide.columns if m.startswith(PREFIX)]:
        d_all = (wide[m] - wide[BASE]).dropna()
        states = list(dict.fromkeys(d_all.index.get_level_values("state")))
        for st in [*states, "pooled"]:
            d = d_all if st == "pooled" else d_all.xs(st, level="state")
            mean, lo, hi = mean_ci(d)
            v = wide[m] if st == "pooled" else wide[m].xs(st, level="state")
            rows.append({"state": st, "method": label(m), value: float(v.mean()), c: mean, f"{c} lo": lo,
                         f"{c} hi": hi, "pairs": len(d)})
    return pd.DataFrame(rows)


def formatted(tab: pd.DataFrame, value: str = "avg_dev", digits: int = 2) -> pd.DataFrame:
    """For display: the variant's mean and 'diff [lo, hi]' to CausalMix-S, per state (or pooled) row."""
    c, k = "vs CausalMix-S", digits
    cells = [f"{m:+.{k}f} [{lo:+.{k}f}, {hi:+.{k}f}]" for m, lo, hi in zip(tab[c], tab[f"{c} lo"], tab[f"{c} hi"])]
    return pd.DataFrame({"state": tab.state, "variant": tab.method, value: tab[value].round(k + 1), c: cells,
                         "pairs": tab.pairs})


def sentences(tab: pd.DataFrame, value: str = "avg_dev") -> list[str]:
    """One line per variant, computed from its pooled paired CI against CausalMix-S."""
    c, out = "vs CausalMix-S", []
    for _, r in tab[tab.state == "pooled"].iterrows():
        m, lo, hi = r[c], r[f"{c} lo"], r[f"{c} hi"]
        if m == 0 and (lo == hi == 0 or not np.isfinite(lo)):
            verdict = "proposes the same mixtures as"
        elif not (np.isfinite(lo) and np.isfinite(hi)):
            verdict = "cannot be told apart (too few pairs) from"
        else:
            verdict = "does better than" if lo > 0 else "does worse than" if hi < 0 else "is not distinguishable from"
        out.append(f"**{r.method}** {verdict} CausalMix-S: {m:+.2f} [{lo:+.2f}, {hi:+.2f}] {value} over "
                   f"{r.pairs} (state, seed) pairs.")
    return out


def findings(tab: pd.DataFrame, dist: pd.DataFrame, value: str = "avg_dev") -> list[str]:
    """The chapter's closing lines: each variant's verdict, which variants never changed the mixture, and
    where knowing the pool's state could have paid at all."""
    out = sentences(tab, value)
    same = [n for n in dist.index if (dist.loc[n].fillna(0) == 0).all()]
    if same:
        out.append(f"Proposing CausalMix-S's own mixture in every state: {', '.join(same)}; that change does not reach "
                   "the policy's choice here.")
    if "no_covariates" in dist.index:
        moved_in = [s for s in dist.columns if dist.loc["no_covariates", s] > 0]
        if not moved_in:
            out.append("Without covariates the policy chooses the same mixture in every state: here the pool's "
                       "measured state never changed CausalMix's choice, so knowing it could not pay.")
        else:
            out.append(f"Without covariates the mixture differs from CausalMix-S's in {len(moved_in)} of {dist.shape[1]} "
                       f"states ({', '.join(moved_in)}): only there could knowing the pool's state pay, and the "
                       "per-state differences above say whether it did.")
    return out


def count_curve(cfg: DictConfig, tab: pd.DataFrame, res: pd.DataFrame, oracle: pd.DataFrame | None) -> pd.DataFrame:
    """CausalMix-S fitted on fewer proxy runs (the variants with `runs`) beside the full sweep: per run count,
    the pooled paired difference to the full sweep's mixture and, on the oracle state, the regret against the
    best mixture found there (chapter 4's grid and picks), paired over seeds."""
    c = "vs CausalMix-S"
    pooled = tab[tab.state == "pooled"].set_index("method")
    rows = [{"variant": "CausalMix-S (all runs)", "method": BASE, "runs": int(cfg.sweep.n_runs),
             "vs all runs": 0.0, "lo": 0.0, "hi": 0.0}]
    for n in cfg.ablations.run:
        spec = cfg.ablations.variants[n]
        if set(spec) == {"runs"} and n in pooled.index:
            r = pooled.loc[n]
            rows.append({"variant": n, "method": PREFIX + n, "runs": n_runs(cfg, spec.runs), "vs all runs": r[c],
                         "lo": r[f"{c} lo"], "hi": r[f"{c} hi"]})
    out = pd.DataFrame(rows).sort_values("runs").reset_index(drop=True)
    state = cfg.target.oracle.state
    if oracle is not None and state in set(res.state):
        res = res[res.seed < int(cfg.target.seeds)]     # the oracle's seeds (a variant's own `seeds` add more)
        both = pd.concat([oracle, res[(res.state == state) & res.method.isin(out.method)]], ignore_index=True)
        both = both.drop_duplicates(["method", "seed"])
        reg = mr.regret(both, list(out.method))
        best = reg.attrs["best"]
        reg = reg.set_index("method").reindex([mr.label(m) for m in out.method])
        out["regret"], out["regret lo"], out["regret hi"] = (reg[c].to_numpy() for c in ("regret", "lo", "hi"))
        out.attrs["oracle"] = f"{state} (best found: {best})"
    return out


def curve_sentences(curve: pd.DataFrame) -> list[str]:
    """One line for the proxy-count curve, from its numbers."""
    if len(curve) < 2:
        return []
    parts = []
    for _, r in curve.iterrows():
        p = f"{int(r.runs)} runs: {r['vs all runs']:+.2f} [{r.lo:+.2f}, {r.hi:+.2f}] against the full sweep"
        if "regret" in curve and np.isfinite(r.get("regret", np.nan)):
            p += f", regret {r.regret:.2f} [{r['regret lo']:.2f}, {r['regret hi']:.2f}]"
        parts.append(p)
    return [f"Proxy runs needed (AvgDev, pooled paired difference to the mixture fitted on all {int(curve.runs.max())} "
            f"runs; regret on {curve.attrs.get('oracle', 'the oracle state')}): " + "; ".join(parts) + "."]
