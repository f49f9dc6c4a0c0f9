"""Double machine learning of state-dependent mixture returns (econml CausalForestDML / LinearDML).

The model is the partially linear one DML assumes:

    Y = g(X) + theta(X) . T' + e,   T' = the K-1 mixture shares other than the reference domain.

Mixture weights sum to 1, so the K shares are collinear; dropping the reference domain makes
theta_d(x) the marginal return of moving share from the reference domain to domain d in pool
state x (one unit of share; a 0.1 move gains about 0.1 * theta_d).

Diminishing returns (`features="sqrt"`, the default). Linear in T' at a given state, the model cannot
see that a domain's first few percent of share are worth more than its last: with mixtures drawn across
the whole simplex it then mispredicts both ends (book/method.md measures it). With sqrt features the
treatment enters as phi(T') = sqrt(w + eps) for all K shares (the reference's as 1 - sum T'), via
econml's `treatment_featurizer`:

    Y = g(X) + theta_phi(X) . phi(T') + e.

Training-set terms (`training_set`, off by default). The mixture acts on one pool: a domain's share is
drawn from its own slice of the pool, so the run's *training set* has properties that are known functions
of the shares and the pool's measured state. Each term adds one treatment feature:

    repetition:  sum_d w_d^2 / share_d    (share_d: the domain's fraction of the pool; w_d / share_d is how
                                           often the training set repeats each of its samples)
    <c> (a covariate prefix such as ws, dup, len):  sum_d w_d z(c_d),   z = standardised over the fitted runs
                                           (the mixture-weighted quality of the training set)

The features depend on X as well as T, so they go to econml as the treatment itself (DML residualises them
on X like any treatment; the featurizer is only for functions of T alone). Marginal returns then carry
these terms' derivatives at the state's own pool (book/method.md measures what they buy).

theta() then reports the marginal return at a mixture `at` (default: the runs' mean mixture),
d Y / d w_d = theta_phi,d phi'(w_d) - theta_phi,ref phi'(w_ref): still "moving one unit of share from the
reference to d", but now depending on where the mixture is. Gains between two mixtures
(predicted_gain, the search policy) use phi itself, not the local slope.

Sign convention: with minimize=True (e.g. Y is a loss) the model is fitted on -Y, so theta,
effects(), predicted_gain() are always in "improvement" units (positive = better) and every
policy maximizes. predict_outcome() is the one exception: it returns the user's Y units so it
can be compared with held-out observed outcomes.
"""

import json
import os
import sys

import joblib
import numpy as np
import pandas as pd

from causalmix.errors import ConfigError

ESTIMATORS = ("causal_forest", "linear")
FEATURES = ("linear", "sqrt")
SQRT_EPS = 0.01     # phi(w) = sqrt(w + eps): finite slope at w = 0 (a domain left out of a mixture)


class SqrtShares:
    """phi(T') = sqrt([T', 1 - sum T'] + eps): all K shares, the reference's implied (an sklearn transformer,
    picklable, so saved models load). The reference share is clipped at 0 against rounding."""

    def fit(self, T, y=None):
        return self

    def transform(self, T):
        T = np.atleast_2d(np.asarray(T, dtype=float))
        return np.sqrt(np.c_[T, np.clip(1.0 - T.sum(axis=1, keepdims=True), 0.0, None)] + SQRT_EPS)

    def fit_transform(self, T, y=None):
        return self.transform(T)
NUISANCES = ("rf", "gbr", "lasso", "ridge")
REPETITION = "repetition"   # the training-set term that needs share_<domain>; any other term names a covariate prefix


def domain_of(column: str) -> str:
    """'w_news' -> 'news': the domain a treatment column names (the pool columns are <prefix>_<domain>)."""
    return column[2:] if column.startswith("w_") else column


from causalmix.causal.tables import check_mixtures, fmt_list as _fmt_list, numeric, require_columns, require_rows, \
    require_varying

FORMAT = "causalmix-mixture-effect-model"
FORMAT_VERSION = 1  # bump when meta.json or the pickled estimator changes shape; load() refuses other versions
META_KEYS = ("treatment", "covariates", "reference", "others", "options", "outcome", "minimize", "n_rows",
             "mean_mixture", "nuisance_scores")


def validate_runs(df, treatment, covariates, outcome, min_rows=10, where="runs table"):
    """Raise ConfigError (one line) if the runs table cannot be fitted; cheap, run before fitting."""
    treatment, covariates = list(treatment), list(covariates)
    if len(treatment) < 2:
        raise ConfigError(f"need at least 2 treatment (mixture-weight) columns, got {treatment}")
    if len(set(treatment)) != len(treatment):
        raise ConfigError(f"treatment columns repeat: {treatment}; expected distinct column names")
    if not covariates:
        raise ConfigError("no covariate columns given; expected at least 1 pool-state column")
    if len(set(covariates)) != len(covariates):
        raise ConfigError(f"covariate columns repeat: {covariates}; expected distinct column names")
    require_columns(df, treatment + covariates + [outcome], where, role="column")
    dup = [c for c in treatment if c in covariates or c == outcome]
    if dup:
        raise ConfigError(f"column {dup[0]!r} is used both as a treatment and as a covariate/outcome")
    if outcome in covariates:
        raise ConfigError(f"column {outcome!r} is both the outcome and a covariate; expected the outcome "
                          "not to be among the covariates")
    require_rows(df, min_rows, where, " to fit the estimator")
    values = numeric(df, treatment + covariates + [outcome], where)
    T, y = values[:, :len(treatment)], values[:, -1]
    check_mixtures(T, treatment, df.index, where, tol=1e-3)
    require_varying(y, outcome, where, "outcome")
    for j, c in enumerate(treatment):
        require_varying(T[:, j], c, where, "treatment")


def _nuisance(kind, multi, random_state, n_jobs, trees=100):
    """Small sklearn regressors: big enough for ~10 covariates, small enough to fit in seconds. `trees`: the
    forest's trees (rf) or boosting rounds (gbr)."""
    from sklearn.ensemble import GradientBoostingRegressor, RandomForestRegressor
    from sklearn.linear_model import LassoCV, RidgeCV
    from sklearn.multioutput import MultiOutputRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if kind == "rf":  # RandomForest handles multi-output natively
        return RandomForestRegressor(n_estimators=int(trees), min_samples_leaf=5, max_features=0.5,
                                     random_state=random_state, n_jobs=n_jobs)
    if kind == "ridge":
        return make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(-3, 3, 13)))
    if kind == "gbr":
        m = GradientBoostingRegressor(n_estimators=int(trees), max_depth=3, learning_rate=0.05,
                                      subsample=0.8, random_state=random_state)
    elif kind == "lasso":
        m = make_pipeline(StandardScaler(), LassoCV(cv=3, random_state=random_state))
    else:
        raise ConfigError(f"nuisance model {kind!r} unknown; expected one of {', '.join(NUISANCES)}")
    return MultiOutputRegressor(m, n_jobs=n_jobs) if multi else m


class MixtureEffectModel:
    """Y = g(X) + theta(X) . T' + e, with T' = the K-1 shares other than the reference domain.
    theta_d(x) is the marginal return of moving share from the reference domain to domain d in state x."""

    def __init__(self, treatment, covariates, reference=None, estimator="causal_forest",
                 model_y="rf", model_t="rf", cv=3, n_estimators=400, min_samples_leaf=5,
                 max_depth=None, honest=True, random_state=0, n_jobs=1, features="linear", training_set=(),
                 nuisance_trees=100):
        self.treatment = list(treatment)
        self.covariates = list(covariates)
        if len(self.treatment) < 2:
            raise ConfigError(f"need at least 2 treatment columns, got {self.treatment}")
        if len(set(self.treatment)) != len(self.treatment):
            raise ConfigError(f"treatment columns repeat: {self.treatment}; expected distinct column names")
        self.reference = self.treatment[-1] if reference is None else reference
        if self.reference not in self.treatment:
            raise ConfigError(f"reference domain {self.reference!r} is not a treatment column; "
                              f"expected one of {_fmt_list(self.treatment)}")
        if estimator not in ESTIMATORS:
            raise ConfigError(f"estimator {estimator!r} unknown; expected one of {', '.join(ESTIMATORS)}")
        for name, kind in (("model_y", model_y), ("model_t", model_t)):
            if kind not in NUISANCES:
                raise ConfigError(f"{name} {kind!r} unknown; expected one of {', '.join(NUISANCES)}")
        if estimator == "causal_forest" and int(n_estimators) % 4:
            raise ConfigError(f"n_estimators={n_estimators} must be a multiple of 4 (econml subforest size)")
        if int(cv) < 2:
            raise ConfigError(f"cv={cv}; expected at least 2 cross-fitting folds")
        if isinstance(nuisance_trees, bool) or int(nuisance_trees) != nuisance_trees or int(nuisance_trees) < 1:
            raise ConfigError(f"nuisance_trees={nuisance_trees!r}; expected a positive integer")
        if features not in FEATURES:
            raise ConfigError(f"features {features!r} unknown; expected one of {', '.join(FEATURES)}")
        training_set = [training_set] if isinstance(training_set, str) else list(training_set or ())
        for t in training_set:
            if not isinstance(t, str) or not t.isidentifier():
                raise ConfigError(f"training_set term {t!r}: expected {REPETITION!r} or a covariate prefix "
                                  "such as 'ws' (the pool columns <prefix>_<domain>)")
        if len(set(training_set)) != len(training_set):
            raise ConfigError(f"training_set terms repeat: {training_set}; expected distinct terms")
        self.options = dict(estimator=estimator, model_y=model_y, model_t=model_t, cv=int(cv),
                            n_estimators=int(n_estimators), min_samples_leaf=int(min_samples_leaf),
                            max_depth=max_depth, honest=bool(honest), random_state=int(random_state),
                            n_jobs=int(n_jobs), features=features, training_set=training_set,
                            nuisance_trees=int(nuisance_trees))
        self.others = [c for c in self.treatment if c != self.reference]  # T' columns, in order
        self.est_ = None
        self.pool_stats_ = {}   # training-set terms: {prefix: [means, sds]} per domain, from the fitted runs

    # -- fitting ---------------------------------------------------------------------------------
    def _make_estimator(self):
        from econml.dml import CausalForestDML, LinearDML
        o = self.options
        multi = len(self.others) > 1
        trees = o.get("nuisance_trees", 100)   # models saved before the option had 100
        my = _nuisance(o["model_y"], False, o["random_state"], o["n_jobs"], trees)
        mt = _nuisance(o["model_t"], multi, o["random_state"], o["n_jobs"], trees)
        feat = {"treatment_featurizer": SqrtShares()} if self.features == "sqrt" and not self.terms else {}
        if o["estimator"] == "linear":
            return LinearDML(model_y=my, model_t=mt, discrete_treatment=False, cv=o["cv"],
                             random_state=o["random_state"], **feat)
        return CausalForestDML(model_y=my, model_t=mt, discrete_treatment=False, cv=o["cv"],
                               n_estimators=o["n_estimators"], min_samples_leaf=o["min_samples_leaf"],
                               max_depth=o["max_depth"], honest=o["honest"],
                               random_state=o["random_state"], n_jobs=o["n_jobs"], **feat)

    @property
    def features(self):
        return self.options.get("features", "linear")   # models saved before the option were linear

    @property
    def terms(self) -> list[str]:
        return list(self.options.get("training_set") or [])

    def _term_columns(self, term: str) -> list[str]:
        prefix = "share" if term == REPETITION else term
        return [f"{prefix}_{domain_of(c)}" for c in self.treatment]

    @property
    def inputs(self) -> list[str]:
        """The columns a state row must hold: the covariates, then the pool columns the training-set terms read."""
        extra = [c for t in self.terms for c in self._term_columns(t)]
        return self.covariates + [c for c in dict.fromkeys(extra) if c not in self.covariates]

    def _pool(self, X_df, n, where="the covariates table"):
        """Per training-set term, an (n, K) array in treatment order: 1/share for repetition, else z(c_d)."""
        if not self.terms:
            return []
        out = []
        for t in self.terms:
            cols = self._term_columns(t)
            require_columns(X_df, cols, where, role=f"pool column (training_set term {t!r})")
            M = numeric(X_df, cols, where)
            if t == REPETITION:
                if (M <= 0).any():
                    r, j = map(int, np.argwhere(M <= 0)[0])
                    raise ConfigError(f"{where}: {cols[j]}={float(M[r, j])!r} in row {r}; expected a pool fraction > 0")
                A = 1.0 / M
            else:
                mu, sd = (np.asarray(v, dtype=float) for v in self.pool_stats_[t])
                A = (M - mu) / sd
            out.append(np.repeat(A, n, axis=0) if len(A) == 1 and n != 1 else A)
        return out

    def _full(self, Tp):
        """(n, K) shares in treatment order from T' (the reference's implied, clipped at 0)."""
        W = np.zeros((len(Tp), len(self.treatment)))
        W[:, [self.treatment.index(c) for c in self.others]] = Tp
        W[:, self.treatment.index(self.reference)] = np.clip(1.0 - Tp.sum(axis=1), 0.0, None)
        return W

    def phi(self, Tp, pool=()):
        """The treatment features the model is linear in: T' itself, or SqrtShares(T'), then one column per
        training-set term (`pool`: the arrays _pool() gives for the same rows)."""
        Tp = np.atleast_2d(np.asarray(Tp, dtype=float))
        base = SqrtShares().transform(Tp) if self.features == "sqrt" else Tp
        if not self.terms:
            return base
        W = self._full(Tp)
        extra = [((W ** 2) * A).sum(axis=1) if t == REPETITION else (W * A).sum(axis=1)
                 for t, A in zip(self.terms, pool)]
        return np.c_[base, np.column_stack(extra)]

    def fit(self, df, outcome, minimize=False):
        """Cross-fitted DML on the runs table; nuisance R^2 are kept (see nuisance_scores)."""
        validate_runs(df, self.treatment, self.covariates, outcome)
        X = self._X(df)
        T = df[self.treatment].to_numpy(dtype=float)
        Tp = df[self.others].to_numpy(dtype=float)
        y = df[outcome].to_numpy(dtype=float)
        self.pool_stats_ = {}
        for t in self.terms:
            if t != REPETITION:
                cols = self._term_columns(t)
                require_columns(df, cols, "runs table", role=f"pool column (training_set term {t!r})")
                M = numeric(df, cols, "runs table")
                sd = M.std(axis=0)
                self.pool_stats_[t] = [M.mean(axis=0).tolist(), np.where(sd > 0, sd, 1.0).tolist()]
        P = self._pool(df, len(df), "runs table")
        sign = -1.0 if minimize else 1.0
        est = self._make_estimator()
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est.fit(sign * y, self.phi(Tp, P) if self.terms else Tp, X=X, W=None, cache_values=True)
        y_res, t_res = est.residuals_[0], est.residuals_[1]
        t_res = np.asarray(t_res).reshape(len(y), -1)
        y_s = sign * y

        def r2(res, v):
            ss = float(((v - v.mean()) ** 2).sum())
            return float(1.0 - (np.asarray(res) ** 2).sum() / ss) if ss > 0 else float("nan")

        self.scores_ = {"y": r2(y_res, y_s)}
        F = self.phi(Tp, P)
        for j, c in enumerate(self.others):
            self.scores_[f"t:{c}"] = r2(t_res[:, j], F[:, j])
        est._cached_values = None  # drop the cached training data: smaller pickles
        self.est_ = est
        self.outcome, self.minimize = outcome, bool(minimize)
        self.n_rows_ = int(len(df))
        self.mean_mixture_ = dict(zip(self.treatment, T.mean(axis=0).tolist()))
        return self

    # -- inputs ----------------------------------------------------------------------------------
    def _check_fitted(self):
        if self.est_ is None:
            raise ConfigError("model is not fitted; call fit() or load() first")

    def _X(self, X_df, where="the covariates table"):
        """The fitted covariates, in order, as floats; a missing column, a text cell or a NaN is one line."""
        require_columns(X_df, self.covariates, where, role="covariate column")
        return numeric(X_df, self.covariates, where)

    def _Tp(self, T, n):
        """Accept a DataFrame with the treatment columns or an (n, K) / (K,) array in treatment order."""
        if isinstance(T, pd.DataFrame):
            missing = [c for c in self.treatment if c not in T.columns]
            if missing:
                raise ConfigError(f"treatment column {missing[0]!r} missing; available: {_fmt_list(T.columns)}")
            T = T[self.treatment].to_numpy(dtype=float)
        elif isinstance(T, dict):
            T = np.array([float(T[c]) for c in self.treatment])
        T = np.atleast_2d(np.asarray(T, dtype=float))
        if T.shape[1] != len(self.treatment):
            raise ConfigError(f"mixture has {T.shape[1]} weights; expected {len(self.treatment)} ({_fmt_list(self.treatment)})")
        if T.shape[0] == 1 and n != 1:
            T = np.repeat(T, n, axis=0)
        idx = [self.treatment.index(c) for c in self.others]
        return T[:, idx]

    # -- effects ---------------------------------------------------------------------------------
    def _at(self, at, n):
        """The mixture (K shares) where marginal returns are read: `at`, or the runs' mean mixture."""
        if at is None:
            at = self.mean_mixture_
        return self._Tp(at, n)

    def _phi_effects(self, X):
        """theta_phi and its stderr per treatment feature, each (n, d_phi)."""
        inf = self.est_.const_marginal_effect_inference(X)
        d = len(self.others) + (1 if self.features == "sqrt" else 0) + len(self.terms)
        shape = (len(X), d)
        return inf, np.asarray(inf.point_estimate).reshape(shape), np.asarray(inf.stderr).reshape(shape)

    def _slopes(self, Tp):
        """(n, K-1, 2) chain-rule factors: d phi_d / d w_d, and -d phi_ref / d w_ref (sqrt features)."""
        g = 0.5 / SqrtShares().transform(np.atleast_2d(np.asarray(Tp, dtype=float)))
        return g[:, :-1], -g[:, -1:]

    def theta_stderr(self, X_df, at=None):
        """(theta, stderr), each (n, K-1): marginal returns of the non-reference domains at mixture `at`
        (linear features: the same everywhere). stderr from econml's inference (BLB for the forest); with sqrt
        features it combines the two features' stderrs as if independent (a diagonal approximation)."""
        self._check_fitted()
        X = self._X(X_df)
        _, th, se = self._phi_effects(X)
        k = len(self.others)
        Tp = self._at(at, len(X))
        if self.features == "linear":
            out, var, nb = th[:, :k], se[:, :k] ** 2, k
        else:
            own, ref = self._slopes(Tp)
            out, var, nb = th[:, :k] * own + th[:, k:k + 1] * ref, (se[:, :k] * own) ** 2 + (se[:, k:k + 1] * ref) ** 2, k + 1
        if self.terms:   # d term / d w_d - d term / d w_ref, at `at` and the row's own pool
            W, oth, r = self._full(Tp), [self.treatment.index(c) for c in self.others], self.treatment.index(self.reference)
            for j, (t, A) in enumerate(zip(self.terms, self._pool(X_df, len(X)))):
                g = 2.0 * W * A if t == REPETITION else A
                dg = g[:, oth] - g[:, r:r + 1]
                out = out + th[:, nb + j:nb + j + 1] * dg
                var = var + (se[:, nb + j:nb + j + 1] * dg) ** 2
        return out, np.sqrt(var)

    def theta(self, X_df, at=None):
        """(n, K-1) marginal returns of the non-reference domains (columns in self.others order) at `at`."""
        return self.theta_stderr(X_df, at)[0]

    def effects(self, X_df, alpha=0.05, at=None):
        """Long table: one row per (X row, non-reference domain) with theta, stderr and a (1-alpha) CI
        (normal, from stderr) of the marginal return at mixture `at` (default: the runs' mean mixture)."""
        from scipy.stats import norm
        th, se = self.theta_stderr(X_df, at)
        n, k = th.shape
        q = norm.ppf(1 - alpha / 2)
        return pd.DataFrame({
            "row": np.repeat(np.arange(n), k),
            "domain": np.tile(self.others, n),
            "theta": th.ravel(), "ci_lo": (th - q * se).ravel(), "ci_hi": (th + q * se).ravel(), "stderr": se.ravel(),
        })

    def gain_bound(self, X_df, T_new, T_ref, z=0.0):
        """(gain, gain - z * its stderr) of T_new over T_ref per row: theta_phi . (phi(T_new) - phi(T_ref)),
        stderr ||stderr_phi * dphi||_2 (diagonal). T_new may hold many mixtures for one X row."""
        self._check_fitted()
        X = self._X(X_df)
        _, th, se = self._phi_effects(X)
        Tn = self._Tp(T_new, len(X))
        P = self._pool(X_df, len(Tn))
        D = self.phi(Tn, P) - self.phi(self._Tp(T_ref, len(Tn)), P)
        gain = (D * th).sum(axis=1)
        return gain, gain - z * np.sqrt(((D * se) ** 2).sum(axis=1))

    def predicted_gain(self, X_df, T_new, T_ref):
        """theta . (phi(T'_new) - phi(T'_ref)): predicted improvement (positive = better) of T_new over T_ref."""
        return self.gain_bound(X_df, T_new, T_ref)[0]

    def predict_outcome(self, X_df, T_df):
        """E[Y|X] + theta(X) . (phi(T') - E[phi(T')|X]) in the user's Y units, for held-out checks.

        E[Y|X] and E[phi(T')|X] average the cv cross-fitting nuisance models (each saw (cv-1)/cv of the
        runs); no model is refitted on all rows, so this is the same g, m DML used for theta."""
        self._check_fitted()
        X = self._X(X_df)
        F = self.phi(self._Tp(T_df, len(X)), self._pool(X_df, len(X)))
        ey = np.mean([m.predict(X) for ms in self.est_.models_y for m in ms], axis=0).reshape(len(X))
        et = np.mean([np.asarray(m.predict(X)).reshape(len(X), -1)
                      for ms in self.est_.models_t for m in ms], axis=0)
        _, th, _ = self._phi_effects(X)
        pred = ey + (th * (F - et)).sum(axis=1)
        return -pred if self.minimize else pred

    def nuisance_scores(self):
        """Out-of-fold R^2: 'y' for the outcome model and 't:<domain>' for each treatment share.
        Share R^2 near 0 is expected (and good) when proxy mixtures were sampled independently of X."""
        self._check_fitted()
        return dict(self.scores_)

    # -- persistence -----------------------------------------------------------------------------
    def save(self, out_dir):
        """estimator.joblib, then meta.json (format version, the estimator's sha256); each file replaced atomically."""
        self._check_fitted()
        check_out_dir(out_dir)
        os.makedirs(out_dir, exist_ok=True)
        est_path = os.path.join(out_dir, "estimator.joblib")
        joblib.dump(self.est_, est_path + ".tmp")
        digest = _sha256(est_path + ".tmp")
        meta = dict(format=FORMAT, format_version=FORMAT_VERSION, estimator_sha256=digest,
                    versions=_versions(), treatment=self.treatment, covariates=self.covariates,
                    reference=self.reference, others=self.others, options=self.options, outcome=self.outcome,
                    minimize=self.minimize, n_rows=self.n_rows_, mean_mixture=self.mean_mixture_,
                    nuisance_scores=self.scores_, pool_stats=self.pool_stats_)
        with open(os.path.join(out_dir, "meta.json.tmp"), "w") as f:
            json.dump(meta, f, indent=2)
        os.replace(est_path + ".tmp", est_path)
        os.replace(os.path.join(out_dir, "meta.json.tmp"), os.path.join(out_dir, "meta.json"))

    @classmethod
    def load(cls, out_dir):
        """A model dir written by `causalmix fit` of this format version; anything else is one ConfigError line."""
        meta = read_meta(out_dir)
        where = f"model {str(out_dir)!r}"
        try:
            m = cls(meta["treatment"], meta["covariates"], reference=meta["reference"], **meta["options"])
        except (TypeError, ValueError) as e:
            raise ConfigError(f"{where}: meta.json does not describe a model ({' '.join(str(e).split())[:120]}); "
                              "refit with `causalmix fit`") from None
        est_path = os.path.join(out_dir, "estimator.joblib")
        if not os.path.isfile(est_path):
            raise ConfigError(f"{where} lacks estimator.joblib; expected the files `causalmix fit` writes "
                              "(meta.json and estimator.joblib): refit")
        if _sha256(est_path) != meta["estimator_sha256"]:
            raise ConfigError(f"{where}: estimator.joblib does not match the sha256 in meta.json (changed or "
                              "truncated since `causalmix fit` wrote it); refit")
        try:
            m.est_ = joblib.load(est_path)
        except Exception as e:  # unpickling raises anything; the digest matched, so it is a library mismatch
            raise ConfigError(f"{where}: estimator.joblib cannot be loaded ({type(e).__name__}: "
                              f"{' '.join(str(e).split())[:100]}); written with {meta.get('versions')}, "
                              f"running {_versions()}: refit") from None
        m.outcome, m.minimize, m.n_rows_ = meta["outcome"], meta["minimize"], meta["n_rows"]
        m.mean_mixture_, m.scores_ = meta["mean_mixture"], meta["nuisance_scores"]
        m.pool_stats_ = meta.get("pool_stats", {})
        return m


def _sha256(path):
    import hashlib
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _versions():
    from importlib.metadata import PackageNotFoundError, version
    out = {}
    for pkg in ("causalmix", "econml", "scikit-learn", "numpy"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = None
    return out


def read_meta(out_dir):
    """meta.json of a model dir, checked for its format and version before anything is unpickled."""
    where = f"model {str(out_dir)!r}"
    if not os.path.exists(out_dir):
        raise ConfigError(f"no fitted model at {str(out_dir)!r} (no such directory); expected a directory written "
                          "by `causalmix fit` (run it first)")
    if not os.path.isdir(out_dir):
        raise ConfigError(f"model path {str(out_dir)!r} is a file; expected a directory written by `causalmix fit`")
    meta_path = os.path.join(out_dir, "meta.json")
    if not os.path.isfile(meta_path):
        raise ConfigError(f"no fitted model at {str(out_dir)!r} (meta.json missing); run `causalmix fit` first")
    try:
        with open(meta_path) as f:
            meta = json.load(f)
    except (ValueError, UnicodeDecodeError) as e:
        raise ConfigError(f"{where}: meta.json is not valid JSON ({' '.join(str(e).split())[:80]}); "
                          "expected the file `causalmix fit` writes: refit") from None
    if not isinstance(meta, dict):
        raise ConfigError(f"{where}: meta.json holds a {type(meta).__name__}; expected a JSON object: refit")
    version = meta.get("format_version")
    if meta.get("format") != FORMAT or version != FORMAT_VERSION:
        found = "no format_version (an older causalmix)" if version is None else f"format_version {version!r}"
        raise ConfigError(f"{where} has {found}; expected format_version {FORMAT_VERSION} "
                          f"(this causalmix): refit with `causalmix fit`")
    missing = [k for k in META_KEYS + ("estimator_sha256",) if k not in meta]
    if missing:
        raise ConfigError(f"{where}: meta.json lacks {missing[0]!r}; expected the keys `causalmix fit` writes: refit")
    return meta


def check_out_dir(out):
    """`--out` must be a new directory or a model directory: never a file or someone else's folder."""
    if os.path.exists(out):
        if not os.path.isdir(out):
            raise ConfigError(f"--out {str(out)!r} is a file; expected a directory for the model")
        ours = {"meta.json", "estimator.joblib", "meta.json.tmp", "estimator.joblib.tmp"}  # incl. a crashed save
        if set(os.listdir(out)) - ours and not os.path.isfile(os.path.join(out, "meta.json")):
            raise ConfigError(f"--out {str(out)!r} is a non-empty directory without a model (no meta.json); "
                              "expected a new directory or a model directory to replace")
    elif os.path.exists(os.path.dirname(os.path.abspath(out))) and \
            not os.path.isdir(os.path.dirname(os.path.abspath(out))):
        raise ConfigError(f"--out {str(out)!r}: its parent is a file; expected a directory path")


def read_table(path, what="table"):
    """CSV or parquet by extension; one ConfigError line if missing, empty or malformed (see tables.read_table)."""
    from causalmix.causal.tables import read_table as _read
    return _read(path, what)


def _split(s):
    return [c.strip() for c in s.split(",") if c.strip()] if isinstance(s, str) else list(s)


def main_fit(runs, treatment, covariates, outcome, out, estimator="causal_forest", reference=None,
             minimize=False, file=None, **options):
    """`causalmix fit`: comma lists of columns; writes the model dir and prints a short summary.
    Extra keyword options go to MixtureEffectModel (cv, n_estimators, model_y, ...)."""
    file = file or sys.stdout
    treatment, covariates = _split(treatment), _split(covariates)
    model = MixtureEffectModel(treatment, covariates, reference=reference or None, estimator=estimator, **options)
    check_out_dir(out)
    df = read_table(runs, "runs")
    validate_runs(df, model.treatment, model.covariates, outcome, where=f"runs table {str(runs)!r}")
    model.fit(df, outcome, minimize=minimize)
    model.save(out)
    sc = model.nuisance_scores()
    print(f"fitted {estimator} on {model.n_rows_} runs, {len(model.treatment)} domains "
          f"(reference {model.reference!r}), {len(model.covariates)} covariates -> {out}", file=file)
    print("out-of-fold R^2: " + ", ".join(f"{k}={v:.3f}" for k, v in sc.items()), file=file)
    sign = " (fitted on -Y: positive theta = lower outcome)" if minimize else ""
    print(f"mean theta over training states, 95% CI{sign}:", file=file)
    X = model._X(df)
    inf = model.est_.const_marginal_ate_inference(X)  # econml: mean over states, conservative stderr
    k = len(model.others)
    d = k + (1 if model.features == "sqrt" else 0) + len(model.terms)
    mean, se = np.asarray(inf.mean_point).reshape(d), np.asarray(inf.stderr_mean).reshape(d)
    if model.terms:   # returns depend on each state's own pool: their mean, with the states' RMS stderr
        th_s, se_s = model.theta_stderr(df)
        mean, se = th_s.mean(axis=0), np.sqrt((se_s ** 2).mean(axis=0))
        print(f"  (training-set terms {', '.join(model.terms)}: marginal returns at the runs' mean mixture, "
              "averaged over the runs' pools)", file=file)
    elif model.features == "sqrt":   # marginal returns at the runs' mean mixture (see the module docstring)
        own, ref = (a[0] for a in model._slopes(model._at(None, 1)))
        mean, se = mean[:k] * own + mean[k] * ref, np.sqrt((se[:k] * own) ** 2 + (se[k] * ref) ** 2)
        print("  (sqrt features: marginal returns at the runs' mean mixture)", file=file)
    lo, hi = mean - 1.96 * se, mean + 1.96 * se
    th = model.theta(df)
    for j, d in enumerate(model.others):
        print(f"  {d:>20s}: {mean[j]:+.4f}  [{lo[j]:+.4f}, {hi[j]:+.4f}]  "
              f"(range over states {th[:, j].min():+.3f}..{th[:, j].max():+.3f})", file=file)
    return model
