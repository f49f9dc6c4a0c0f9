"""Baseline mixtures CausalMix is compared against: Equal, Natural and RegMix.

RegMix (Liu et al., 2024, github.com/sail-sg/regmix) fits a LightGBM regressor from the
mixture alone to a target metric, simulates many mixtures from a Dirichlet around a prior,
and returns the mean of the top-k simulated mixtures. It ignores the pool's state, which is
exactly what CausalMix is meant to improve on, so it is kept faithful to the paper here.
"""

from __future__ import annotations

import csv
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd

from causalmix.errors import ConfigError
from causalmix.causal.tables import check_mixtures, numeric, read_table, require_columns, require_rows, require_varying

SUM_TOL = 1e-2  # RegMix files round weights to 3 decimals, so rows sum to 1 only roughly
MIN_ROWS = 8


def equal_mixture(domains: list[str]) -> dict[str, float]:
    """Every domain gets the same share."""
    domains = list(domains)
    if not domains:
        raise ConfigError("equal_mixture: got no domains, expected at least one domain name")
    if len(set(domains)) != len(domains):
        raise ConfigError(f"equal_mixture: duplicate domain names in {domains}")
    return {d: 1.0 / len(domains) for d in domains}


def natural_mixture(counts: Mapping[str, float]) -> dict[str, float]:
    """The pool's own proportions: each domain's share of the available samples/tokens."""
    if not counts:
        raise ConfigError("natural_mixture: got no domain counts, expected {domain: count}")
    for d, c in counts.items():
        if not np.isfinite(c) or c < 0:
            raise ConfigError(f"natural_mixture: count for {d!r} is {c}, expected a finite number >= 0")
    total = float(sum(counts.values()))
    if total <= 0:
        raise ConfigError("natural_mixture: all domain counts are 0, expected a positive total")
    return {d: float(c) / total for d, c in counts.items()}


class RegMix:
    """LightGBM on the mixture alone (state-agnostic): the RegMix paper's regressor.

    Defaults follow regression_fitting/regression.ipynb of sail-sg/regmix: objective
    'regression' (L2), 1000 boosting rounds, learning rate 1e-2, other LightGBM settings at
    their defaults (num_leaves=31, min_child_samples=20). The notebook early-stops (3 rounds)
    on a slice of its own training runs; we train the full 1000 rounds on all given runs, so
    nothing is ever tuned on test data. One thread by default: with 512 rows threading buys
    little, and on a busy machine LightGBM's OpenMP threads slow the fit down tenfold.
    """

    def __init__(self, n_estimators: int = 1000, learning_rate: float = 1e-2, num_leaves: int = 31,
                 min_child_samples: int = 20, seed: int = 0, n_jobs: int = 1):
        self.params = dict(objective="regression", n_estimators=n_estimators, learning_rate=learning_rate,
                           num_leaves=num_leaves, min_child_samples=min_child_samples, random_state=seed,
                           n_jobs=n_jobs, deterministic=True, force_row_wise=True, verbosity=-1)
        self.model: lgb.LGBMRegressor | None = None
        self.domains: list[str] = []
        self.train_mean: np.ndarray | None = None
        self.fit_seconds = 0.0

    def fit(self, mixtures: pd.DataFrame, y) -> "RegMix":
        y = np.asarray(y, dtype=float).ravel()
        if len(mixtures) != len(y):
            raise ConfigError(f"RegMix.fit: {len(mixtures)} mixture rows but {len(y)} targets, expected equal counts")
        X = mixtures.to_numpy(dtype=float)
        if not np.isfinite(X).all() or not np.isfinite(y).all():
            raise ConfigError("RegMix.fit: mixtures or targets contain NaN/inf, expected finite numbers")
        self.domains = [str(c) for c in mixtures.columns]
        self.train_mean = X.mean(axis=0) / X.mean(axis=0).sum()
        t0 = time.perf_counter()
        self.model = lgb.LGBMRegressor(**self.params).fit(X, y)
        self.fit_seconds = time.perf_counter() - t0
        return self

    def _matrix(self, mixtures: pd.DataFrame) -> np.ndarray:
        if self.model is None:
            raise RuntimeError("RegMix: call fit() before predict()/propose()")
        missing = [d for d in self.domains if d not in mixtures.columns]
        if missing:
            raise ConfigError(f"RegMix: mixtures lack domain columns {missing}, expected all of {self.domains}")
        return mixtures[self.domains].to_numpy(dtype=float)

    def predict(self, mixtures: pd.DataFrame) -> np.ndarray:
        return self.model.predict(self._matrix(mixtures))

    def propose(self, prior: Mapping[str, float] | None = None, n_samples: int = 100_000, top_k: int = 100,
                minimize: bool = False, seed: int = 0) -> dict[str, float]:
        """Simulate mixtures ~ Dirichlet(alpha = prior), predict, and average the top_k best.

        As in the RegMix notebook the Dirichlet concentration *is* the prior distribution (it
        sums to 1), so samples are sparse and spread widely around the prior. With no prior we
        use the mean training mixture: the region the proxy runs covered and the trees know.
        """
        if self.model is None:
            raise RuntimeError("RegMix: call fit() before propose()")
        if n_samples < 1 or not 1 <= top_k <= n_samples:
            raise ConfigError(f"RegMix.propose: need 1 <= top_k ({top_k}) <= n_samples ({n_samples})")
        if prior is None:
            alpha = self.train_mean.copy()
        else:
            unknown = sorted(set(prior) - set(self.domains))
            if unknown:
                raise ConfigError(f"RegMix.propose: prior has unknown domains {unknown}, "
                                  f"expected some of {self.domains}")
            alpha = np.array([float(prior.get(d, 0.0)) for d in self.domains])
            if not np.isfinite(alpha).all() or (alpha < 0).any() or alpha.sum() <= 0:
                raise ConfigError(f"RegMix.propose: prior {dict(prior)} must be finite, >= 0, with a positive sum")
            alpha = alpha / alpha.sum()
        rng = np.random.default_rng(seed)
        live = alpha > 0  # a domain with zero prior mass is never sampled
        samples = np.zeros((n_samples, len(alpha)))
        samples[:, live] = rng.dirichlet(alpha[live], n_samples)
        ok = np.isfinite(samples).all(axis=1) & (samples.sum(axis=1) > 0)
        samples = samples[ok]
        pred = self.model.predict(samples)
        order = np.argsort(pred if minimize else -pred, kind="stable")
        best = samples[order[:min(top_k, len(order))]].mean(axis=0)
        best = best / best.sum()
        return {d: float(w) for d, w in zip(self.domains, best)}


def _read_csv(path, what: str) -> pd.DataFrame:
    """A RegMix-format CSV: first column an id, then data columns (read through causalmix.causal.tables)."""
    df = read_table(path, what)
    where = f"{what} file {str(path)!r}"
    if df.shape[1] < 2:
        raise ConfigError(f"{where} has {df.shape[1]} column(s), expected an id column plus data")
    ids = df.iloc[:, 0]
    if ids.isna().any():
        raise ConfigError(f"{where} has an empty id at row {int(np.flatnonzero(ids.isna())[0])}, expected an id in "
                          "every row of its first column")
    if ids.duplicated().any():
        dup = ids[ids.duplicated()].iloc[0]
        dup = dup.item() if isinstance(dup, np.generic) else dup
        raise ConfigError(f"{where} repeats id {dup!r} in its first column, expected unique ids")
    return df.set_index(df.columns[0])


def read_mixtures_csv(path, what: str = "mixtures", min_rows: int = 1) -> pd.DataFrame:
    """A mixtures CSV (first column id, then one weight column per domain), checked row by row."""
    df = _read_csv(path, what)
    where = f"{what} file {str(path)!r}"
    require_rows(df, min_rows, where)
    W = numeric(df, df.columns, where, row="id")
    check_mixtures(W, df.columns, df.index, where, tol=SUM_TOL, row="id")
    return pd.DataFrame(W, index=df.index, columns=df.columns)


def read_regmix_csvs(ratios_csv, metrics_csv, target: str) -> tuple[pd.DataFrame, pd.Series]:
    """Training data in the RegMix release format: a mixtures file and a metrics file, matched by id."""
    metrics = _read_csv(metrics_csv, "metrics")
    if target not in metrics.columns:
        raise ConfigError(f"target column {target!r} not in {str(metrics_csv)!r}, available: {list(metrics.columns)}")
    mixtures = read_mixtures_csv(ratios_csv, "ratios", min_rows=MIN_ROWS)
    a, b = set(mixtures.index), set(metrics.index)
    if a != b:
        only_r, only_m = sorted(a - b, key=str)[:5], sorted(b - a, key=str)[:5]
        raise ConfigError(f"ids differ between {str(ratios_csv)!r} and {str(metrics_csv)!r}: "
                          f"only in ratios {only_r}, only in metrics {only_m}; expected the same ids")
    where = f"metrics file {str(metrics_csv)!r}"
    y = pd.Series(numeric(metrics.loc[mixtures.index], [target], where, row="id")[:, 0], index=mixtures.index)
    require_varying(y.to_numpy(), target, where, "target")
    return mixtures, y.rename(target)


def main_regmix(ratios: str, metrics: str, target: str, predict: str | None = None, out: str | None = None,
                minimize: bool = False, seed: int = 0, stdout=sys.stdout) -> None:
    """`causalmix regmix`: fit RegMix on proxy runs, then predict given mixtures or recommend one.

    With `predict`, writes `id,<target>_pred` for every row of that mixtures CSV to `out`
    (or stdout). Without, writes the recommended mixture as a header plus one CSV row to `out`
    (or stdout); the simulation's prior is the mean training mixture.
    """
    X, y = read_regmix_csvs(ratios, metrics, target)
    test = read_mixtures_csv(predict, "predict") if predict is not None else None  # fail before fitting
    if test is not None:
        require_columns(test, list(X.columns), f"predict file {str(predict)!r}", role="domain column")
    if out is not None:
        parent = Path(out).resolve().parent
        if Path(out).is_dir():
            raise ConfigError(f"--out {str(out)!r} is a directory, expected a path for the output CSV file")
        if not parent.is_dir():
            raise ConfigError(f"--out {str(out)!r}: directory {str(parent)!r} does not exist, expected an existing "
                              "directory for the output CSV file")
    reg = RegMix(seed=seed).fit(X, y)
    fh = open(out, "w", newline="") if out is not None else stdout
    try:
        w = csv.writer(fh, lineterminator="\n")
        if test is not None:
            pred = reg.predict(test)
            w.writerow(["id", f"{target}_pred"])
            for i, p in zip(test.index, pred):
                w.writerow([i, repr(float(p))])
        else:
            mix = reg.propose(minimize=minimize, seed=seed)
            w.writerow(list(mix))
            w.writerow([f"{v:.6f}" for v in mix.values()])
    finally:
        if out is not None:
            fh.close()
