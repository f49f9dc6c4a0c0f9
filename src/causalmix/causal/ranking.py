"""Does a model rank held-out proxy runs? Out-of-fold Spearman and Regret@1, with bootstrap CIs over runs.

Each method is a function `fit(train_df) -> predict` with `predict(held_df) -> outcome predictions`. The runs
are split into K folds once (one seeded permutation shared by every method); a method fitted on K-1 folds
predicts the held-out fold. Two scores:

- Spearman: within each fold, the rank correlation of predicted and actual outcome over the held-out runs,
  averaged over folds (each fold is one ranking task; pooling folds would also score how the per-fold models'
  offsets happen to order the folds). A constant predictor ranks nothing and scores 0.
- Regret@1: within each fold, the best held-out run's outcome minus the outcome of the run the method
  ranks first (ties at the top, as a constant predictor has, count as a uniform pick among them, i.e. the
  mean of the tied runs), averaged over folds. 0 is perfect; Equal's regret is the best minus the mean.

CIs: percentile bootstrap over runs, resampling runs within each fold (the fold structure is kept), with
one resample shared by every method so the differences to a reference method are paired.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from causalmix.errors import ConfigError

Fit = Callable[[pd.DataFrame], Callable[[pd.DataFrame], np.ndarray]]


def folds_of(n: int, folds: int, seed: int) -> np.ndarray:
    """Fold label of each row: a seeded permutation cut into `folds` near-equal parts."""
    if not 2 <= folds <= n:
        raise ConfigError(f"folds={folds}: expected 2 <= folds <= {n} (the number of runs)")
    order = np.random.default_rng(seed).permutation(n)
    label = np.empty(n, dtype=int)
    for k, part in enumerate(np.array_split(order, folds)):
        label[part] = k
    return label


def oof_predictions(runs: pd.DataFrame, outcome: str, methods: dict[str, Fit], folds: int = 5,
                    seed: int = 0) -> pd.DataFrame:
    """Long table: one row per (method, run) with fold, actual and out-of-fold predicted outcome."""
    if outcome not in runs:
        raise ConfigError(f"outcome {outcome!r} not in the runs table")
    runs = runs.reset_index(drop=True)
    label = folds_of(len(runs), folds, seed)
    rows = []
    for name, fit in methods.items():
        for k in range(folds):
            train, held = runs[label != k].reset_index(drop=True), runs[label == k].reset_index(drop=True)
            pred = np.asarray(fit(train)(held), dtype=float).reshape(len(held))
            rows.append(pd.DataFrame({"method": name, "fold": k, "row": np.flatnonzero(label == k),
                                      "actual": held[outcome].to_numpy(dtype=float), "predicted": pred}))
    return pd.concat(rows, ignore_index=True)


def _spearman(actual, pred) -> float:
    """Spearman's rho (average ranks for ties, as scipy); 0 when either side is constant."""
    if len(pred) < 2 or np.ptp(pred) == 0 or np.ptp(actual) == 0:
        return 0.0
    a, p = rankdata(actual), rankdata(pred)
    a, p = a - a.mean(), p - p.mean()
    return float((a * p).sum() / np.sqrt((a * a).sum() * (p * p).sum()))


def regret_at_1(actual, pred) -> float:
    """Best actual minus the (mean) actual of the run(s) ranked first by pred."""
    actual, pred = np.asarray(actual, dtype=float), np.asarray(pred, dtype=float)
    top = pred >= pred.max() - 1e-12 * max(1.0, abs(pred.max()))
    return float(actual.max() - actual[top].mean())


def _scores(sub: pd.DataFrame, idx=None) -> tuple[float, float]:
    a, p, f = sub.actual.to_numpy(), sub.predicted.to_numpy(), sub.fold.to_numpy()
    if idx is not None:
        a, p, f = a[idx], p[idx], f[idx]
    ks = np.unique(f)
    rho = [_spearman(a[f == k], p[f == k]) for k in ks]
    reg = [regret_at_1(a[f == k], p[f == k]) for k in ks]
    return float(np.mean(rho)), float(np.mean(reg))


def ranking_scores(oof: pd.DataFrame, n_boot: int = 1000, seed: int = 0, reference: str | None = None,
                   level: float = 0.95) -> pd.DataFrame:
    """Per method: Spearman and Regret@1 with percentile bootstrap CIs over runs (resampled within folds),
    and, if `reference` names a method, each method's paired difference to it (method - reference)."""
    methods = list(dict.fromkeys(oof.method))
    if reference is not None and reference not in methods:
        raise ConfigError(f"reference method {reference!r}: expected one of {methods}")
    subs = {m: oof[oof.method == m].sort_values("row").reset_index(drop=True) for m in methods}
    first = subs[methods[0]]
    for m in methods:
        if not np.array_equal(subs[m].row.to_numpy(), first.row.to_numpy()):
            raise ConfigError(f"method {m!r} predicted other runs than {methods[0]!r}; expected the same runs")
    point = {m: _scores(subs[m]) for m in methods}
    rng = np.random.default_rng(seed)
    by_fold = [np.flatnonzero(first.fold.to_numpy() == k) for k in np.unique(first.fold)]
    boot = {m: np.empty((n_boot, 2)) for m in methods}
    for b in range(n_boot):
        idx = np.concatenate([rng.choice(ix, size=len(ix), replace=True) for ix in by_fold])
        for m in methods:
            boot[m][b] = _scores(subs[m], idx)
    lo_q, hi_q = 50 * (1 - level), 50 * (1 + level)
    rows = []
    for m in methods:
        row = {"method": m, "runs": len(subs[m]), "folds": len(by_fold)}
        for j, s in enumerate(("spearman", "regret_at_1")):
            row[s] = point[m][j]
            row[f"{s}_lo"], row[f"{s}_hi"] = np.percentile(boot[m][:, j], [lo_q, hi_q])
            if reference is not None:
                d = boot[m][:, j] - boot[reference][:, j]
                row[f"{s}_vs_ref"] = point[m][j] - point[reference][j]
                row[f"{s}_vs_ref_lo"], row[f"{s}_vs_ref_hi"] = np.percentile(d, [lo_q, hi_q])
        rows.append(row)
    return pd.DataFrame(rows)


# -- the comparison methods that need nothing but the runs table --------------------------------------

def constant_method(outcome: str) -> Fit:
    """Equal / constant: predicts the training mean for every run (ranks nothing: the floor)."""
    def fit(train):
        m = float(train[outcome].mean())
        return lambda held: np.full(len(held), m)
    return fit


def mixture_linear_method(treatment: list[str], outcome: str) -> Fit:
    """State-agnostic regression: ridge (CV-chosen penalty) of the outcome on the mixture shares alone."""
    def fit(train):
        from sklearn.linear_model import RidgeCV
        m = RidgeCV(alphas=np.logspace(-3, 3, 13)).fit(train[treatment].to_numpy(float), train[outcome].to_numpy(float))
        return lambda held: m.predict(held[treatment].to_numpy(float))
    return fit


def regmix_method(treatment: list[str], outcome: str, seed: int = 0) -> Fit:
    """RegMix: LightGBM on the mixture alone (causal.baselines.RegMix, the paper's settings)."""
    def fit(train):
        from causalmix.causal.baselines import RegMix
        names = [c[2:] if c.startswith("w_") else c for c in treatment]
        m = RegMix(seed=seed).fit(train[treatment].set_axis(names, axis=1), train[outcome].to_numpy(float))
        return lambda held: m.predict(held[treatment].set_axis(names, axis=1))
    return fit


def dmo_method(treatment: list[str], per_domain: list[str]) -> Fit:
    """DMO-style: one power law per domain in its own share (causal/dmo.py), state ignored; the mean of the
    laws predicts the outcome (the outcome must be the mean of the `per_domain` columns)."""
    def fit(train):
        from causalmix.causal.dmo import DMOLaw
        names = [c[2:] if c.startswith("w_") else c for c in treatment]
        m = DMOLaw().fit(train[treatment].set_axis(names, axis=1), train[per_domain].set_axis(names, axis=1))
        return lambda held: m.predict(held[treatment].set_axis(names, axis=1))
    return fit


def forest_method(treatment: list[str], covariates: list[str], outcome: str, seed: int = 0) -> Fit:
    """No orthogonalisation: one random forest of the outcome on mixture and state together."""
    def fit(train):
        from sklearn.ensemble import RandomForestRegressor
        cols = list(treatment) + list(covariates)
        m = RandomForestRegressor(n_estimators=200, min_samples_leaf=3, max_features=0.5, random_state=seed,
                                  n_jobs=1).fit(train[cols].to_numpy(float), train[outcome].to_numpy(float))
        return lambda held: m.predict(held[cols].to_numpy(float))
    return fit


def effect_model_method(make_model: Callable[[pd.DataFrame], object]) -> Fit:
    """CausalMix: `make_model(train)` returns a fitted MixtureEffectModel; it predicts E[Y|X] + theta(X)(T - E[T|X])."""
    def fit(train):
        m = make_model(train)
        return lambda held: m.predict_outcome(held[m.inputs], held[m.treatment])
    return fit
