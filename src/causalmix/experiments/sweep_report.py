"""Chapter 2's closing findings and its entries in results.json, from the tables the chapter computed.

The chapter (notebooks/02_proxy_sweep.ipynb) computes the tables; this module only words them and records
them. `Chapter2` holds what the sections produced; sections that did not run (no retest, no fresh-pool
retest) leave their table as None and say nothing.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from causalmix.experiments.validation import heldout_plan


@dataclass
class Chapter2:
    runs: pd.DataFrame               # the configured sweep
    floor: pd.DataFrame              # power.floor_summary, indexed by outcome
    explained: pd.DataFrame          # power.variance_explained, long (explains, outcome, oof R^2)
    retest: pd.DataFrame | None      # power.retest_summary, indexed by outcome
    pool: pd.DataFrame | None        # power.pool_summary, indexed by outcome
    draw_seen: pd.DataFrame | None   # validation.pool_draw_seen, indexed by outcome
    draws: pd.DataFrame              # validation.other_draws
    draws_summary: pd.DataFrame      # validation.draws_summary, indexed by outcome
    curve: pd.DataFrame              # validation.runs_curve
    curve_table: pd.DataFrame        # validation.curve_summary's table, indexed by runs
    trend: dict                      # ... and its trend


def noise_ceiling(retest: pd.DataFrame | None, explained: pd.DataFrame, outcome: str) -> tuple[float, str]:
    """(ceiling rho, where it comes from): the retest's (the design's own points), else the noise floor's."""
    if retest is not None and outcome in retest.index:
        return float(retest.loc[outcome, "ceiling rho"]), "retest"
    ceil = explained[(explained.outcome == outcome) & explained.explains.str.startswith("ceiling")]["oof R^2"].iloc[0]
    return float(np.sqrt(max(ceil, 0.0))), "noise floor"


def extended_curve(cfg, curve: pd.DataFrame) -> bool:
    """Whether the runs curve reaches past the sweep's size (power.curve.extend)."""
    return int(curve.runs.max()) > int(cfg.sweep.n_runs)


def _most_math(runs: pd.DataFrame):
    return runs.loc[runs.w_math.idxmax()] if "w_math" in runs else None


def findings(cfg, c: Chapter2) -> list[str]:
    """The chapter's closing bullets."""
    runs, fs, ve, rt, pr, draw_seen = c.runs, c.floor, c.explained, c.retest, c.pool, c.draw_seen
    ceil = ve[ve.explains.str.startswith("ceiling")].set_index("outcome")["oof R^2"]
    r2 = ve.set_index(["explains", "outcome"])["oof R^2"]
    top = _most_math(runs)
    lines = []
    if cfg.scale.name == "smoke":
        lines.append("*These numbers come from the `smoke` scale: too few runs to mean anything.*")
    lines.append(f"{len(runs)} proxy runs scored AvgDev {runs.avg_dev.mean():.2f} ± {runs.avg_dev.std():.2f} (SD), from {runs.avg_dev.min():.1f} to {runs.avg_dev.max():.1f}.")
    for y in fs.index:
        sd, sweep_sd = fs.loc[y, "seed SD"], runs[y].std()
        lines.append(f"`{y}`: retraining the same pool and mixture with another seed moves it by {sd:.3g} (SD, 95% CI {fs.loc[y, 'seed SD lo']:.3g} to "
                     f"{fs.loc[y, 'seed SD hi']:.3g}), against {sweep_sd:.3g} across the sweep: a held-out predictor can explain at most "
                     f"{ceil[y]:.0%} of the variance" + (f"; mixture and latent state together explain {r2[('mixture + latent state', y)]:.0%} out of fold."
                                                        if ("mixture + latent state", y) in r2 else "."))
    if rt is not None:
        for y in rt.index:
            r = rt.loc[y]
            lines.append(f"`{y}`, retest: {int(r.runs)} sweep runs trained again agree with their first training at Spearman {r.Spearman:.2f} "
                         f"(Pearson {r.Pearson:.2f}); seed SD {r['seed SD']:.3g} (95% CI {r['seed SD lo']:.3g} to {r['seed SD hi']:.3g}) against "
                         f"{r['total SD']:.3g} across the sweep, a ceiling of {r['ceiling rho']:.2f} on any model's held-out correlation.")
    if pr is not None:
        for y in pr.index:
            r = pr.loc[y]
            lines.append(f"`{y}`, fresh pool: {int(r.runs)} sweep runs trained again on a pool drawn afresh at the same state agree with their first training at "
                         f"Spearman {r['Spearman, fresh pool']:.2f} (95% CI {r['Spearman lo']:.2f} to {r['Spearman hi']:.2f}; same pool {r['Spearman, same pool']:.2f}): "
                         f"the pool's own draw adds an SD of {r['pool SD']:.3g} to the seed's {r['seed SD']:.3g}, so a model that knew each run's latent state "
                         f"and mixture exactly could rank held-out runs at best at about {r['ceiling, state known']:.2f} "
                         f"(bootstrap 95% CI {r['ceiling lo']:.2f} to {r['ceiling hi']:.2f}).")
            if draw_seen is not None and y in draw_seen.index:
                v = draw_seen.loc[y]
                saw = v["r(differences)"] > 0 and v.p < 0.05
                lines.append(f"`{y}`: predicted by the causal model (fitted on {int(v['fitted on'])} other runs) from each pool's covariates, the "
                             f"two pools of a pair get predictions that differ by an SD of {v['SD prediction difference']:.3g} (the outcomes by "
                             f"{v['SD outcome difference']:.3g}); the two differences correlate at Pearson r = {v['r(differences)']:.2f} "
                             f"(p = {v.p:.2f}): the covariates {'see part of' if saw else 'do not see'} what the pool's draw does to the outcome.")
    if top is not None:
        lines.append(f"The most math-heavy run ({top.w_math:.0%} math) scored {top.acc_math:.1f}% on the math benchmark (chance is 25%)"
                     + (": the proxies can learn it." if top.acc_math > 35 else ": barely above chance, so math's share has little to act on."))
    for y, r in c.draws_summary.iterrows():
        lines.append(f"Over {int(r.seeds)} draws of the instrument (seeds {', '.join(map(str, c.draws.seed.unique()))}), the causal model ranks "
                     f"held-out runs on `{y}` at Spearman {r['CausalMix mean']:.2f} on average, {r['CausalMix lowest']:.2f} at the lowest "
                     f"(RegMix {r['RegMix mean']:.2f}, lowest {r['RegMix lowest']:.2f}); "
                     + ("the 0.85 goal holds in every draw." if r["CausalMix lowest"] >= 0.85 else "short of the 0.85 goal."))
    lines.append(_curve_line(cfg, c))
    return lines


def _curve_line(cfg, c: Chapter2) -> str:
    """How the held-out Spearman grows with the runs, and what the last doubling says about the goal."""
    ctab, trend, y0 = c.curve_table, c.trend, cfg.estimator.outcome
    ceil_rho, ceil_from = noise_ceiling(c.retest, c.explained, y0)
    ext = extended_curve(cfg, c.curve)
    full, small, own = ctab.index.max(), ctab.index.min(), min(int(cfg.sweep.n_runs), int(ctab.index.max()))
    rises, need = trend["per_doubling"] > 0.01, trend["runs_for_goal"]
    if ceil_rho < trend["goal"]:
        reach = f"the noise ceiling ({ceil_rho:.2f}, {ceil_from}) is below the {trend['goal']} goal, so at this outcome noise no number of runs reaches it"
    elif not rises:
        reach = f"the trend barely rises (under +0.01), so more runs alone would not reach {trend['goal']}"
    elif need > 100 * full:
        reach = f"at that rate the {trend['goal']} goal is more than 100 times the runs away"
    else:
        reach = (f"if that trend held, the {trend['goal']} goal would take about {need:,.0f} runs (an extrapolation), "
                 f"under a noise ceiling of {ceil_rho:.2f} ({ceil_from})")
    seen = ", ".join(map(str, trend["seeds"]))
    tm = trend["means"]
    return (f"On `{y0}` the held-out Spearman is {ctab.loc[small, 'CausalMix mean']:.2f} with {small} runs and "
            f"{ctab.loc[own, 'CausalMix mean']:.2f} with {own}, the sweep's size (mean over {int(ctab.loc[own, 'draws'])} draws; "
            f"RegMix {ctab.loc[small, 'RegMix mean']:.2f} and {ctab.loc[own, 'RegMix mean']:.2f}). "
            + (f"Seed {seen}'s sweep, extended to {full} runs, gives " + " and ".join(
                f"{v:.2f} with {n}" + (" (its subsets)" if n < full else " (all of it)") for n, v in tm.items())
               + f" (RegMix {ctab.loc[full, 'RegMix mean']:.2f} with {full}). " if ext else "")
            + f"Over the last doubling (from {trend['from_runs']} runs, seed{'s' if len(trend['seeds']) > 1 else ''} {seen}) "
            f"that is {trend['per_doubling']:+.3f} per doubling: {reach}.")


def record(cfg, c: Chapter2) -> dict:
    """Chapter 2's entries in results.json (experiments/results.update's keyword arguments)."""
    runs, fs, rt, pr, draw_seen = c.runs, c.floor, c.retest, c.pool, c.draw_seen
    top = _most_math(runs)
    ctab, trend, y0 = c.curve_table, c.trend, cfg.estimator.outcome
    ceil_rho, ceil_from = noise_ceiling(rt, c.explained, y0)
    return dict(
        math_accuracy_best=None if top is None else float(top.acc_math),
        proxy_runs=len(runs), avg_dev_sd=float(runs.avg_dev.std()),
        noise_floor={y: float(fs.loc[y, "seed SD"]) for y in fs.index},
        retest=None if rt is None else {y: {"runs": int(r.runs), "seed_sd": float(r["seed SD"]), "spearman": float(r.Spearman),
                                            "ceiling": float(r["ceiling rho"])} for y, r in rt.iterrows()},
        pool_retest=None if pr is None else {y: {"runs": int(r.runs), "spearman": float(r["Spearman, fresh pool"]),
                                                 "seed_sd": float(r["seed SD"]), "pool_sd": float(r["pool SD"]),
                                                 "ceiling": float(r["ceiling, state known"]),
                                                 "ceiling_ci": [float(r["ceiling lo"]), float(r["ceiling hi"])],
                                                 "covariates_r": None if draw_seen is None else float(draw_seen.loc[y, "r(differences)"]),
                                                 "covariates_p": None if draw_seen is None else float(draw_seen.loc[y, "p"])}
                                             for y, r in pr.iterrows()},
        heldout_spearman_draws={y: {"seeds": [int(s) for s in c.draws.seed.unique()], "heldout": dict(zip(("folds", "repeats"), heldout_plan(cfg))),
                                    "causalmix": [r["CausalMix mean"], r["CausalMix lowest"]],
                                    "regmix": [r["RegMix mean"], r["RegMix lowest"]]} for y, r in c.draws_summary.iterrows()},
        heldout_spearman_curve={"outcome": y0, "runs": [int(n) for n in ctab.index],
                                "causalmix": ctab["CausalMix mean"].tolist(), "regmix": ctab["RegMix mean"].tolist(),
                                "per_doubling": trend["per_doubling"], "from_runs": trend["from_runs"],
                                "runs_for_goal": trend["runs_for_goal"], "trend_seeds": trend["seeds"], "trend_means": trend["means"],
                                "extended_to": int(c.curve.runs.max()) if extended_curve(cfg, c.curve) else None,
                                "noise_ceiling": ceil_rho, "noise_ceiling_from": ceil_from})
