"""The user's CSV tables (runs, states, mixtures, metrics): read and checked in one place.

Every failure is one ConfigError line that names the file (or table), the bad value and what was
expected, raised before any fitting starts. `causalmix fit` (estimator.py), `recommend`
(policy.py) and `regmix` (baselines.py) all read their inputs through here.
"""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pandas as pd

from causalmix.errors import ConfigError


def fmt_list(names, limit=20) -> str:
    names = list(names)
    more = f", ... ({len(names)} in all)" if len(names) > limit else ""
    return ", ".join(map(str, names[:limit])) + more


def _label(v) -> str:
    """A row label / id as a user wrote it (no numpy reprs like np.int64(3))."""
    return repr(v.item() if isinstance(v, np.generic) else v)


def read_table(path, what: str = "table") -> pd.DataFrame:
    """A CSV (or .parquet) file as a DataFrame; a missing, empty, binary or ragged file is one ConfigError line."""
    p = Path(path)
    where = f"{what} file {str(path)!r}"
    if not p.exists():
        raise ConfigError(f"{where} not found; expected a CSV file")
    if not p.is_file():
        raise ConfigError(f"{where} is not a file; expected a CSV file")
    size = p.stat().st_size
    if size == 0:
        raise ConfigError(f"{where} is empty (0 bytes); expected a header row and data rows")
    if p.suffix in (".parquet", ".pq"):
        try:
            return pd.read_parquet(p)
        except Exception as e:  # pyarrow raises many types; one line names the file and the reason
            raise ConfigError(f"{where} is not a readable parquet file ({type(e).__name__}: "
                              f"{' '.join(str(e).split())[:120]})") from None
    with open(p, "rb") as fh:
        head = fh.read(8192)
    if b"\x00" in head:
        raise ConfigError(f"{where} holds binary data (NUL bytes); expected a text CSV file")
    try:
        text_head = head.decode("utf-8")
    except UnicodeDecodeError as e:
        if e.start < len(head) - 4:  # not just a multi-byte character cut at the 8 KiB boundary
            raise ConfigError(f"{where} is not UTF-8 text (byte {e.start}); expected a text CSV file") from None
        text_head = head[:e.start].decode("utf-8")
    lines = [ln for ln in text_head.splitlines() if ln.strip()]
    if not lines:
        raise ConfigError(f"{where} has no header row (only blank lines); expected a header row and data rows")
    header = next(csv.reader([lines[0]]))
    dup = sorted({c for c in header if header.count(c) > 1})
    if dup:
        raise ConfigError(f"{where} repeats column name {dup[0]!r} in its header; expected unique column names")
    try:
        return pd.read_csv(p)
    except pd.errors.ParserError as e:
        why = " ".join(str(e).split()).replace("Error tokenizing data. C error: ", "")
        raise ConfigError(f"{where} is not a well-formed CSV: {why[:160]}; expected {len(header)} fields per row "
                          f"as in the header") from None
    except (UnicodeDecodeError, ValueError) as e:
        raise ConfigError(f"{where} is not a readable CSV ({type(e).__name__}: "
                          f"{' '.join(str(e).split())[:120]})") from None


def require_columns(df: pd.DataFrame, columns, where: str, role: str = "column") -> None:
    """Every named column present; the first missing one is named along with what the table has."""
    for c in columns:
        if c not in df.columns:
            raise ConfigError(f"{role} {c!r} not in {where}; available: {fmt_list(df.columns)}")


def require_rows(df: pd.DataFrame, n: int, where: str, why: str = "") -> None:
    if len(df) < n:
        head = " (header only)" if len(df) == 0 else ""
        raise ConfigError(f"{where} has {len(df)} rows{head}; need at least {n}{why}")


def numeric(df: pd.DataFrame, columns, where: str, row: str = "row") -> np.ndarray:
    """(n, len(columns)) float matrix; a non-numeric cell or a NaN/inf is named with its column and row."""
    columns = list(columns)
    out = np.empty((len(df), len(columns)))
    for j, col in enumerate(columns):
        raw = df[col]
        v = pd.to_numeric(raw, errors="coerce")
        bad = np.flatnonzero(v.isna().to_numpy() & raw.notna().to_numpy())
        if len(bad):
            i = bad[0]
            raise ConfigError(f"column {col!r} of {where} has non-numeric value {raw.iloc[i]!r} at {row} "
                              f"{_label(df.index[i])}; expected numbers")
        x = v.to_numpy(dtype=float)
        bad = np.flatnonzero(~np.isfinite(x))
        if len(bad):
            i = bad[0]
            raise ConfigError(f"column {col!r} has NaN/inf at {row} {_label(df.index[i])} of {where}; "
                              "expected a finite number in every row")
        out[:, j] = x
    return out


def check_mixtures(W: np.ndarray, names, index, where: str, tol: float, row: str = "row") -> None:
    """Rows of W are mixtures: weights >= 0 summing to 1 within tol."""
    neg = np.argwhere(W < 0)
    if len(neg):
        i, j = neg[0]
        raise ConfigError(f"negative mixture weight {W[i, j]:.4g} in column {list(names)[j]!r} at {row} "
                          f"{_label(index[i])} of {where}; expected weights >= 0")
    s = W.sum(axis=1)
    bad = np.flatnonzero(np.abs(s - 1.0) > tol)
    if len(bad):
        i = bad[0]
        raise ConfigError(f"mixture weights at {row} {_label(index[i])} sum to {s[i]:.6g} in {where}; "
                          f"expected 1 (within {tol:g})")


def require_varying(x: np.ndarray, col: str, where: str, role: str) -> None:
    """A constant column carries no signal to fit (e.g. an outcome every run shares)."""
    x = np.asarray(x, dtype=float)
    if len(x) and np.ptp(x) == 0:
        raise ConfigError(f"{role} column {col!r} is constant ({x[0]:.6g} in all {len(x)} rows of {where}); "
                          "expected values that vary between rows")
