"""Tables and sentences of the long chain-of-thought chapter (notebook 07), computed from its runs."""
from __future__ import annotations

import numpy as np
import pandas as pd

from causalmix.book.report import mean_ci
from causalmix.experiments import mainresults as mr

PAPER_FORM = ("causalmix_a", "causalmix_s", "grid", "regmix", "equal")


def learning(runs: pd.DataFrame, domains: list[str]) -> pd.DataFrame:
    """Per domain, over the proxy sweep: mean final-answer accuracy, and how it follows the domain's share
    (OLS slope per +10 points of share, R^2, and the mean accuracy of the runs in the top and bottom
    quarter of that share)."""
    rows = []
    for d in domains:
        w, y = runs[f"w_{d}"].to_numpy(), runs[f"acc_{d}"].to_numpy()
        slope, icpt = np.polyfit(w, y, 1)
        r2 = 1 - np.var(y - (slope * w + icpt)) / np.var(y) if np.var(y) > 0 else np.nan
        lo, hi = np.quantile(w, [0.25, 0.75])
        rows.append({"domain": d, "accuracy": y.mean(), "per +10% share": slope / 10, "R2": r2,
                     "bottom quarter": y[w <= lo].mean(), "top quarter": y[w >= hi].mean()})
    return pd.DataFrame(rows)


def heldout(cfg, runs: pd.DataFrame, domains: list[str], folds: int, repeats: int = 1) -> tuple[pd.DataFrame | None, str]:
    """validation.heldout_check (`repeats` fold assignments, averaged), or None and why when a fold's outcome does
    not vary (a smoke-scale proxy may answer nothing right at all)."""
    from causalmix.errors import ConfigError
    from causalmix.experiments.validation import heldout_check
    try:
        return heldout_check(cfg, runs, domains, folds=folds, repeats=repeats)[1], ""
    except ConfigError as e:
        return None, f"no held-out check: {e}"


def table(res: pd.DataFrame, methods: list[str]) -> pd.DataFrame:
    """The paper's form, per state and pooled: each method's AvgDev [95% CI] and its paired difference to
    Equal, RegMix and Grid (pairs: state x seed)."""
    order = [m for m in PAPER_FORM if m in methods] + [m for m in methods if m not in PAPER_FORM]
    out = [mr.comparison(res, order).assign(state="pooled")]
    for s, g in res.groupby("state", sort=False):
        out.append(mr.comparison(g, order).assign(state=s))
    return pd.concat(out, ignore_index=True)


def findings(tab: pd.DataFrame, learn: pd.DataFrame, runs: pd.DataFrame, proposals: dict,
             heldout: pd.DataFrame | None = None) -> list[str]:
    """Plain sentences, each computed from the numbers above it."""
    out = []
    best = learn.sort_values("per +10% share", ascending=False)
    up = int((learn["top quarter"] > learn["bottom quarter"]).sum())
    out.append(f"In {up} of {len(learn)} tasks, proxies that saw more of the task answer it right more often "
               "(mean accuracy in the bottom → top quarter of the task's share): "
               + "; ".join(f"{r.domain} {r['bottom quarter']:.1f}% → {r['top quarter']:.1f}%" for _, r in best.iterrows()) + ".")
    ws = {d: np.corrcoef(runs[f"ws_{d}"], runs[f"state_noise_{d}"])[0, 1] for d in learn.domain
          if f"state_noise_{d}" in runs and runs[f"ws_{d}"].std() > 0}
    if ws:
        out.append("The quality covariate (the share of a pool's solutions that check) tracks each domain's latent "
                   "noise: correlation " + ", ".join(f"{d} {r:+.2f}" for d, r in ws.items()) + ".")
    if {"chain", "direct"} <= set(learn.domain):
        c, d = (learn.set_index("domain").loc[k] for k in ("chain", "direct"))
        out.append(f"The same sums written out step by step (chain) are answered right {c.accuracy:.1f}% of the time, "
                   f"answered at once (direct) {d.accuracy:.1f}%: long thought "
                   + ("helps these proxies." if c.accuracy > d.accuracy else "does not help these proxies."))
    if heldout is not None and len(heldout) >= 2:
        h = heldout.set_index("model").spearman
        out.append(f"On held-out proxy runs the causal model ranks runs at Spearman {h.iloc[0]:.2f}, RegMix at "
                   f"{h.iloc[1]:.2f}: " + ("a weak instrument: the fits see little of what moves a run's "
                                           "outcome."
                                           if h.max() < 0.5 else "the fits carry usable signal."))
    pooled = tab[tab.state == "pooled"]
    for m in ("CausalMix-A", "CausalMix-S"):
        r = pooled[pooled.method == m]
        if r.empty:
            continue
        r = r.iloc[0]
        parts = [f"{mr.verdict(r[f'vs {b} lo'], r[f'vs {b} hi'])} {b} ({r[f'vs {b}']:+.2f} "
                 f"[{r[f'vs {b} lo']:+.2f}, {r[f'vs {b} hi']:+.2f}])"
                 for b in ("Equal", "RegMix", "Grid") if f"vs {b}" in r and np.isfinite(r[f"vs {b}"])]
        out.append(f"On the target model, pooled over states and seeds, {m} ({r.avg_dev:.2f}) is " + "; ".join(parts) + ".")
    top = pooled.sort_values("avg_dev", ascending=False).iloc[0]
    out.append(f"The highest pooled mean is {top.method}'s, {top.avg_dev:.2f} [{top.lo:.2f}, {top.hi:.2f}]; "
               f"the paper reports CausalMix 66.66 against Grid 64.74 and RegMix 61.40 on its 4B long-CoT model.")
    moved = {n: max(abs(p["mixtures"][m][d] - p["natural"][d]) for m in ("causalmix_a", "causalmix_s")
                    if m in p["mixtures"] for d in p["natural"])
             for n, p in proposals.items()}
    kept = [n for n, v in moved.items() if v < 0.01]
    if kept:
        out.append(f"In {len(kept)} of {len(moved)} states ({', '.join(kept)}) both CausalMix policies kept their reference, "
                   "the pool's natural proportions (they move less than 0.01 of share): no domain's estimated return "
                   "was large enough against its standard error to move the mixture.")
    if len(moved) > 1 and all("causalmix_s" in p["mixtures"] for p in proposals.values()):
        a, b = list(proposals)[:2]
        diff = max(abs(proposals[a]["mixtures"]["causalmix_s"][d] - proposals[b]["mixtures"]["causalmix_s"][d])
                   for d in proposals[a]["mixtures"]["causalmix_s"])
        out.append(f"CausalMix-S's mixture differs between the {a} and {b} pools by at most {diff:.2f} of share per domain.")
    return out


def seconds(runs: pd.DataFrame, res: pd.DataFrame) -> str:
    m, lo, hi = mean_ci(runs.wall_seconds)
    return (f"{len(runs)} proxy runs at {m:.1f} s each (stacked; training plus greedy scoring), "
            f"{res.run_id.nunique()} target runs at {res.wall_seconds.median():.1f} s each")
