"""Ranking held-out runs (causal.ranking): Spearman and Regret@1 within folds, bootstrap CIs over runs."""
import numpy as np
import pandas as pd
import pytest

from causalmix.causal import ranking as rk
from causalmix.errors import ConfigError


def runs(n=60, seed=0):
    rng = np.random.default_rng(seed)
    W = rng.dirichlet(np.ones(3), size=n)
    df = pd.DataFrame(W, columns=["w_a", "w_b", "w_c"])
    df["x"] = rng.normal(size=n)
    df["y"] = 3 * df.w_a - 2 * df.w_b + df.x * df.w_a * 4 + 0.05 * rng.standard_normal(n)
    return df


def oracle(train):
    return lambda held: 3 * held.w_a - 2 * held.w_b + held.x * held.w_a * 4


def anti(train):
    return lambda held: -(3 * held.w_a - 2 * held.w_b + held.x * held.w_a * 4)


def test_regret_at_1():
    assert rk.regret_at_1([1, 5, 3], [0, 2, 1]) == 0                 # ranks the best first
    assert rk.regret_at_1([1, 5, 3], [2, 0, 1]) == 4                 # ranks the worst first
    assert rk.regret_at_1([1, 5, 3], [7, 7, 7]) == pytest.approx(5 - 3)   # ties: the mean of the tied runs


def test_scores_order_an_oracle_a_floor_and_an_anti_oracle():
    df = runs()
    oof = rk.oof_predictions(df, "y", {"oracle": oracle, "equal": rk.constant_method("y"), "anti": anti,
                                       "ridge": rk.mixture_linear_method(["w_a", "w_b", "w_c"], "y")}, folds=4)
    assert (oof.groupby("method").size() == len(df)).all()
    s = rk.ranking_scores(oof, n_boot=200, reference="equal").set_index("method")
    assert s.loc["oracle", "spearman"] > 0.95 and s.loc["oracle", "regret_at_1"] < 0.05
    assert s.loc["equal", "spearman"] == 0 and s.loc["equal", "spearman_lo"] == 0
    assert s.loc["anti", "spearman"] < -0.95
    assert s.loc["oracle", "regret_at_1"] < s.loc["equal", "regret_at_1"] < s.loc["anti", "regret_at_1"]
    for m in s.index:                                               # percentile intervals: ordered, not
        for c in ("spearman", "regret_at_1"):                       # always around the point estimate
            assert s.loc[m, f"{c}_lo"] <= s.loc[m, f"{c}_hi"]
    assert s.loc["oracle", "regret_at_1_hi"] < s.loc["equal", "regret_at_1_lo"]
    assert s.loc["oracle", "spearman_vs_ref_lo"] > 0                # paired difference to the floor
    assert s.loc["ridge", "spearman"] > 0.3                         # the mixture alone explains part of y


def test_equal_is_zero_even_when_fold_means_differ():
    df = runs().sort_values("y").reset_index(drop=True)
    oof = rk.oof_predictions(df, "y", {"equal": rk.constant_method("y")}, folds=3)
    assert rk.ranking_scores(oof, n_boot=20).spearman.iloc[0] == 0


def test_bad_inputs():
    with pytest.raises(ConfigError, match="folds"):
        rk.folds_of(5, 6, 0)
    with pytest.raises(ConfigError, match="outcome"):
        rk.oof_predictions(runs(), "zzz", {"o": oracle})
    oof = rk.oof_predictions(runs(), "y", {"o": oracle}, folds=3)
    with pytest.raises(ConfigError, match="reference"):
        rk.ranking_scores(oof, n_boot=5, reference="nope")
