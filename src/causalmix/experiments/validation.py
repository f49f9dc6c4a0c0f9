"""Held-out checks of the fitted models on proxy runs they did not see."""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from causalmix.causal.baselines import RegMix
from causalmix.experiments.target import fit_effect_model


def heldout_check(cfg, runs: pd.DataFrame, domains: list[str], folds: int = 5) -> tuple[pd.DataFrame, pd.DataFrame]:
    """K-fold predictions of the outcome by the causal model and by RegMix (mixture only)."""
    y = cfg.estimator.outcome
    w_cols = [f"w_{d}" for d in domains]
    order = np.random.default_rng(cfg.seed).permutation(len(runs))
    parts = np.array_split(order, folds)
    rows = []
    for k, test in enumerate(parts):
        train = runs.iloc[np.setdiff1d(order, test)].reset_index(drop=True)
        held = runs.iloc[test].reset_index(drop=True)
        cm = fit_effect_model(cfg, train, domains)
        pred = cm.predict_outcome(held[cm.covariates], held[w_cols])
        reg = RegMix(seed=cfg.seed).fit(train[w_cols].set_axis(domains, axis=1), train[y].to_numpy())
        pred_r = reg.predict(held[w_cols].set_axis(domains, axis=1))
        for m, p in (("CausalMix (DML)", pred), ("RegMix (mixture only)", pred_r)):
            rows += [{"fold": k, "run_id": r, "model": m, "actual": a, "predicted": q}
                     for r, a, q in zip(held.run_id, held[y], p)]
    ho = pd.DataFrame(rows)
    scores = []
    for m, sub in ho.groupby("model", sort=False):
        err = sub.actual - sub.predicted
        scores.append({"model": m, "spearman": spearmanr(sub.actual, sub.predicted).statistic,
                       "r2": 1 - (err ** 2).sum() / ((sub.actual - sub.actual.mean()) ** 2).sum(),
                       "mae": err.abs().mean(), "runs": len(sub)})
    return ho, pd.DataFrame(scores)
