"""What does orthogonalisation buy? A semi-synthetic observational design with a known answer.

The pool states are real: the covariates of the sweep's proxy runs, each state carrying `rows_per_state`
simulated runs. The mixtures and the outcome are simulated, so the true marginal return of every domain in
every state is known. The data-generating process
(written out in book/method.md, "Semi-synthetic observational design"):

    z_{i,d}  = clip((ws_{d,i} - mean_d) / sd_d, -2.5, 2.5)          domain d's standardised cleanliness in run i
    tau_d(z) = a_d + b * z_d,   a_d = c (-1 + 2 j_d / (K - 1))       domain d's return (j_d: its index, 0..K-1)
    g(z)     = beta * sum_d exp(z_d)                                 the state's own effect on the outcome
    W_i      ~ Dirichlet(alpha * K * softmax(gamma * z_i))          the practitioner's habit: more share to
                                                                     domains whose pool looks cleaner
    Y_i      = g(z_i) + sum_d tau_d(z_i) W_{i,d} + sigma * eps_i,   eps_i ~ N(0, 1)

As the K shares sum to 1, the estimable return of domain d is relative to the reference r:
theta_d(z) = tau_d(z) - tau_r(z) = a_d - a_r + b (z_d - z_r). gamma = 0 is the randomised design the sweep
uses; gamma > 0 confounds: a clean pool gets more of its clean domains *and* a higher g, so a regression that
does not fully adjust for the state credits the mixture with the state's effect.

Four estimators, two pairs that differ only in orthogonalisation:
- `naive_ols`: OLS of Y on (T', X): a constant theta (the coefficients of T');
- `dml_linear`: econml LinearDML with X as controls (W), random-forest nuisances: a constant theta;
- `naive_forest`: one random forest of Y on (T', X), theta_d(x) read as the forest's slope in T'_d between
  the 10th and 90th percentile of T'_d, the other coordinates held at the run's own values (an S-learner);
- `dml_forest`: econml CausalForestDML with X as effect modifiers, random-forest nuisances: theta(x).
Errors against the truth over the runs' states: the CATE RMSE over (state, domain), and the mean over domains of
|mean_i theta_hat_d - mean_i theta_d| (ATE error); the signed per-domain ATE bias is kept too.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from causalmix.errors import ConfigError

METHODS = ("naive_ols", "dml_linear", "naive_forest", "dml_forest")
LABELS = {"naive_ols": "naive OLS (Y ~ T + X)", "dml_linear": "LinearDML (X as controls)",
          "naive_forest": "naive forest (Y ~ T, X)", "dml_forest": "CausalForestDML"}


@dataclass
class Truth:
    """The known world: every parameter of the data-generating process."""
    domains: list[str]          # short names, in the order of the quality columns
    reference: str
    effect: float = 1.0         # c: the spread of the domains' mean returns
    slope: float = 1.0          # b
    baseline: float = 2.0       # beta
    confounding: float = 2.0    # gamma (0 = randomised)
    alpha: float = 1.0          # Dirichlet concentration per domain, as sweep.mixture.alpha
    noise: float = 0.5          # sigma

    def __post_init__(self):
        if len(self.domains) < 2:
            raise ConfigError(f"need at least 2 domains, got {self.domains}")
        if self.reference not in self.domains:
            raise ConfigError(f"reference {self.reference!r}: expected one of {self.domains}")
        for k in ("effect", "slope", "baseline", "confounding", "noise"):
            v = getattr(self, k)
            if not np.isfinite(v) or v < 0:
                raise ConfigError(f"observational.{k}={v!r}: expected a finite number >= 0")
        if not self.alpha > 0:
            raise ConfigError(f"alpha={self.alpha!r}: expected a positive number")

    @property
    def a(self) -> np.ndarray:
        k = len(self.domains)
        return self.effect * (-1.0 + 2.0 * np.arange(k) / (k - 1))

    @property
    def others(self) -> list[str]:
        return [d for d in self.domains if d != self.reference]

    def tau(self, z: np.ndarray) -> np.ndarray:
        return self.a[None, :] + self.slope * z

    def theta(self, z: np.ndarray) -> np.ndarray:
        """(n, K-1) true marginal returns relative to the reference, columns in `others` order."""
        t = self.tau(z)
        r = self.domains.index(self.reference)
        return np.stack([t[:, j] - t[:, r] for j, d in enumerate(self.domains) if d != self.reference], axis=1)

    def g(self, z: np.ndarray) -> np.ndarray:
        return self.baseline * np.exp(z).sum(axis=1)

    def mixtures(self, z: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """The observational design: Dirichlet around softmax(gamma z), i.e. tilted toward clean domains."""
        logits = self.confounding * z
        p = np.exp(logits - logits.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        conc = np.maximum(self.alpha * len(self.domains) * p, 1e-3)
        return np.stack([rng.dirichlet(c) for c in conc])

    def outcome(self, z: np.ndarray, W: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return self.g(z) + (self.tau(z) * W).sum(axis=1) + self.noise * rng.standard_normal(len(z))


def standardised_quality(states: pd.DataFrame, domains: list[str], prefix: str = "ws_") -> np.ndarray:
    """z_{i,d}: each domain's cleanliness covariate, standardised over the states and clipped to +-2.5."""
    cols = [f"{prefix}{d}" for d in domains]
    missing = [c for c in cols if c not in states]
    if missing:
        raise ConfigError(f"quality column {missing[0]!r} not in the states table; the semi-synthetic design needs "
                          f"one {prefix}<domain> column per domain")
    q = states[cols].to_numpy(dtype=float)
    sd = q.std(axis=0)
    sd[sd == 0] = 1.0
    return np.clip((q - q.mean(axis=0)) / sd, -2.5, 2.5)


def simulate(states: pd.DataFrame, covariates: list[str], truth: Truth, rng: np.random.Generator) -> tuple[pd.DataFrame, np.ndarray]:
    """One semi-synthetic runs table (w_<d> columns, the covariates, `y`) and its true theta (n, K-1)."""
    z = standardised_quality(states, truth.domains)
    W = truth.mixtures(z, rng)
    y = truth.outcome(z, W, rng)
    df = pd.DataFrame(W, columns=[f"w_{d}" for d in truth.domains])
    for c in covariates:
        df[c] = states[c].to_numpy(dtype=float)
    df["y"] = y
    return df, truth.theta(z)


def estimate(df: pd.DataFrame, covariates: list[str], truth: Truth, method: str, n_estimators: int = 100,
             cv: int = 2, seed: int = 0) -> np.ndarray:
    """(n, K-1) estimated theta at the table's own states, by one of METHODS."""
    from causalmix.causal.estimator import _nuisance
    Tp = df[[f"w_{d}" for d in truth.others]].to_numpy(dtype=float)
    X = df[covariates].to_numpy(dtype=float)
    y = df["y"].to_numpy(dtype=float)
    n, k = Tp.shape
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if method == "naive_ols":
            from sklearn.linear_model import LinearRegression
            coef = LinearRegression().fit(np.hstack([Tp, X]), y).coef_[:k]
            return np.tile(coef, (n, 1))
        if method == "naive_forest":
            from sklearn.ensemble import RandomForestRegressor
            f = RandomForestRegressor(n_estimators=max(n_estimators, 100), min_samples_leaf=3, max_features=0.5,
                                      random_state=seed, n_jobs=1).fit(np.hstack([Tp, X]), y)
            out = np.empty((n, k))
            for j in range(k):
                lo, hi = np.percentile(Tp[:, j], [10, 90])
                if hi <= lo:
                    out[:, j] = 0.0
                    continue
                a, b = Tp.copy(), Tp.copy()
                a[:, j], b[:, j] = lo, hi
                out[:, j] = (f.predict(np.hstack([b, X])) - f.predict(np.hstack([a, X]))) / (hi - lo)
            return out
        if method == "dml_linear":
            from econml.dml import LinearDML
            est = LinearDML(model_y=_nuisance("rf", False, seed, 1), model_t=_nuisance("rf", k > 1, seed, 1),
                            discrete_treatment=False, cv=cv, random_state=seed).fit(y, Tp, X=None, W=X)
            return np.tile(np.asarray(est.const_marginal_effect()).reshape(-1)[:k], (n, 1))
        if method == "dml_forest":
            from econml.dml import CausalForestDML
            est = CausalForestDML(model_y=_nuisance("rf", False, seed, 1), model_t=_nuisance("rf", k > 1, seed, 1),
                                  discrete_treatment=False, cv=cv, n_estimators=n_estimators, min_samples_leaf=5,
                                  random_state=seed, n_jobs=1).fit(y, Tp, X=X)
            return np.asarray(est.const_marginal_effect(X)).reshape(n, k)
    raise ConfigError(f"method {method!r}: expected one of {', '.join(METHODS)}")


def errors(theta_hat: np.ndarray, theta: np.ndarray, others: list[str]) -> dict:
    """CATE RMSE, mean |ATE error| over domains, and each domain's signed ATE bias."""
    ate_err = theta_hat.mean(axis=0) - theta.mean(axis=0)
    return {"cate_rmse": float(np.sqrt(((theta_hat - theta) ** 2).mean())),
            "ate_abs_err": float(np.abs(ate_err).mean()),
            **{f"bias_{d}": float(e) for d, e in zip(others, ate_err)}}


def _one(states, covariates, truth, gamma, design, di, r, methods, n_estimators, cv, seed):
    t = Truth(**{**truth.__dict__, "confounding": float(gamma)})
    rng = np.random.default_rng([seed, di, r])
    df, theta = simulate(states, covariates, t, rng)
    z = standardised_quality(states, t.domains)
    j_o = [t.domains.index(d) for d in t.others]
    share = df[[f"w_{d}" for d in t.others]].to_numpy()
    corr = float(np.mean([np.corrcoef(share[:, j], z[:, jj])[0, 1] for j, jj in enumerate(j_o)]))
    rows = []
    for m in methods:
        th = estimate(df, covariates, t, m, n_estimators=n_estimators, cv=cv, seed=seed + r)
        rows.append({"design": design, "gamma": float(gamma), "rep": r, "method": m, "label": LABELS[m],
                     "rows": len(df), "share_quality_corr": corr, **errors(th, theta, t.others)})
    return rows


def experiment(states: pd.DataFrame, covariates: list[str], truth: Truth, designs: dict[str, float],
               reps: int = 6, rows_per_state: int = 1, methods=METHODS, n_estimators: int = 100, cv: int = 2,
               seed: int = 0, n_jobs: int = 1) -> pd.DataFrame:
    """Per (design, rep, method): the errors against the truth. A design is a confounding strength gamma;
    every real state carries `rows_per_state` simulated runs (each with its own mixture and noise); each rep
    draws new mixtures and noise over the same states, and every method sees the same table. (design, rep)
    tasks are seeded on their own, so n_jobs does not change a number."""
    if int(reps) < 2:
        raise ConfigError(f"observational.reps={reps!r}: expected an integer >= 2 (a CI needs two repetitions)")
    if int(rows_per_state) < 1:
        raise ConfigError(f"observational.rows_per_state={rows_per_state!r}: expected a positive integer")
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ConfigError(f"method {unknown[0]!r}: expected some of {', '.join(METHODS)}")
    states = states.loc[np.repeat(states.index.to_numpy(), int(rows_per_state))].reset_index(drop=True)
    tasks = [(design, di, gamma, r) for di, (design, gamma) in enumerate(designs.items()) for r in range(int(reps))]
    args = lambda design, di, gamma, r: (states, covariates, truth, gamma, design, di, r, list(methods),  # noqa: E731
                                         n_estimators, cv, seed)
    if n_jobs > 1:
        from joblib import Parallel, delayed
        parts = Parallel(n_jobs=n_jobs)(delayed(_one)(*args(*t)) for t in tasks)
    else:
        parts = [_one(*args(*t)) for t in tasks]
    return pd.DataFrame([row for part in parts for row in part])


def summary(results: pd.DataFrame, level: float = 0.95) -> pd.DataFrame:
    """Per (design, method): mean CATE RMSE and mean |ATE error| with t-intervals over repetitions."""
    from scipy import stats
    rows = []
    for (design, method), sub in results.groupby(["design", "method"], sort=False):
        row = {"design": design, "method": LABELS.get(method, method), "reps": len(sub)}
        for c in ("ate_abs_err", "cate_rmse"):
            x = sub[c].to_numpy(dtype=float)
            m = float(x.mean())
            h = float(stats.t.ppf(0.5 + level / 2, len(x) - 1) * x.std(ddof=1) / np.sqrt(len(x))) if len(x) > 1 else np.nan
            row |= {c: m, f"{c}_lo": m - h, f"{c}_hi": m + h}
        rows.append(row)
    return pd.DataFrame(rows)


def bias_table(results: pd.DataFrame, level: float = 0.95) -> pd.DataFrame:
    """Per (design, method, domain): the signed ATE error's mean over repetitions with a t-interval. A CI that
    excludes 0 is a systematic bias, not bad luck."""
    from scipy import stats
    cols = [c for c in results.columns if c.startswith("bias_")]
    rows = []
    for (design, method), sub in results.groupby(["design", "method"], sort=False):
        for c in cols:
            x = sub[c].to_numpy(dtype=float)
            m = float(x.mean())
            h = float(stats.t.ppf(0.5 + level / 2, len(x) - 1) * x.std(ddof=1) / np.sqrt(len(x))) if len(x) > 1 else np.nan
            rows.append({"design": design, "method": LABELS.get(method, method), "domain": c[5:], "bias": m,
                         "ci_lo": m - h, "ci_hi": m + h, "systematic": bool(m - h > 0 or m + h < 0)})
    return pd.DataFrame(rows)


def paired_gain(results: pd.DataFrame, naive: str, dml: str, metric: str = "ate_abs_err", level: float = 0.95) -> pd.DataFrame:
    """Per design: naive's error minus DML's, paired over repetitions (same table), with a t-interval.
    Positive = orthogonalisation reduced the error."""
    from scipy import stats
    rows = []
    for design, sub in results.groupby("design", sort=False):
        w = sub.pivot_table(index="rep", columns="method", values=metric)
        d = (w[naive] - w[dml]).to_numpy()
        m = float(d.mean())
        h = float(stats.t.ppf(0.5 + level / 2, len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d))) if len(d) > 1 else np.nan
        rows.append({"design": design, "naive": LABELS[naive], "dml": LABELS[dml], "metric": metric,
                     "naive_minus_dml": m, "ci_lo": m - h, "ci_hi": m + h, "reps": len(d)})
    return pd.DataFrame(rows)
