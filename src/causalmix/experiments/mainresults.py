"""The main results over several target states.

Per state: the latent state, each method's mixture, and target runs over paired seeds. Then one table
pooled over states (differences pair by state and seed), its minimum detectable difference, and, on one
atypical state, an oracle reference: a coarse grid of mixtures run as real target runs, against which
each method's regret is measured."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from omegaconf import DictConfig

from causalmix.data import pool as pools
from causalmix.experiments import target as tg
from causalmix.experiments.power import table_mde
from causalmix.book.report import mean_ci
from causalmix.experiments.world import World, base_model, build_world

BASELINES = ("equal", "natural", "regmix", "dmo", "grid")


@dataclass
class TargetState:
    name: str
    pins: dict
    state: dict          # the latent knobs (the truth, never shown to a method)
    covariates: dict     # what the methods see
    natural: dict
    mixtures: dict       # method -> mixture
    gains: dict          # CausalMix's predicted gains
    pool: dict
    grid: pd.DataFrame | None = None   # the Grid baseline's proxy trials on this state's pool


def prepare(cfg: DictConfig, runs: pd.DataFrame, world: World | None = None) -> tuple[World, list[TargetState]]:
    """Each configured target state's pool, covariates and each method's mixture: the fits (shared by states)
    made only for states whose proposals are not kept yet (experiments/proposals.py)."""
    from causalmix.experiments import proposals
    world = world or build_world(cfg)
    scorer = base_model(cfg, "proxy")
    names = list(cfg.target.states)
    oracle = cfg.target.oracle.state
    if oracle is not None and oracle not in names:
        names.append(oracle)
    seen = {}
    for name in names:
        state, pool = tg.target_pool(world, name)
        seen[name] = (state, pool, tg.measured_state(world, scorer, name, pool), pools.composition(state))
    fits = {}

    def fitted(missing: list[str]) -> dict[str, tuple[dict, dict]]:
        fits.setdefault("all", tg.fit_methods(cfg, runs, world.domains))
        return {n: tg.propose(cfg, runs, world.domains, seen[n][2], seen[n][3], fits=fits["all"]) for n in missing}

    kept = proposals.kept(cfg, "main", {n: proposals.inputs_digest(runs, covs, nat)
                                        for n, (_, _, covs, nat) in seen.items()}, fitted)
    out = []
    for name, (state, pool, covs, natural) in seen.items():
        mixtures, gains = kept[name]
        trials = None
        if "grid" in cfg.target.methods:
            from causalmix.experiments import grid
            trials = grid.trials(world, scorer, name, pool)
            mixtures = {m: (grid.pick(cfg, trials)[1] if m == "grid" else mixtures[m]) for m in cfg.target.methods}
        out.append(TargetState(name, tg.state_pins(cfg, name), state, covs, natural, mixtures, gains, pool, trials))
    return world, out


def owners(mixtures: dict[str, dict]) -> dict[str, str]:
    """Each method -> the first method (in order) that proposes the same mixture: the one whose runs it uses."""
    owner: dict[str, str] = {}
    for m, w in mixtures.items():
        owner[m] = next((f for f in owner if owner[f] == f and tg.same_mixture(w, mixtures[f])), m)
    return owner


def oracle_mixtures(cfg: DictConfig, domains: list[str], s: TargetState) -> dict[str, dict]:
    """The oracle state's candidates: the grid, less points some method already picked, then every pick."""
    grid = {k: w for k, w in tg.oracle_candidates(cfg, domains).items()
            if not any(tg.same_mixture(w, p) for p in s.mixtures.values())}    # e.g. the grid's Equal is Equal's pick
    return {**grid, **s.mixtures}


def run_shared(world: World, mixtures: dict[str, dict], pool: dict, state: str, log=print) -> pd.DataFrame:
    """tg.run_targets, but methods that propose the same mixture (Grid picking Equal, say) share one set of
    runs: the same mixture, seeds and draws would train the same models, so the first method's runs are used
    for the others under their own names."""
    owner = owners(mixtures)
    res = tg.run_targets(world, {m: w for m, w in mixtures.items() if owner[m] == m}, pool, state, log=log)
    return pd.concat([res[res.method == owner[m]].assign(method=m) for m in mixtures], ignore_index=True)


def run_states(world: World, states: list[TargetState], log=print) -> pd.DataFrame:
    """Every configured state's target runs (method x seed), one frame with a `state` column."""
    main = [s for s in states if s.name in world.cfg.target.states]
    return pd.concat([run_shared(world, s.mixtures, s.pool, s.name, log=log) for s in main], ignore_index=True)


def run_oracle(world: World, states: list[TargetState], log=print) -> pd.DataFrame | None:
    """The oracle state's grid candidates and every method's pick, as target runs on paired seeds."""
    name = world.cfg.target.oracle.state
    if name is None:
        return None
    s = next(x for x in states if x.name == name)
    return run_shared(world, oracle_mixtures(world.cfg, world.domains, s), s.pool, name, log=log)


def label(method: str) -> str:
    if method.startswith("grid:"):
        return "Grid: " + method[5:]
    return tg.METHOD_LABELS.get(method, method)


def _paired(res: pd.DataFrame, method: str, baseline: str, value: str) -> tuple[float, float, float, int]:
    wide = res.pivot_table(index=["state", "seed"], columns="method", values=value)
    if method not in wide or baseline not in wide:
        return (np.nan, np.nan, np.nan, 0)
    d = (wide[method] - wide[baseline]).dropna()
    return (*mean_ci(d), len(d))


def comparison(res: pd.DataFrame, methods: list[str], value: str = "avg_dev") -> pd.DataFrame:
    """One row per method: mean [95% CI] of `value`, and its paired difference to each baseline that ran."""
    rows = []
    for m in methods:
        mean, lo, hi = mean_ci(res.loc[res.method == m, value])
        row = {"method": label(m), "runs": int((res.method == m).sum()), value: mean, "lo": lo, "hi": hi}
        for b in BASELINES:
            if b != m and b in set(res.method):
                d, dlo, dhi, n = _paired(res, m, b, value)
                row |= {f"vs {label(b)}": d, f"vs {label(b)} lo": dlo, f"vs {label(b)} hi": dhi, "pairs": n}
        rows.append(row)
    return pd.DataFrame(rows)


def formatted(table: pd.DataFrame, value: str = "avg_dev", digits: int = 2) -> pd.DataFrame:
    """'mean [lo, hi]' cells for display."""
    k = 3 if "margin" in value else digits
    cell = lambda m, lo, hi: "" if not np.isfinite(m) else f"{m:+.{k}f} [{lo:+.{k}f}, {hi:+.{k}f}]"  # noqa: E731
    out = table[["method", "runs"]].copy()
    out[value] = [f"{m:.{k}f} [{lo:.{k}f}, {hi:.{k}f}]" for m, lo, hi in zip(table[value], table.lo, table.hi)]
    for c in [c for c in table.columns if c.startswith("vs ") and not c.endswith((" lo", " hi"))]:
        out[c] = [cell(m, lo, hi) for m, lo, hi in zip(table[c], table[f"{c} lo"], table[f"{c} hi"])]
    if "pairs" in table:
        out["pairs"] = table["pairs"].fillna(0).astype(int)
    return out


def verdict(lo: float, hi: float) -> str:
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return "not comparable with"
    return "better than" if lo > 0 else ("worse than" if hi < 0 else "not distinguishable from")


def sentences(table: pd.DataFrame, value: str = "avg_dev") -> list[str]:
    """One plain sentence per CausalMix variant and baseline, computed from the paired CIs."""
    out = []
    for _, r in table[table.method.str.startswith("CausalMix")].iterrows():
        parts = []
        for b in BASELINES:
            c = f"vs {label(b)}"
            if c in r and np.isfinite(r[c]):
                parts.append(f"{verdict(r[f'{c} lo'], r[f'{c} hi'])} {label(b)} ({r[c]:+.2f} "
                             f"[{r[f'{c} lo']:+.2f}, {r[f'{c} hi']:+.2f}])")
        out.append(f"{r.method} is " + "; ".join(parts) + f" on {value}.")
    return out


def regret(oracle: pd.DataFrame, methods: list[str], value: str = "avg_dev") -> pd.DataFrame:
    """Each method's regret against the best mixture found (grid or any method's pick), paired over seeds."""
    means = oracle.groupby("method")[value].mean()
    best = means.idxmax()
    wide = oracle.pivot_table(index="seed", columns="method", values=value)
    rows = []
    for m in [*methods, best]:
        d = (wide[best] - wide[m]).dropna()
        r, lo, hi = mean_ci(d)
        rows.append({"method": label(m), value: means[m], "regret": r, "lo": lo, "hi": hi, "seeds": len(d)})
    out = pd.DataFrame(rows).drop_duplicates("method")
    out.attrs["best"] = label(best)
    return out


def mde_pooled(res: pd.DataFrame, value: str = "avg_dev") -> float:
    return table_mde(res, value=value, baseline="equal", by=("state", "seed"))
