"""Simplex projection, trust-region policies, and recommend on a model with known returns."""

import numpy as np
import pandas as pd
import pytest

from causalmix.errors import ConfigError
from causalmix.causal.estimator import MixtureEffectModel
from causalmix.causal.policy import (causalmix_analytic, causalmix_search, conservative_theta,
                              project_to_simplex, recommend, tv_distance)


@pytest.mark.parametrize("floor", [0.0, 0.05])
def test_projection_properties(floor):
    rng = np.random.default_rng(0)
    V = rng.normal(size=(200, 6)) * 2
    W = project_to_simplex(V, floor)
    np.testing.assert_allclose(W.sum(axis=1), 1.0, atol=1e-12)
    assert (W >= floor - 1e-12).all()
    np.testing.assert_allclose(project_to_simplex(W, floor), W, atol=1e-12)  # idempotent
    # it is the nearest feasible point: no random feasible point is closer
    F = project_to_simplex(rng.dirichlet(np.ones(6), size=2000) * (1 - 6 * floor) + floor, floor)
    for v, w in zip(V[:20], W[:20]):
        assert np.linalg.norm(v - w) <= np.linalg.norm(F - v, axis=1).min() + 1e-9
    # 1-D input, and a point already inside stays put
    w = np.array([0.1, 0.2, 0.3, 0.15, 0.15, 0.1])
    np.testing.assert_allclose(project_to_simplex(w, floor), w)
    with pytest.raises(ConfigError, match="floor=0.2 infeasible"):
        project_to_simplex(w, 0.2)


def test_analytic_moves_along_returns_within_radius():
    w_ref = np.array([0.25, 0.25, 0.25, 0.25])
    th = np.array([2.0, 0.0, -1.0, 0.0])
    w = causalmix_analytic(th, w_ref, radius=0.2)
    assert abs(w.sum() - 1) < 1e-12 and (w >= 0).all()
    assert tv_distance(w, w_ref) == pytest.approx(0.2)
    assert w[0] > 0.25 and w[2] < 0.25 and w @ th > w_ref @ th
    # only differences matter: adding a constant to theta changes nothing
    np.testing.assert_allclose(causalmix_analytic(th + 5, w_ref, 0.2), w)
    # no signal, no move
    np.testing.assert_allclose(causalmix_analytic(np.zeros(4), w_ref, 0.2), w_ref)


@pytest.mark.parametrize("floor", [0.0, 0.02])
def test_analytic_projection_then_shrink_respects_region(floor):
    rng = np.random.default_rng(1)
    for _ in range(200):
        k = rng.integers(2, 8)
        w_ref = project_to_simplex(rng.dirichlet(np.ones(k) * 0.3), floor)  # often near a vertex
        r = rng.uniform(0, 0.8)
        w = causalmix_analytic(rng.normal(size=k) * 3, w_ref, r, floor)
        assert abs(w.sum() - 1) < 1e-9 and (w >= floor - 1e-9).all()
        assert tv_distance(w, w_ref) <= r + 1e-9


def test_search_never_worse_than_reference_and_in_region():
    rng = np.random.default_rng(2)
    for trial in range(30):
        k = 5
        w_ref = rng.dirichlet(np.ones(k))
        target = rng.dirichlet(np.ones(k))
        def score(C):  # concave, peak at `target`; sometimes w_ref is already best
            return -((C - target) ** 2).sum(axis=1)
        r = 0.0 if trial == 0 else rng.uniform(0.05, 0.5)
        for top_k in (1, 16):
            w = causalmix_search(score, w_ref, r, n_candidates=512, seed=trial, top_k=top_k)
            assert abs(w.sum() - 1) < 1e-9 and (w >= -1e-12).all()
            assert tv_distance(w, w_ref) <= r + 1e-9
            assert score(w[None])[0] >= score(w_ref[None])[0] - 1e-12
    # w_ref is the best of all: returned exactly
    w_ref = np.array([0.4, 0.3, 0.3])
    w = causalmix_search(lambda C: -np.abs(C - w_ref).sum(axis=1), w_ref, 0.3, n_candidates=256)
    np.testing.assert_allclose(w, w_ref)


def test_search_finds_linear_optimum_vertex():
    w_ref = np.array([0.3, 0.3, 0.4])
    th = np.array([1.0, 0.0, -1.0])
    w = causalmix_search(lambda C: C @ th, w_ref, 0.2, n_candidates=256)
    np.testing.assert_allclose(w, [0.5, 0.3, 0.2], atol=1e-12)  # move 0.2 from worst to best
    wa = causalmix_analytic(th, w_ref, 0.2)
    assert wa @ th <= w @ th + 1e-12  # A follows the gradient; S can do at least as well here


def test_conservative_theta():
    th = np.array([2.0, -0.5, 0.3, -3.0])
    se = np.array([0.5, 1.0, 0.1, 1.0])
    np.testing.assert_allclose(conservative_theta(th, se, 1.0), [1.5, 0.0, 0.2, -2.0])
    np.testing.assert_allclose(conservative_theta(th, se, 0.0), th)
    with pytest.raises(ConfigError):
        conservative_theta(th, se, -1)


def test_scaled_step_shrinks_with_the_evidence_the_threshold_removes():
    w_ref = np.full(4, 0.25)
    raw = np.array([1.0, 0.0, 0.0, 0.0])
    # nothing shrunk: the scaled step is the full step
    np.testing.assert_allclose(causalmix_analytic(raw, w_ref, 0.3, raw=raw), causalmix_analytic(raw, w_ref, 0.3))
    # half of the return survives its threshold: half the share moves, in the same direction
    w = causalmix_analytic(raw / 2, w_ref, 0.3, raw=raw)
    assert tv_distance(w, w_ref) == pytest.approx(0.15) and w[0] > 0.25
    # the only return above its threshold crossing it: the full step jumps by the whole radius (it moves all
    # of it to whichever returns survive, however little of them survives), the scaled step by almost nothing
    se = np.array([0.5, 0.5, 0.5, 0.5])
    th_a, th_b = np.array([0.501, 0.0, 0.0, 0.0]), np.array([0.499, 0.0, 0.0, 0.0])
    full = [causalmix_analytic(conservative_theta(t, se, 1.0), w_ref, 0.3) for t in (th_a, th_b)]
    scaled = [causalmix_analytic(conservative_theta(t, se, 1.0), w_ref, 0.3, raw=t) for t in (th_a, th_b)]
    assert np.abs(full[0] - full[1]).max() == pytest.approx(0.3)
    assert np.abs(scaled[0] - scaled[1]).max() < 0.001
    assert all(tv_distance(w, w_ref) <= 0.3 + 1e-12 for w in scaled)
    # no evidence left: no move
    np.testing.assert_allclose(causalmix_analytic(np.zeros(4), w_ref, 0.3, raw=raw), w_ref)
    with pytest.raises(ConfigError, match="raw theta has 3 entries; expected 4"):
        causalmix_analytic(raw, w_ref, 0.3, raw=raw[:3])


class FakeModel:
    """Stands in for a fitted MixtureEffectModel: theta_A = +2 if x1 > 0.5 else -2, theta_B = 0."""
    treatment, others, covariates = ["A", "B", "C"], ["A", "B"], ["x1"]
    mean_mixture_ = {"A": 0.3, "B": 0.3, "C": 0.4}

    def theta_stderr(self, X_df, at=None):
        x = X_df["x1"].to_numpy()
        th = np.stack([np.where(x > 0.5, 2.0, -2.0), np.zeros_like(x)], axis=1)
        return th, np.full_like(th, 0.3)

    def gain_bound(self, X_df, T_new, T_ref, z=0.0):      # linear in the shares, as MixtureEffectModel's
        th, se = self.theta_stderr(X_df)
        D = (np.atleast_2d(T_new) - np.atleast_2d(T_ref))[:, :2]
        gain = (D * th).sum(axis=1)
        return gain, gain - z * np.sqrt(((D * se) ** 2).sum(axis=1))

    def predicted_gain(self, X_df, T_new, T_ref):
        return self.gain_bound(X_df, T_new, T_ref)[0]


@pytest.mark.parametrize("policy", ["analytic", "search"])
def test_recommend_follows_state_dependent_return(policy):
    X = pd.DataFrame({"x1": [0.2, 0.9]})
    rec = recommend(FakeModel(), X, "mean", policy=policy, radius=0.2, z=1.0, n_candidates=512)
    assert list(rec.columns) == ["A", "B", "C", "predicted_gain"]
    W = rec[["A", "B", "C"]].to_numpy()
    np.testing.assert_allclose(W.sum(axis=1), 1)
    assert (tv_distance(W, [0.3, 0.3, 0.4]) <= 0.2 + 1e-9).all()
    assert W[0, 0] < 0.3 - 0.05 and W[1, 0] > 0.3 + 0.05  # away from A in low x1, towards A in high
    assert (rec.predicted_gain > 0).all()


def test_recommend_scaled_step_moves_less_where_the_threshold_bites():
    class Unsure(FakeModel):            # theta_A = +-2 with se 1.5: a quarter of it survives z = 1
        def theta_stderr(self, X_df, at=None):
            th, _ = super().theta_stderr(X_df)
            return th, np.full_like(th, 1.5)
    X = pd.DataFrame({"x1": [0.2, 0.9]})
    ref = {"A": 0.3, "B": 0.3, "C": 0.4}
    full = recommend(Unsure(), X, ref, radius=0.2, z=1.0)[["A", "B", "C"]].to_numpy()
    scaled = recommend(Unsure(), X, ref, radius=0.2, z=1.0, step="scaled")[["A", "B", "C"]].to_numpy()
    np.testing.assert_allclose(tv_distance(full, [0.3, 0.3, 0.4]), 0.2)
    np.testing.assert_allclose(tv_distance(scaled, [0.3, 0.3, 0.4]), 0.2 * 0.5 / 2.0)
    assert np.sign(scaled[:, 0] - 0.3).tolist() == np.sign(full[:, 0] - 0.3).tolist() == [-1, 1]


def test_recommend_stays_put_without_evidence():
    class Noisy(FakeModel):
        def theta_stderr(self, X_df, at=None):
            th, _ = super().theta_stderr(X_df)
            return th, np.full_like(th, 5.0)  # |theta| = 2 < z * se
    X = pd.DataFrame({"x1": [0.2, 0.9]})
    for policy in ("analytic", "search"):
        rec = recommend(Noisy(), X, {"A": 0.3, "B": 0.3, "C": 0.4}, policy=policy, radius=0.3, z=1.0)
        np.testing.assert_allclose(rec[["A", "B", "C"]].to_numpy(), [[0.3, 0.3, 0.4]] * 2, atol=1e-12)
    with pytest.raises(ConfigError, match="policy 'greedy'"):
        recommend(FakeModel(), X, "equal", policy="greedy")
    with pytest.raises(ConfigError, match="analytic step 'half' unknown; expected one of full, scaled"):
        recommend(FakeModel(), X, "equal", step="half")
    with pytest.raises(ConfigError, match="2 weights; expected 3"):
        recommend(FakeModel(), X, [0.5, 0.5])


def test_recommend_with_fitted_model():
    rng = np.random.default_rng(0)
    n = 200
    X = rng.uniform(size=(n, 2))
    T = rng.dirichlet(np.ones(3), size=n)
    y = X[:, 1] + np.where(X[:, 0] > 0.5, 2.0, -2.0) * T[:, 0] + 0.1 * rng.normal(size=n)
    df = pd.DataFrame(np.hstack([T, X, y[:, None]]), columns=["A", "B", "C", "x1", "x2", "y"])
    m = MixtureEffectModel(["A", "B", "C"], ["x1", "x2"], n_estimators=100).fit(df, "y")
    rec = recommend(m, pd.DataFrame({"x1": [0.1, 0.9], "x2": 0.5}), "equal", radius=0.2)
    assert rec.A.iloc[0] < 1 / 3 < rec.A.iloc[1]
