"""MixtureEffectModel recovers known state-dependent returns; validate_runs names bad inputs."""

import numpy as np
import pandas as pd
import pytest

from causalmix.errors import ConfigError
from causalmix.causal.estimator import MixtureEffectModel, validate_runs

DOMAINS = ["A", "B", "C"]  # reference = C (last)


def synthetic_runs(n=300, seed=0, noise=0.1):
    """theta_A(x) = +2 if x1 > 0.5 else -2 (vs. C), theta_B = 0; g(X) = x2 - x3."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(size=(n, 3))
    T = rng.dirichlet(np.ones(3), size=n)
    thA = np.where(X[:, 0] > 0.5, 2.0, -2.0)
    y = X[:, 1] - X[:, 2] + thA * T[:, 0] + noise * rng.normal(size=n)
    df = pd.DataFrame(T, columns=DOMAINS)
    df[["x1", "x2", "x3"]] = X
    df["score"] = y
    return df


STATES = pd.DataFrame({"x1": [0.15, 0.3, 0.7, 0.85], "x2": 0.5, "x3": 0.5})  # 2 low, 2 high


def fit(estimator, **kw):
    opts = dict(n_estimators=100, cv=3, random_state=0)
    opts.update(kw)
    return MixtureEffectModel(DOMAINS, ["x1", "x2", "x3"], estimator=estimator, **opts)


@pytest.fixture(scope="module")
def runs():
    return synthetic_runs()


@pytest.fixture(scope="module")
def forest(runs):
    return fit("causal_forest").fit(runs, "score")


@pytest.fixture(scope="module")
def linear(runs):
    return fit("linear").fit(runs, "score")


@pytest.mark.parametrize("estimator", ["causal_forest", "linear"])
def test_recovers_signs_and_size(runs, forest, linear, estimator):
    m = forest if estimator == "causal_forest" else linear
    th = m.theta(STATES)
    assert th.shape == (4, 2) and m.others == ["A", "B"]
    # A: -2 in low x1, +2 in high x1 (a linear CATE smooths the step, so size tolerance is generous)
    assert (th[:2, 0] < -0.8).all() and (th[:2, 0] > -3.5).all(), th
    assert (th[2:, 0] > 0.8).all() and (th[2:, 0] < 3.5).all(), th
    assert np.abs(th[:, 1]).max() < 0.7, th  # B has no effect
    eff = m.effects(STATES)
    assert list(eff.columns) == ["row", "domain", "theta", "ci_lo", "ci_hi", "stderr"]
    assert len(eff) == 8 and (eff.ci_lo <= eff.theta).all() and (eff.theta <= eff.ci_hi).all()
    assert (eff.stderr > 0).all()
    # the high-x1 effect of A is significantly positive
    a_hi = eff[(eff.domain == "A") & (eff.row == 3)].iloc[0]
    assert a_hi.ci_lo > 0


def test_nuisance_scores_and_predictions(runs, forest):
    sc = forest.nuisance_scores()
    assert set(sc) == {"y", "t:A", "t:B"}
    assert sc["y"] > 0.3  # g(X) = x2 - x3 is learnable
    assert abs(sc["t:A"]) < 0.3  # mixtures were drawn independently of X
    new = synthetic_runs(n=200, seed=1, noise=0.0)
    pred = forest.predict_outcome(new, new)
    assert np.corrcoef(pred, new.score)[0, 1] > 0.8
    # gain of moving 0.2 from C to A: +0.4 in high states, -0.4 in low states
    t_ref = np.array([0.2, 0.3, 0.5])
    t_new = np.array([0.4, 0.3, 0.3])
    g = forest.predicted_gain(STATES, t_new, t_ref)
    assert (g[:2] < -0.15).all() and (g[2:] > 0.15).all(), g


def test_minimize_flips_sign_of_theta_not_of_predictions(runs, linear):
    loss = runs.assign(loss=-runs.score)
    m = fit("linear").fit(loss, "loss", minimize=True)
    np.testing.assert_allclose(m.theta(STATES), linear.theta(STATES), atol=1e-6)
    np.testing.assert_allclose(m.predict_outcome(runs, runs), -linear.predict_outcome(runs, runs), atol=1e-6)


def test_save_load_round_trip(tmp_path, runs, forest):
    forest.save(tmp_path / "m")
    m2 = MixtureEffectModel.load(str(tmp_path / "m"))
    np.testing.assert_allclose(m2.theta(STATES), forest.theta(STATES))
    assert m2.reference == "C" and m2.covariates == ["x1", "x2", "x3"]
    assert m2.nuisance_scores() == forest.nuisance_scores()
    assert abs(sum(m2.mean_mixture_.values()) - 1) < 1e-9


def test_reference_choice_changes_parameterization(runs):
    m = fit("linear", reference="A").fit(runs, "score")
    th = m.theta(STATES)
    assert m.others == ["B", "C"]
    # moving share from A to C is the negative of moving from C to A
    assert (th[:2, 1] > 0.8).all() and (th[2:, 1] < -0.8).all(), th


@pytest.mark.parametrize("model_y,model_t", [("ridge", "lasso"), ("gbr", "ridge")])
def test_other_nuisances_fit(runs, model_y, model_t):
    m = fit("linear", model_y=model_y, model_t=model_t).fit(runs.iloc[:120], "score")
    assert m.theta(STATES).shape == (4, 2)
    assert np.isfinite(list(m.nuisance_scores().values())).all()


def _err(df, match, **kw):
    args = dict(treatment=DOMAINS, covariates=["x1", "x2"], outcome="score")
    args.update(kw)
    with pytest.raises(ConfigError, match=match):
        validate_runs(df, **args)


def test_validate_runs_errors(runs):
    validate_runs(runs, DOMAINS, ["x1", "x2"], "score")
    _err(runs, r"column 'x9' not in runs table; available: A, B", covariates=["x9"])
    _err(runs, "column 'nope'", outcome="nope")
    _err(runs, "at least 2 treatment", treatment=["A"])
    _err(runs.iloc[:5], "5 rows; need at least 10")
    bad = runs.copy()
    bad.loc[7, "A"] += 0.1
    _err(bad, r"row 7 sum to 1\.1")
    bad = runs.copy()
    bad.loc[3, "A"], bad.loc[3, "B"] = -0.1, bad.loc[3, "B"] + 0.1 + bad.loc[3, "A"]
    _err(bad, r"negative mixture weight .* 'A' at row 3")
    bad = runs.copy()
    bad.loc[11, "x2"] = np.nan
    _err(bad, r"'x2' has NaN/inf at row 11")
    bad = runs.copy()
    bad.loc[2, "score"] = np.inf
    _err(bad, r"'score' has NaN/inf at row 2")


def test_nuisance_trees_size_the_cross_fitted_nuisance_forests(runs):
    m = fit("causal_forest", nuisance_trees=12).fit(runs, "score")
    sizes = [len(f.estimators_) for fits in (m.est_.models_y, m.est_.models_t) for per_iter in fits for f in per_iter]
    assert len(sizes) == 2 * 3 and set(sizes) == {12}    # outcome and treatment models, one per cross-fitting fold


def test_constructor_errors():
    with pytest.raises(ConfigError, match="reference domain 'Z'"):
        MixtureEffectModel(DOMAINS, ["x1"], reference="Z")
    with pytest.raises(ConfigError, match="estimator 'dr'"):
        MixtureEffectModel(DOMAINS, ["x1"], estimator="dr")
    with pytest.raises(ConfigError, match="model_y 'xgb'"):
        MixtureEffectModel(DOMAINS, ["x1"], model_y="xgb")
    with pytest.raises(ConfigError, match="multiple of 4"):
        MixtureEffectModel(DOMAINS, ["x1"], n_estimators=10)
    with pytest.raises(ConfigError, match=r"nuisance_trees=0; expected a positive integer"):
        MixtureEffectModel(DOMAINS, ["x1"], nuisance_trees=0)
    with pytest.raises(ConfigError, match="not fitted"):
        MixtureEffectModel(DOMAINS, ["x1"]).theta(STATES)


def test_sqrt_features_see_diminishing_returns_that_linear_cannot():
    """Y = sum_d b_d sqrt(w_d): the sqrt model predicts held-out runs far better than the linear one, and its
    marginal return at a mixture is the chain rule of the fitted per-feature effects."""
    from causalmix.causal.estimator import SQRT_EPS, MixtureEffectModel
    rng = np.random.default_rng(0)
    b = np.array([3.0, 1.0, 2.0])

    def runs(n):
        W = rng.dirichlet([0.3] * 3, n)
        df = pd.DataFrame(W, columns=["A", "B", "C"]).assign(x1=rng.uniform(size=n), x2=rng.uniform(size=n))
        return df.assign(y=np.sqrt(W + SQRT_EPS) @ b + rng.normal(0, 0.05, n))
    train, test = runs(400), runs(200)
    r2 = {}
    for feat in ("linear", "sqrt"):
        m = MixtureEffectModel(["A", "B", "C"], ["x1", "x2"], reference="C", estimator="linear", features=feat,
                               model_y="ridge", model_t="ridge").fit(train, "y")
        err = test.y - m.predict_outcome(test[["x1", "x2"]], test[["A", "B", "C"]])
        r2[feat] = 1 - (err ** 2).sum() / ((test.y - test.y.mean()) ** 2).sum()
        if feat == "sqrt":
            at = {"A": 0.5, "B": 0.2, "C": 0.3}
            slope = lambda w: 0.5 / np.sqrt(w + SQRT_EPS)  # noqa: E731
            want = [b[0] * slope(0.5) - b[2] * slope(0.3), b[1] * slope(0.2) - b[2] * slope(0.3)]
            np.testing.assert_allclose(m.theta(test[["x1", "x2"]].iloc[:1], at=at)[0], want, rtol=0.1)
            gain = m.predicted_gain(test[["x1", "x2"]].iloc[:1], [0.4, 0.3, 0.3], [0.5, 0.2, 0.3])[0]
            true = np.sqrt(np.array([0.4, 0.3, 0.3]) + SQRT_EPS) @ b - np.sqrt(np.array([0.5, 0.2, 0.3]) + SQRT_EPS) @ b
            assert abs(gain - true) < 0.05, (gain, true)
    assert r2["sqrt"] > 0.95 and r2["sqrt"] > r2["linear"] + 0.1, r2


def _training_set_runs(n, rng):
    """Y = sum_d b_d sqrt(w_d) - 2 sum_d w_d^2 / share_d + 3 sum_d w_d ws_d + x + noise: the repetition the
    mixture forces on a small slice of the pool costs, and a clean domain's share pays, at every state."""
    from causalmix.causal.estimator import SQRT_EPS
    b = np.array([3.0, 1.0, 2.0])
    W = rng.dirichlet([0.5] * 3, n)
    S = rng.dirichlet([4.0] * 3, n)                 # the pool's own domain fractions
    Q = rng.uniform(0.0, 1.0, (n, 3))               # each domain's measured quality
    df = pd.DataFrame(W, columns=["w_A", "w_B", "w_C"])
    df[["share_A", "share_B", "share_C"]] = S
    df[["ws_A", "ws_B", "ws_C"]] = Q
    df["x"] = rng.uniform(size=n)
    y = np.sqrt(W + SQRT_EPS) @ b - 2.0 * (W ** 2 / S).sum(1) + 3.0 * (W * Q).sum(1) + df.x
    return df.assign(y=y + rng.normal(0, 0.05, n))


def test_training_set_terms_predict_and_their_returns_are_the_models_own_slopes(tmp_path):
    """With the repetition and ws terms the model predicts held-out runs that the shares alone cannot; theta is
    the derivative of its own predictions (moving share from the reference), and a saved model predicts alike."""
    rng = np.random.default_rng(0)
    train, test = _training_set_runs(500, rng), _training_set_runs(200, rng)
    cols = ["w_A", "w_B", "w_C"]
    r2, models = {}, {}
    for terms in ((), ("repetition", "ws")):
        m = MixtureEffectModel(cols, ["x", "share_A", "share_B"], reference="w_C", estimator="linear",
                               features="sqrt", model_y="ridge", model_t="ridge", training_set=terms).fit(train, "y")
        err = test.y - m.predict_outcome(test[m.inputs], test[cols])
        r2[terms], models[terms] = 1 - (err ** 2).sum() / ((test.y - test.y.mean()) ** 2).sum(), m
    assert r2[("repetition", "ws")] > 0.9 and r2[("repetition", "ws")] > r2[()] + 0.1, r2
    m = models[("repetition", "ws")]
    assert m.inputs == ["x", "share_A", "share_B", "share_C", "ws_A", "ws_B", "ws_C"]
    row, at, h = test[m.inputs].iloc[[3]], np.array([0.5, 0.2, 0.3]), 1e-5
    th = m.theta(row, at=dict(zip(cols, at)))[0]
    base = m.predict_outcome(row, at)[0]
    for j in range(2):   # others are w_A, w_B; the reference w_C gives the share
        moved = at.copy()
        moved[j] += h
        moved[2] -= h
        np.testing.assert_allclose(th[j], (m.predict_outcome(row, moved)[0] - base) / h, rtol=1e-3, atol=1e-4)
    gain = m.predicted_gain(row, [0.2, 0.5, 0.3], at)[0]
    np.testing.assert_allclose(gain, m.predict_outcome(row, [0.2, 0.5, 0.3])[0] - base, atol=1e-9)
    m.save(tmp_path / "m")
    back = MixtureEffectModel.load(tmp_path / "m")
    np.testing.assert_allclose(back.predict_outcome(test[m.inputs], test[cols]),
                               m.predict_outcome(test[m.inputs], test[cols]))


def test_training_set_terms_name_bad_input():
    rng = np.random.default_rng(1)
    runs = _training_set_runs(60, rng)
    cols = ["w_A", "w_B", "w_C"]
    with pytest.raises(ConfigError, match="training_set term 'ws x'"):
        MixtureEffectModel(cols, ["x"], training_set=["ws x"])
    with pytest.raises(ConfigError, match="training_set terms repeat"):
        MixtureEffectModel(cols, ["x"], training_set=["ws", "ws"])
    m = MixtureEffectModel(cols, ["x"], estimator="linear", model_y="ridge", model_t="ridge", training_set=["dup"])
    with pytest.raises(ConfigError, match=r"training_set term 'dup'\) 'dup_A' not in runs table"):
        m.fit(runs, "y")
    m = MixtureEffectModel(cols, ["x"], estimator="linear", model_y="ridge", model_t="ridge",
                           training_set=["repetition"]).fit(runs, "y")
    with pytest.raises(ConfigError, match=r"share_B=0\.0 in row 0; expected a pool fraction > 0"):
        m.theta(runs.iloc[[0]].assign(share_B=0.0))
