"""Trust-region mixture policies on top of a fitted MixtureEffectModel.

The paper's formulas are not public; these are our choices (documented in the book):

Trust region. Distance between mixtures is the total share moved,
    tv(w, w_ref) = 0.5 * ||w - w_ref||_1      (total-variation distance, in [0, 1]),
so radius=0.3 means "reallocate at most 30% of the data". We use L1/TV rather than L2 because
it is what a data curator reads directly, and because the DML model is linear in T: the error of
its local extrapolation grows with how much data changes hands, not with a Euclidean norm.

CausalMix-A (analytic). With theta_full the K-vector of marginal returns (0 at the reference),
step along the simplex-tangent gradient d = theta_full - mean(theta_full), scaled so the step
moves exactly `radius` of share:  w = w_ref + radius * d / tv(d, 0); then Euclidean-project onto
{w >= floor, sum w = 1} and, if projection pushed it past the radius, shrink it back towards w_ref.
With `step="scaled"` the step moves radius * tv(d) / tv(d_raw) instead, d_raw the direction of the returns
before the conservative shrinkage below: the less of the evidence survives the shrinkage, the shorter the
step, so the mixture is continuous in theta and its standard errors. The full step is not: when only one or
two returns survive their threshold the whole radius goes to them, and which survive flips with the forest's
seed (book/method.md measures both).

CausalMix-S (search). Score many candidate mixtures inside the trust region with a predicted
outcome/gain and keep the best (or the mean of the top_k). `recommend` scores with a lower
confidence bound of the gain, theta.dT' - z * ||stderr * dT'||_2 (diagonal covariance), which is
concave in the mixture and penalizes moves into domains whose effect is uncertain.

Conservatism. `conservative_theta` soft-thresholds each return towards 0 by z * stderr: effects
not distinguishable from the reference domain's are treated as zero, so with no evidence the
policy stays at w_ref.
"""

import sys

import numpy as np
import pandas as pd

from causalmix.errors import ConfigError

POLICIES = ("analytic", "search")
STEPS = ("full", "scaled")      # CausalMix-A's step length: always the radius, or scaled by the surviving evidence


def tv_distance(w, w_ref):
    """Total share moved between mixtures: 0.5 * L1 (rows of a 2-D array give a vector)."""
    return 0.5 * np.abs(np.asarray(w, float) - np.asarray(w_ref, float)).sum(axis=-1)


def project_to_simplex(v, floor=0.0):
    """Euclidean projection of v (K,) or rows of v (n, K) onto {w : w >= floor, sum w = 1}.

    Sort-based algorithm (Held et al. 1974; Duchi et al. 2008) on u = v - floor with mass 1 - K*floor."""
    v = np.asarray(v, dtype=float)
    one = v.ndim == 1
    V = np.atleast_2d(v)
    n, k = V.shape
    mass = 1.0 - k * floor
    if floor < 0 or mass < -1e-12:
        raise ConfigError(f"floor={floor} infeasible for {k} domains; expected 0 <= floor <= 1/{k}")
    mass = max(mass, 0.0)
    U = V - floor
    mu = -np.sort(-U, axis=1)
    css = np.cumsum(mu, axis=1) - mass
    j = np.arange(1, k + 1)
    rho = (mu - css / j > 0).sum(axis=1)  # number of active coordinates (>= 1)
    tau = css[np.arange(n), rho - 1] / rho
    W = np.maximum(U - tau[:, None], 0.0) + floor
    return W[0] if one else W


def check_radius(radius):
    """The trust region's radius is a share of data: total-variation distance lies in [0, 1]."""
    if not isinstance(radius, (int, float, np.floating, np.integer)) or not np.isfinite(radius) \
            or not 0 <= radius <= 1:
        raise ConfigError(f"trust-region radius {radius} invalid; expected a share in [0, 1] (the total share moved)")


def _check_ref(w_ref, radius, floor):
    w = np.asarray(w_ref, dtype=float).ravel()
    if w.size < 2 or not np.isfinite(w).all() or (w < -1e-9).any() or abs(w.sum() - 1) > 1e-3:
        raise ConfigError(f"reference mixture {np.round(w, 4).tolist()} is not a mixture; expected >= 0 weights summing to 1")
    check_radius(radius)
    # a reference below the floor is first moved onto the feasible set; distances are from there
    return project_to_simplex(w, floor)


def _shrink_into(W, w_ref, radius):
    """Pull rows of W towards w_ref until tv(W, w_ref) <= radius (convex combos stay feasible)."""
    W = np.atleast_2d(W)
    d = tv_distance(W, w_ref)
    s = np.where(d > radius, radius / np.maximum(d, 1e-300), 1.0)
    return w_ref + s[:, None] * (W - w_ref)


def causalmix_analytic(theta_full, w_ref, radius, floor=0.0, raw=None):
    """CausalMix-A: one tangent-gradient step of total share `radius`, projected, kept in the region.

    theta_full (K,) holds marginal returns with 0 at the reference domain; only differences between
    domains matter (the step uses theta_full - mean). A zero direction returns w_ref unchanged. With `raw`
    (the returns before conservative shrinkage) the step's share is radius * tv(d) / tv(d_raw), at most the
    radius (step="scaled" in the module docstring)."""
    w_ref = _check_ref(w_ref, radius, floor)
    th = np.asarray(theta_full, dtype=float).ravel()
    if th.shape != w_ref.shape:
        raise ConfigError(f"theta has {th.size} entries; expected {w_ref.size} (one per domain)")
    d = th - th.mean()
    size = tv_distance(d, 0.0)
    if size < 1e-12 or radius == 0:
        return w_ref.copy()
    if raw is not None:
        r = np.asarray(raw, dtype=float).ravel()
        if r.shape != w_ref.shape:
            raise ConfigError(f"raw theta has {r.size} entries; expected {w_ref.size} (one per domain)")
        radius = radius * size / max(tv_distance(r - r.mean(), 0.0), size)
    w = project_to_simplex(w_ref + radius * d / size, floor)
    return _shrink_into(w, w_ref, radius)[0]


def _candidates(w_ref, radius, n, floor, rng):
    """w_ref, every single-pair transfer of up to `radius` share, then random moves inside the region."""
    k = w_ref.size
    C = [w_ref[None]]
    for i in range(k):
        for j in range(k):
            if i != j:
                c = w_ref.copy()
                m = min(radius, max(c[i] - floor, 0.0))
                c[i] -= m
                c[j] += m
                C.append(c[None])
    n_rand = max(n - len(C), 0)
    if n_rand:
        q = rng.dirichlet(np.full(k, 0.5), size=n_rand)  # a random target mixture (sparse-ish)
        d = q - w_ref
        # radial share moved ~ U^(1/(K-1)): roughly uniform over the region's volume
        r = radius * rng.uniform(size=n_rand) ** (1.0 / max(k - 1, 1))
        t = np.minimum(1.0, r / np.maximum(tv_distance(d, 0.0), 1e-12))
        C.append(w_ref + t[:, None] * d)  # convex combination of two mixtures: on the simplex
    C = np.vstack(C)
    if floor > 0:
        C = _shrink_into(project_to_simplex(C, floor), w_ref, radius)
    return C


def causalmix_search(score_fn, w_ref, radius, n_candidates=4096, floor=0.0, seed=0, top_k=1):
    """CausalMix-S: the best of ~n_candidates mixtures in the trust region under score_fn.

    score_fn maps candidates (n, K) to scores (n,), higher is better. With top_k > 1 the top_k
    candidates are averaged (the region is convex, so the mean is feasible); the result is never
    scored below w_ref (w_ref is always a candidate, and is returned if the average scores worse)."""
    w_ref = _check_ref(w_ref, radius, floor)
    if top_k < 1:
        raise ConfigError(f"top_k={top_k}; expected >= 1")
    C = _candidates(w_ref, radius, int(n_candidates), floor, np.random.default_rng(seed))
    s = np.asarray(score_fn(C), dtype=float).reshape(len(C))
    s = np.where(np.isfinite(s), s, -np.inf)
    best = np.argsort(-s, kind="stable")[: int(top_k)]
    w = project_to_simplex(C[best].mean(axis=0), floor)
    w = _shrink_into(w, w_ref, radius)[0]
    if top_k > 1 and float(np.asarray(score_fn(w[None])).ravel()[0]) < s[0]:
        return w_ref.copy()
    return w


def conservative_theta(theta, stderr, z):
    """Soft-threshold returns towards 0 by z*stderr: sign(t) * max(|t| - z*se, 0). z=0 disables."""
    if z < 0:
        raise ConfigError(f"conservatism z={z}; expected >= 0")
    theta, stderr = np.asarray(theta, float), np.asarray(stderr, float)
    return np.sign(theta) * np.maximum(np.abs(theta) - z * stderr, 0.0)


def resolve_reference(model, w_ref):
    """'mean' (mean training mixture), 'equal', a dict by domain, a (K,) array, or a one-row CSV path."""
    names = model.treatment
    if isinstance(w_ref, str):
        if w_ref == "mean":
            return np.array([model.mean_mixture_[c] for c in names])
        if w_ref == "equal":
            return np.full(len(names), 1.0 / len(names))
        import os
        from causalmix.causal.tables import check_mixtures, numeric, read_table, require_columns
        if not os.path.exists(w_ref):
            raise ConfigError(f"reference mixture {w_ref!r} is neither mean, equal nor an existing file; expected "
                              "mean, equal or the path to a one-row CSV with one column per domain")
        where = f"reference mixture file {w_ref!r}"
        df = read_table(w_ref, "reference mixture")
        if len(df) != 1:
            raise ConfigError(f"{where} has {len(df)} rows; expected exactly 1")
        missing = [c for c in names if c not in df.columns]
        if missing:
            raise ConfigError(f"{where} lacks column {missing[0]!r}; expected {', '.join(names)}")
        W = numeric(df, names, where)
        check_mixtures(W, names, df.index, where, tol=1e-3)
        w_ref = W[0]
    elif isinstance(w_ref, dict):
        missing = [c for c in names if c not in w_ref]
        if missing:
            raise ConfigError(f"reference mixture lacks domain {missing[0]!r}; expected {', '.join(names)}")
        w_ref = np.array([float(w_ref[c]) for c in names])
    w = np.asarray(w_ref, dtype=float).ravel()
    if w.size != len(names):
        raise ConfigError(f"reference mixture has {w.size} weights; expected {len(names)} ({', '.join(names)})")
    return w


def recommend(model, X_df, w_ref="mean", policy="analytic", radius=0.3, z=1.0, floor=0.0,
              n_candidates=4096, seed=0, top_k=1, step="full"):
    """One recommended mixture per row of X_df: the K treatment columns + predicted_gain.

    analytic: CausalMix-A on conservative_theta(theta, stderr, z); step="scaled" shortens its step by the
              share of the returns the shrinkage leaves (causalmix_analytic's `raw`).
    search:   CausalMix-S maximizing the gain's lower bound theta.dphi - z*||stderr*dphi||_2 (dphi = dT' for
              linear features; see estimator.MixtureEffectModel.gain_bound).
    predicted_gain is the point estimate of the gain of w over w_ref (improvement units, see estimator)."""
    if policy not in POLICIES:
        raise ConfigError(f"policy {policy!r} unknown; expected one of {', '.join(POLICIES)}")
    if z < 0:
        raise ConfigError(f"conservatism z={z}; expected >= 0")
    check_step(step)
    w0 = _check_ref(resolve_reference(model, w_ref), radius, floor)
    theta, se = model.theta_stderr(X_df, at=w0)      # marginal returns at the reference mixture
    oth = [model.treatment.index(c) for c in model.others]
    rows = []
    for i in range(len(theta)):
        x = X_df.iloc[[i]]
        if policy == "analytic":
            tc = np.zeros(len(w0))
            tc[oth] = conservative_theta(theta[i], se[i], z)
            raw = None
            if step == "scaled":
                raw = np.zeros(len(w0))
                raw[oth] = theta[i]
            w = causalmix_analytic(tc, w0, radius, floor, raw=raw)
        else:
            def score(C, x=x):
                return model.gain_bound(x, C, w0, z)[1]
            w = causalmix_search(score, w0, radius, n_candidates, floor, seed, top_k)
        rows.append(np.append(w, float(model.predicted_gain(x, w, w0)[0])))
    return pd.DataFrame(rows, columns=model.treatment + ["predicted_gain"], index=X_df.index)


def check_step(step):
    if step not in STEPS:
        raise ConfigError(f"analytic step {step!r} unknown; expected one of {', '.join(STEPS)}")


def check_options(policy, radius, z, floor, k=None, step="full"):
    """The policy's knobs, checked before a model is loaded (k = number of domains, once known)."""
    if policy not in POLICIES:
        raise ConfigError(f"policy {policy!r} unknown; expected one of {', '.join(POLICIES)}")
    check_step(step)
    check_radius(radius)
    if not np.isfinite(z) or z < 0:
        raise ConfigError(f"conservatism z={z}; expected >= 0")
    top = f"1/{k}" if k else "1/(number of domains)"
    if not np.isfinite(floor) or floor < 0 or (k and floor * k > 1 + 1e-12):
        raise ConfigError(f"floor={floor} infeasible{f' for {k} domains' if k else ''}; expected 0 <= floor <= {top}")


def main_recommend(model, state, policy="analytic", radius=0.3, reference_mixture="mean",
                   out=sys.stdout, z=1.0, floor=0.0, seed=0, step="full"):
    """`causalmix recommend`: model dir + STATE.csv (covariate columns) -> CSV of mixtures on `out`
    (a file object or a path). Every input is checked before any effect is computed."""
    from causalmix.causal.estimator import MixtureEffectModel, read_table
    from causalmix.causal.tables import require_rows
    check_options(policy, radius, z, floor, step=step)
    m = MixtureEffectModel.load(model)
    check_options(policy, radius, z, floor, k=len(m.treatment), step=step)
    st = read_table(state, "state")
    where = f"state file {str(state)!r}"
    missing = [c for c in m.inputs if c not in st.columns]
    if missing:
        raise ConfigError(f"{where} lacks covariate column {missing[0]!r}; "
                          f"the model needs {', '.join(m.inputs)}")
    require_rows(st, 1, where, " (one pool state per row)")
    m._X(st, where)  # non-numeric cells, NaN/inf: named with their row
    m._pool(st, len(st), where)
    w_ref = resolve_reference(m, reference_mixture)
    rec = recommend(m, st, w_ref, policy=policy, radius=radius, z=z, floor=floor, seed=seed, step=step)
    if isinstance(out, str):
        rec.to_csv(out, index=False)
    else:
        rec.to_csv(out, index=False, lineterminator="\n")
    return rec
