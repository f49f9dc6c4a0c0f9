"""Tables with uncertainty: every mean comes with a 95% t-interval over seeds or runs."""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats


def mean_ci(x, level: float = 0.95) -> tuple[float, float, float]:
    x = np.asarray(x, dtype=float)
    x = x[np.isfinite(x)]
    if len(x) == 0:
        return np.nan, np.nan, np.nan
    m = float(x.mean())
    if len(x) < 2:
        return m, np.nan, np.nan
    h = float(stats.t.ppf(0.5 + level / 2, len(x) - 1) * x.std(ddof=1) / np.sqrt(len(x)))
    return m, m - h, m + h


def summarize(df: pd.DataFrame, by: str, cols: list[str], level: float = 0.95) -> pd.DataFrame:
    """One row per group: n, and mean / ci_lo / ci_hi per column."""
    rows = []
    for g, sub in df.groupby(by, sort=False):
        row = {by: g, "n": len(sub)}
        for c in cols:
            m, lo, hi = mean_ci(sub[c], level)
            row |= {c: m, f"{c}_lo": lo, f"{c}_hi": hi}
        rows.append(row)
    return pd.DataFrame(rows)


def paired(df: pd.DataFrame, method_col: str, seed_col: str, value: str, baseline: str) -> pd.DataFrame:
    """Per method, the mean paired difference to `baseline` over shared seeds, with its 95% CI."""
    wide = df.pivot_table(index=seed_col, columns=method_col, values=value)
    rows = []
    for m in wide.columns:
        d = (wide[m] - wide[baseline]).dropna()
        mean, lo, hi = mean_ci(d)
        rows.append({method_col: m, f"diff_vs_{baseline}": mean, "ci_lo": lo, "ci_hi": hi, "pairs": len(d)})
    return pd.DataFrame(rows)


def formatted(summary: pd.DataFrame, by: str, cols: list[str], digits: int = 1) -> pd.DataFrame:
    """'mean [lo, hi]' strings for display."""
    out = summary[[by, "n"]].copy()
    for c in cols:
        k = 3 if "margin" in c else digits          # margins are nats per character: small numbers
        out[c] = [f"{m:.{k}f} [{lo:.{k}f}, {hi:.{k}f}]"
                  for m, lo, hi in zip(summary[c], summary[f"{c}_lo"], summary[f"{c}_hi"])]
    return out
