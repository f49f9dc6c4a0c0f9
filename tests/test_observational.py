"""The semi-synthetic observational design (causal.observational): the data-generating process is the one
written in book/method.md, and on a strongly confounded design naive regression's error exceeds DML's."""
import numpy as np
import pandas as pd
import pytest

from causalmix.causal import observational as ob
from causalmix.errors import ConfigError

DOMAINS = ["a", "b", "c", "d"]


def states(n=200, seed=0):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({f"ws_{d}": 0.8 + 0.06 * rng.standard_normal(n) for d in DOMAINS})   # like the sweep's ws
    df["pool_nl"] = rng.normal(size=n)          # a covariate the truth does not use
    return df


COVS = [f"ws_{d}" for d in DOMAINS] + ["pool_nl"]


def test_truth_is_the_documented_process():
    t = ob.Truth(DOMAINS, "c", effect=2.0, slope=0.5, baseline=1.0, confounding=0.0, noise=0.0)
    assert np.allclose(t.a, [-2, -2 / 3, 2 / 3, 2])
    z = ob.standardised_quality(states(), DOMAINS)
    assert np.allclose(z.mean(axis=0), 0, atol=0.05) and np.abs(z).max() <= 2.5
    theta = t.theta(z)
    r = DOMAINS.index("c")
    for j, d in enumerate(t.others):
        k = DOMAINS.index(d)
        assert np.allclose(theta[:, j], t.a[k] - t.a[r] + 0.5 * (z[:, k] - z[:, r]))
    W = t.mixtures(z, np.random.default_rng(0))
    assert np.allclose(W.sum(axis=1), 1) and (W >= 0).all()
    y = t.outcome(z, W, np.random.default_rng(1))                  # noise 0: exactly g + tau . W
    assert np.allclose(y, np.exp(z).sum(axis=1) + (t.tau(z) * W).sum(axis=1))


def test_confounding_ties_share_to_cleanliness_and_randomised_does_not():
    z = ob.standardised_quality(states(400), DOMAINS)
    corr = {}
    for gamma in (0.0, 2.0):
        W = ob.Truth(DOMAINS, "c", confounding=gamma).mixtures(z, np.random.default_rng(0))
        corr[gamma] = np.mean([np.corrcoef(W[:, j], z[:, j])[0, 1] for j in range(len(DOMAINS))])
    assert abs(corr[0.0]) < 0.15 and corr[2.0] > 0.4


def test_naive_regression_is_biased_under_strong_confounding_and_dml_corrects():
    """A constant effect (slope 0, so both estimate the same ATE), a state effect g that a linear adjustment
    cannot absorb (exp), and a mixture tilted hard toward clean domains: naive OLS credits the mixture with g."""
    truth = ob.Truth(DOMAINS, "c", effect=4.0, slope=0.0, baseline=1.0, noise=0.5)
    res = ob.experiment(states(), COVS, truth, {"randomised": 0.0, "confounded": 2.0}, reps=4, rows_per_state=2,
                        methods=("naive_ols", "dml_linear"), seed=0, n_jobs=2)
    err = res.groupby(["design", "method"]).ate_abs_err.mean()
    assert err["confounded", "naive_ols"] > 1.3 * err["confounded", "dml_linear"]
    gain = ob.paired_gain(res, "naive_ols", "dml_linear").set_index("design")
    assert gain.loc["confounded", "ci_lo"] > 0                      # paired over reps, DML's error is lower
    assert err["confounded", "naive_ols"] > 2 * err["randomised", "naive_ols"]   # the bias comes from the design
    bias = ob.bias_table(res)
    naive = bias[(bias.design == "confounded") & (bias.method == ob.LABELS["naive_ols"])]
    assert naive.systematic.any()


def test_estimators_recover_a_randomised_truth():
    truth = ob.Truth(DOMAINS, "c", effect=4.0, slope=1.0, baseline=0.5, noise=0.5, confounding=0.0)
    df, theta = ob.simulate(states(400), COVS, truth, np.random.default_rng(3))
    for m in ("naive_ols", "dml_linear", "dml_forest"):
        th = ob.estimate(df, COVS, truth, m, n_estimators=100)
        assert th.shape == theta.shape
        assert ob.errors(th, theta, truth.others)["ate_abs_err"] < 0.6, m


def test_bad_settings_are_one_line():
    with pytest.raises(ConfigError, match="reference"):
        ob.Truth(DOMAINS, "zzz")
    with pytest.raises(ConfigError, match="noise"):
        ob.Truth(DOMAINS, "c", noise=-1)
    with pytest.raises(ConfigError, match="ws_e"):
        ob.standardised_quality(states(), DOMAINS + ["e"])
    with pytest.raises(ConfigError, match="reps"):
        ob.experiment(states(), COVS, ob.Truth(DOMAINS, "c"), {"x": 0.0}, reps=1)
    with pytest.raises(ConfigError, match="method"):
        ob.estimate(*ob.simulate(states(), COVS, ob.Truth(DOMAINS, "c"), np.random.default_rng(0))[:1], COVS,
                    ob.Truth(DOMAINS, "c"), "magic")
