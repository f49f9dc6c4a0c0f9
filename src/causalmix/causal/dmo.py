"""DMO-style baseline: a parametric law per domain, fitted on small proxy runs, then optimised.

In the spirit of "Data Mixing Optimization for Supervised Fine-Tuning" (ICML 2025), which models each
domain's validation metric as a function of that domain's share of the data and picks the mixture that
optimises their sum. The exact form fitted here, for each domain d with share w_d:

    y_d(w) = a_d + b_d * (w_d + eps) ** c_d,      b_d >= 0,  0.05 <= c_d <= 1,  eps = 0.01

fitted by bounded least squares (scipy's `curve_fit`, trust-region reflective) on the proxy runs' own
per-domain metric (`acc_<d>` for AvgDev). The law sees only the mixture, never the pool's state (like
RegMix), and ignores transfer between domains (a domain's metric depends on its own share alone). The
proposed mixture maximises the mean of the K laws on the simplex with every share >= `floor`; each law is
concave in its own share, so the optimum is unique, found by SLSQP from the equal mixture.
"""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from causalmix.errors import ConfigError

EPS = 0.01
C_BOUNDS = (0.05, 1.0)


def _law(w, a, b, c):
    return a + b * (w + EPS) ** c


class DMOLaw:
    """Per-domain power laws in the domain's own share; mean over domains is the predicted outcome."""

    def __init__(self, minimize: bool = False):
        self.minimize = bool(minimize)
        self.params: dict[str, tuple[float, float, float]] = {}
        self.r2: dict[str, float] = {}

    def fit(self, mixtures: pd.DataFrame, per_domain: pd.DataFrame) -> "DMOLaw":
        """mixtures: one column of shares per domain; per_domain: the same columns, each domain's metric."""
        from scipy.optimize import curve_fit
        domains = [str(c) for c in mixtures.columns]
        missing = [d for d in domains if d not in per_domain.columns]
        if missing:
            raise ConfigError(f"DMOLaw.fit: no metric column for domains {missing}; expected one per mixture column")
        if len(mixtures) != len(per_domain) or len(mixtures) < 4:
            raise ConfigError(f"DMOLaw.fit: {len(mixtures)} mixtures and {len(per_domain)} metric rows; "
                              f"expected equal counts, at least 4")
        sign = -1.0 if self.minimize else 1.0
        for d in domains:
            w = mixtures[d].to_numpy(dtype=float)
            y = sign * per_domain[d].to_numpy(dtype=float)
            if not (np.isfinite(w).all() and np.isfinite(y).all()):
                raise ConfigError(f"DMOLaw.fit: domain {d!r} has NaN/inf shares or metrics; expected finite numbers")
            p0 = (float(y.min()), max(float(np.ptp(y)), 1e-6), 0.5)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                (a, b, c), _ = curve_fit(_law, w, y, p0=p0, maxfev=20000,
                                         bounds=([-np.inf, 0.0, C_BOUNDS[0]], [np.inf, np.inf, C_BOUNDS[1]]))
            self.params[d] = (float(a), float(b), float(c))
            res = y - _law(w, a, b, c)
            ss = float(((y - y.mean()) ** 2).sum())
            self.r2[d] = 1.0 - float((res ** 2).sum()) / ss if ss > 0 else float("nan")
        self.domains = domains
        return self

    def predict(self, mixtures: pd.DataFrame) -> np.ndarray:
        """The mean of the domains' laws, in the metric's own units (sign undone)."""
        if not self.params:
            raise RuntimeError("DMOLaw: call fit() before predict()/propose()")
        out = np.mean([_law(mixtures[d].to_numpy(dtype=float), *self.params[d]) for d in self.domains], axis=0)
        return -out if self.minimize else out

    def propose(self, floor: float = 0.0) -> dict[str, float]:
        """The mixture maximising the mean law with every share >= floor."""
        from scipy.optimize import minimize
        if not self.params:
            raise RuntimeError("DMOLaw: call fit() before propose()")
        k = len(self.domains)
        if not 0.0 <= floor < 1.0 / k:
            raise ConfigError(f"DMOLaw.propose: floor={floor}; expected 0 <= floor < 1/{k}")
        P = np.array([self.params[d] for d in self.domains])

        def neg(w):
            return -np.mean(P[:, 0] + P[:, 1] * (w + EPS) ** P[:, 2])

        def grad(w):
            return -P[:, 1] * P[:, 2] * (w + EPS) ** (P[:, 2] - 1) / k

        res = minimize(neg, np.full(k, 1.0 / k), jac=grad, method="SLSQP", bounds=[(floor, 1.0)] * k,
                       constraints=[{"type": "eq", "fun": lambda w: w.sum() - 1.0, "jac": lambda w: np.ones(k)}],
                       options={"ftol": 1e-12, "maxiter": 500})
        w = np.clip(res.x, floor, 1.0)
        w = w / w.sum()
        return {d: float(v) for d, v in zip(self.domains, w)}

    def table(self) -> pd.DataFrame:
        """The fitted law of each domain: a, b, c and the in-sample R^2."""
        return pd.DataFrame([{"domain": d, "a": a, "b": b, "c": c, "r2": self.r2[d]}
                             for d, (a, b, c) in self.params.items()])
