"""Chapter 5's computations on the sweep: the held-out ranking of every method, the semi-synthetic
observational design, the chapter's findings in words, and what it records in results.json. The
notebook only calls these and shows what they return."""
from __future__ import annotations

import pandas as pd

from causalmix.causal import observational as ob
from causalmix.causal import ranking as rk
from causalmix.experiments.target import fit_effect_model, per_domain_prefix

REFERENCE = "CausalMix (DML)"


def ranking(cfg, runs: pd.DataFrame, domains: list[str], X_cols: list[str]) -> dict:
    """Out-of-fold predictions and scores of every method, the display table, and methods that rank nothing."""
    w_cols, y_col, R = [f"w_{d}" for d in domains], cfg.estimator.outcome, cfg.analyses.ranking
    methods = {
        REFERENCE: rk.effect_model_method(lambda train: fit_effect_model(cfg, train, domains)),
        "RegMix (mixture only)": rk.regmix_method(w_cols, y_col, seed=cfg.seed),
        "DMO (per-domain laws)": rk.dmo_method(w_cols, [f"{per_domain_prefix(y_col)}{d}" for d in domains]),
        "Ridge (mixture only)": rk.mixture_linear_method(w_cols, y_col),
        "Forest on (T, X), no DML": rk.forest_method(w_cols, X_cols, y_col, seed=cfg.seed),
        "Equal (constant)": rk.constant_method(y_col),
    }
    oof = rk.oof_predictions(runs, y_col, methods, folds=R.folds, seed=cfg.seed)
    scores = rk.ranking_scores(oof, n_boot=R.bootstrap, seed=cfg.seed, reference=REFERENCE)

    def cell(r, s, d=2):
        if r.method == REFERENCE and s.endswith("_vs_ref"):
            return "(reference)"
        return f"{r[s]:+.{d}f} [{r[s + '_lo']:+.{d}f}, {r[s + '_hi']:+.{d}f}]"
    rows = list(scores.iterrows())
    table = pd.DataFrame({
        "Spearman [95% CI]": [cell(r, "spearman") for _, r in rows],
        "vs CausalMix": [cell(r, "spearman_vs_ref") for _, r in rows],
        f"Regret@1 ({y_col}) [95% CI]": [cell(r, "regret_at_1") for _, r in rows],
        "vs CausalMix ": [cell(r, "regret_at_1_vs_ref") for _, r in rows],
    }, index=scores.method)
    flat = oof.groupby(["method", "fold"], sort=False).predicted.nunique().groupby(level=0, sort=False).max() == 1
    return {"oof": oof, "scores": scores, "table": table, "constant": list(flat[flat].index)}


def observational(cfg, runs: pd.DataFrame, domains: list[str], X_cols: list[str]) -> dict:
    """The semi-synthetic design, randomised and confounded: runs, summaries, paired gains and bias."""
    O = cfg.analyses.observational
    truth = ob.Truth(domains, cfg.estimator.reference, effect=O.effect, slope=O.slope, baseline=O.baseline,
                     confounding=O.confounding, alpha=cfg.sweep.mixture.alpha, noise=O.noise)
    designs = {"randomised": 0.0, "confounded": float(O.confounding)}
    obs = ob.experiment(runs, X_cols, truth, designs, reps=O.reps, rows_per_state=O.rows_per_state,
                        n_estimators=O.n_estimators, cv=cfg.estimator.cv, seed=cfg.seed, n_jobs=int(cfg.threads))
    summ = ob.summary(obs)

    def ci3(r, c):
        return f"{r[c]:.3f} [{r[c + '_lo']:.3f}, {r[c + '_hi']:.3f}]"
    errors = pd.DataFrame({"|ATE error| [95% CI]": [ci3(r, "ate_abs_err") for _, r in summ.iterrows()],
                           "CATE RMSE [95% CI]": [ci3(r, "cate_rmse") for _, r in summ.iterrows()]},
                          index=pd.MultiIndex.from_frame(summ[["design", "method"]]))
    gains = pd.concat([ob.paired_gain(obs, "naive_ols", "dml_linear", "ate_abs_err"),
                       ob.paired_gain(obs, "naive_forest", "dml_forest", "ate_abs_err"),
                       ob.paired_gain(obs, "naive_forest", "dml_forest", "cate_rmse")], ignore_index=True)
    bias = ob.bias_table(obs)
    systematic = bias.groupby(["design", "method"], sort=False).agg(
        mean_abs_bias=("bias", lambda x: x.abs().mean()), domains_with_systematic_bias=("systematic", "sum"))
    ref = domains.index(truth.reference)
    setup = (f"K={len(domains)} domains, reference {truth.reference}; c={truth.effect}, b={truth.slope}, "
             f"beta={truth.baseline}, alpha={truth.alpha}, gamma={O.confounding} (confounded) / 0 (randomised), "
             f"sigma={truth.noise}; {len(runs)} real states x {O.rows_per_state} = {len(runs) * O.rows_per_state} "
             f"simulated runs per table, {O.reps} repetitions\n"
             "true mean return per domain (vs reference): "
             + ", ".join(f"{d} {a - truth.a[ref]:+.2f}" for d, a in zip(domains, truth.a) if d != truth.reference)
             + "\nmean correlation of a domain's share with its own cleanliness: "
             + ", ".join(f"{d} {v:+.2f}" for d, v in obs.groupby("design", sort=False).share_quality_corr.mean().items()))
    return {"designs": designs, "obs": obs, "summary": summ, "errors": errors, "gains": gains, "bias": bias,
            "systematic": systematic, "setup": setup}


def habit(cfg, runs: pd.DataFrame, domains: list[str], X_cols: list[str], log=print) -> dict:
    """The same question on real proxies. A habit sweep (`sweep.design=habit`: the randomised sweep's first
    `analyses.observational.real_runs` pools, each mixture following its pool's measured cleanliness) is what a
    practitioner's logs look like; the randomised sweep is the experiment. Runs are split by id parity into two
    halves: a model fitted on one half of either sweep predicts the other half of the *randomised* sweep, whose
    mixtures were set independently of the pool, as an intervention sets them. So each method is scored on the
    same runs after the same number of training runs, and only the design of its training data differs. Beside
    it, each domain's mean marginal return (at the runs' mean mixture) as the fits on all runs read it."""
    import numpy as np
    from omegaconf import OmegaConf

    from causalmix.experiments.sweep import run_sweep
    n = min(int(cfg.analyses.observational.real_runs), len(runs))
    obs = run_sweep(OmegaConf.merge(cfg, {"sweep": {"design": "habit", "n_runs": n}}), log=log)
    rand = runs[runs.run_id < n].sort_values("run_id").reset_index(drop=True)
    obs = obs.sort_values("run_id").reset_index(drop=True)
    w_cols, y = [f"w_{d}" for d in domains], cfg.estimator.outcome
    methods = {REFERENCE: rk.effect_model_method(lambda tr: fit_effect_model(cfg, tr, domains)),
               "Forest on (T, X), no DML": rk.forest_method(w_cols, X_cols, y, seed=cfg.seed),
               "RegMix (mixture only)": rk.regmix_method(w_cols, y, seed=cfg.seed)}
    preds = {}
    for design, train_all in (("randomised", rand), ("habit", obs)):
        for m, fit in methods.items():
            for half in (0, 1):
                train = train_all[train_all.run_id % 2 == half].reset_index(drop=True)
                test = rand[rand.run_id % 2 != half].reset_index(drop=True)
                preds[design, m, half] = (test[y].to_numpy(float), np.asarray(fit(train)(test), dtype=float))
    # the score: the two halves' Spearman, averaged; 95% CI: runs resampled within each test half (one
    # resample shared by every (design, method), so the designs' difference is paired)
    n_boot = int(cfg.analyses.ranking.bootstrap)
    rng = np.random.default_rng(cfg.seed)
    sizes = {half: len(preds[next(iter(preds))[:2] + (half,)][0]) for half in (0, 1)}
    draws = [{half: rng.integers(0, sizes[half], sizes[half]) for half in (0, 1)} for _ in range(n_boot)]

    def score(design, m, idx=None):
        return float(np.mean([rk._spearman(*(a if idx is None else a[idx[h]] for a in preds[design, m, h]))
                              for h in (0, 1)]))
    rows = []
    for m in methods:
        boot = {d: np.array([score(d, m, i) for i in draws]) for d in ("randomised", "habit")}
        for d in ("randomised", "habit"):
            lo, hi = np.nanpercentile(boot[d], [2.5, 97.5])
            rows.append({"method": m, "trained on": d, "spearman": score(d, m), "lo": lo, "hi": hi})
        diff = boot["habit"] - boot["randomised"]
        lo, hi = np.nanpercentile(diff, [2.5, 97.5])
        rows.append({"method": m, "trained on": "habit - randomised", "spearman": score("habit", m) - score("randomised", m),
                     "lo": lo, "hi": hi})
    table = pd.DataFrame(rows)

    def tilt(df):    # mean over domains of corr(share, own measured cleanliness)
        return float(np.mean([np.corrcoef(df[f"w_{d}"], df[f"ws_{d}"])[0, 1] for d in domains]))
    ref = f"w_{cfg.estimator.reference}"
    returns = {}
    for design, df in (("randomised", rand), ("habit", obs)):
        model = fit_effect_model(cfg, df, domains)
        th = model.theta(df[model.inputs])
        returns[f"DML, {design}"] = dict(zip([c[2:] for c in model.others], th.mean(axis=0)))
        if design == "habit":
            scores = model.nuisance_scores()
            t_r2 = float(np.mean([v for k, v in scores.items() if k.startswith("t:")]))
    from sklearn.ensemble import RandomForestRegressor
    f = RandomForestRegressor(n_estimators=200, min_samples_leaf=3, max_features=0.5, random_state=cfg.seed,
                              n_jobs=1).fit(obs[w_cols + X_cols].to_numpy(float), obs[y].to_numpy(float))
    w0, h, X = obs[w_cols].mean().to_numpy(), 0.05, obs[X_cols].to_numpy(float)
    base = f.predict(np.c_[np.tile(w0, (len(obs), 1)), X])
    naive = {}
    for c in w_cols:
        if c != ref:
            w = w0.copy()
            w[w_cols.index(c)] += h
            w[w_cols.index(ref)] -= h
            naive[c[2:]] = float(((f.predict(np.c_[np.tile(w, (len(obs), 1)), X]) - base) / h).mean())
    returns["forest, no DML, habit"] = naive
    setup = (f"{n} habit runs on the pools of randomised runs 0..{n - 1}; gamma = {cfg.sweep.habit.confounding}; "
             f"mean corr(share, own ws): habit {tilt(obs):+.2f}, randomised {tilt(rand):+.2f}; the DML's treatment "
             f"nuisance R^2 on the habit sweep (how well the state predicts the mixture): {t_r2:.2f}")
    return {"runs": obs, "table": table, "returns": pd.DataFrame(returns).T, "setup": setup,
            "tilt": {"habit": tilt(obs), "randomised": tilt(rand)}, "t_r2": t_r2}


def habit_lines(hab: dict) -> list[str]:
    """What the real habit sweep showed, in words computed from its table."""
    t = hab["table"].set_index(["method", "trained on"])
    out = [f"**On real proxies (a habit sweep of {len(hab['runs'])} runs).** The mixture followed the pool: the mean "
           f"correlation of a domain's share with its own measured cleanliness is {hab['tilt']['habit']:+.2f} "
           f"(randomised sweep {hab['tilt']['randomised']:+.2f}), and the state predicts the mixture with R^2 "
           f"{hab['t_r2']:.2f}. Scored on randomised runs (an intervention's mixtures) after training on half of "
           "either sweep, Spearman:"]
    for m in dict.fromkeys(hab["table"].method):
        r, h, d = t.loc[(m, "randomised")], t.loc[(m, "habit")], t.loc[(m, "habit - randomised")]
        verdict = ("the habit design cost it rank" if d.hi < 0 else "the habit design helped it" if d.lo > 0
                   else "no difference shown")
        out.append(f"{m}: trained on randomised runs {r.spearman:+.2f} [{r.lo:+.2f}, {r.hi:+.2f}], on habit runs "
                   f"{h.spearman:+.2f} [{h.lo:+.2f}, {h.hi:+.2f}]; difference {d.spearman:+.2f} [{d.lo:+.2f}, {d.hi:+.2f}]: "
                   f"{verdict}.")
    return out


def findings(cfg, strategy: list[str], rank: dict, obsv: dict, n_domains: int, timing: dict, total: float,
             hab: dict | None = None) -> list[str]:
    """The chapter's closing findings, computed from its numbers."""
    y_col, lines = cfg.estimator.outcome, []
    if cfg.scale.name == "smoke":
        lines.append("*These numbers come from the `smoke` scale: too few runs to mean anything.*")
    lines.append("**Interpreter.** " + strategy[0] + " " + strategy[-1])
    sc = rank["scores"].set_index("method")
    cm = sc.loc[REFERENCE]
    best_rho, best_reg = sc.spearman.idxmax(), sc.regret_at_1.idxmin()
    lines.append(f"**Ranking held-out runs ({y_col}).** CausalMix's out-of-fold Spearman is {cm.spearman:+.2f} "
                 f"[{cm.spearman_lo:+.2f}, {cm.spearman_hi:+.2f}] and its Regret@1 {cm.regret_at_1:.2f} "
                 f"[{cm.regret_at_1_lo:.2f}, {cm.regret_at_1_hi:.2f}] against Equal's floor "
                 f"{sc.loc['Equal (constant)', 'regret_at_1']:.2f}; the best Spearman is {best_rho}'s "
                 f"({sc.loc[best_rho, 'spearman']:+.2f}), the lowest regret {best_reg}'s "
                 f"({sc.loc[best_reg, 'regret_at_1']:.2f}).")
    for m, r in sc.drop(index=REFERENCE).iterrows():
        lo, hi = r.spearman_vs_ref_lo, r.spearman_vs_ref_hi
        verdict = ("ranks better than CausalMix" if lo > 0 else "ranks worse than CausalMix" if hi < 0
                   else "is not distinguishable from CausalMix")
        lines.append(f"{m}: Spearman {r.spearman:+.2f}, difference to CausalMix {r.spearman_vs_ref:+.2f} "
                     f"[{lo:+.2f}, {hi:+.2f}]: {verdict}.")
    g = obsv["gains"].set_index(["design", "naive", "metric"])
    summ, L = obsv["summary"], ob.LABELS
    for design in obsv["designs"]:
        r = g.loc[(design, L["naive_ols"], "ate_abs_err")]
        s = summ[(summ.design == design)].set_index("method")
        verdict = ("DML's error is lower" if r.ci_lo > 0 else "DML's error is higher" if r.ci_hi < 0
                   else "no difference shown")
        lines.append(f"**Orthogonalisation, {design} design.** |ATE error|: naive OLS "
                     f"{s.loc[L['naive_ols'], 'ate_abs_err']:.3f}, LinearDML {s.loc[L['dml_linear'], 'ate_abs_err']:.3f} "
                     f"(naive - DML {r.naive_minus_dml:+.3f} [{r.ci_lo:+.3f}, {r.ci_hi:+.3f}]: {verdict}); naive forest "
                     f"{s.loc[L['naive_forest'], 'ate_abs_err']:.3f}, CausalForestDML "
                     f"{s.loc[L['dml_forest'], 'ate_abs_err']:.3f}.")
    nb_ = obsv["systematic"]["domains_with_systematic_bias"]
    lines.append("Domains (of " + str(n_domains - 1) + ") whose signed ATE error's 95% CI excludes 0: " + "; ".join(
        f"{m} {d}: {int(v)}" for (d, m), v in nb_.items()) + ".")
    if hab is not None:
        lines += habit_lines(hab)
    habit_s = f", habit sweep {timing['habit']:.0f} s" if "habit" in timing else ""
    lines.append(f"This chapter took {total:.0f} s (interpreter {timing['interpret']:.0f} s, ranking "
                 f"{timing['ranking']:.0f} s, semi-synthetic design {timing['observational']:.0f} s{habit_s}); it trains "
                 "no target model" + (", and proxies only for the habit sweep." if hab is not None else " or proxy."))
    return lines


def results_entry(policy_leaves: pd.DataFrame, rank: dict, obsv: dict, total: float, hab: dict | None = None) -> dict:
    """What chapter 5 adds to results.json under `analyses`."""
    pl = policy_leaves.iloc[0]
    sc = rank["scores"].set_index("method")
    return {
        "policy_tree_largest_leaf": {"where": pl["where"], "action": pl["action"], "states": int(pl["states"])},
        "ranking": {m: {"spearman": [r.spearman, r.spearman_lo, r.spearman_hi],
                        "regret_at_1": [r.regret_at_1, r.regret_at_1_lo, r.regret_at_1_hi]} for m, r in sc.iterrows()},
        "orthogonalisation": {f"{r.design}:{r.naive} - {r.dml}:{r.metric}": [r.naive_minus_dml, r.ci_lo, r.ci_hi]
                              for r in obsv["gains"].itertuples()},
        **({"habit_sweep": {f"{r['method']}:{r['trained on']}": [r.spearman, r.lo, r.hi] for _, r in hab["table"].iterrows()}}
           if hab is not None else {}),
        "seconds": total}
