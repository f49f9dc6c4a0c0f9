"""Reading a fitted model (causal.interpret): econml's single-tree interpreters find the covariate the
returns really depend on, and the strategy text names it, with the domain the model moves share to."""
import re

import numpy as np
import pandas as pd
import pytest

from causalmix.causal import interpret as ci
from causalmix.causal.estimator import MixtureEffectModel
from causalmix.errors import ConfigError


@pytest.fixture(scope="module")
def fitted():
    """3 domains (reference c). Where news looks clean (ws_a > 0.8) moving share to a is worth +6, elsewhere -6;
    b is worth +1 everywhere; ws_b and junk change nothing."""
    rng = np.random.default_rng(0)
    n = 400
    df = pd.DataFrame({"ws_a": rng.uniform(0.6, 1.0, n), "ws_b": rng.uniform(0.6, 1.0, n), "junk": rng.normal(size=n)})
    W = rng.dirichlet(np.ones(3), size=n)
    df[["w_a", "w_b", "w_c"]] = W
    theta_a = np.where(df.ws_a > 0.8, 6.0, -6.0)
    df["y"] = 2 * df.junk + theta_a * df.w_a + 1.0 * df.w_b + 0.3 * rng.standard_normal(n)
    model = MixtureEffectModel(["w_a", "w_b", "w_c"], ["ws_a", "ws_b", "junk"], reference="w_c",
                               n_estimators=100, cv=2, min_samples_leaf=5, random_state=0).fit(df, "y")
    return model, df


def test_trees_split_on_the_covariate_that_matters(fitted):
    model, df = fitted
    it = ci.interpret(model, df, max_depth=2)
    assert it.domains == ["a", "b"] and it.reference == "c"
    for tree in (it.cate.tree_model_, it.policy.tree_model_):
        assert it.covariates[tree.tree_.feature[0]] == "ws_a"
        assert abs(tree.tree_.threshold[0] - 0.8) < 0.05
    leaves = ci.policy_leaves(it)
    assert leaves.states.sum() == len(df)
    clean = leaves[leaves["where"].str.contains("ws_a >")]
    noisy = leaves[leaves["where"].str.contains("ws_a ≤") & ~leaves["where"].str.contains("ws_a >")]
    assert set(clean.to) == {"a"}                              # clean a: move share to a
    assert "a" not in set(noisy.to)                            # noisy a: never to a
    cl = ci.cate_leaves(it)
    assert cl.states.sum() == len(df) and {"a", "b"} <= set(cl.columns)


def test_strategy_text_names_real_covariates_and_the_domains(fitted):
    model, df = fitted
    it = ci.interpret(model, df, max_depth=1)
    text = ci.strategy_text(it)
    joined = " ".join(text)
    assert "a looks cleaner (ws_a > 0.8" in joined             # the clean side, in words and in numbers
    assert "moves share from a" in joined and "to a" in joined  # and it moves share both ways
    assert re.search(r"across ws_a = 0\.(79|80)", joined)     # the CATE tree's first split
    assert "a's return rises with ws_a" in joined              # the Spearman reading
    named = {w.strip("(),.;:") for s in text for w in s.split() if "_" in w and not w.startswith("theta")}
    assert named and named <= set(model.covariates), named     # every covariate it names is a real one
    rho = ci.return_correlations(it)
    assert rho.loc["a", "ws_a"] > 0.7 and abs(rho.loc["b", "junk"]) < 0.5


def test_marginal_returns_is_one_row_per_state_domain_covariate(fitted):
    model, df = fitted
    it = ci.interpret(model, df.iloc[:50], max_depth=1)
    long = ci.marginal_returns(it)
    assert len(long) == 50 * 2 * 3
    assert set(long.covariate) == {"ws_a", "ws_b", "junk"} and set(long.domain) == {"a", "b"}


def test_draw_trees_makes_one_figure(fitted):
    import matplotlib
    matplotlib.use("Agg")
    model, df = fitted
    fig = ci.draw_trees(ci.interpret(model, df, max_depth=2))
    assert len(fig.axes) == 2


def test_too_few_states_is_one_line(fitted):
    model, df = fitted
    with pytest.raises(ConfigError, match="at least 4"):
        ci.interpret(model, df.iloc[:3])
    with pytest.raises(ConfigError, match="max_depth"):
        ci.interpret(model, df, max_depth=0)


def test_trees_read_marginal_returns_whatever_the_treatment_features(fitted):
    """With sqrt features econml's own per-feature effects are K coefficients of sqrt(w) (and with training-set
    terms more), not the K-1 returns the trees are labelled with: the trees must read theta itself."""
    _, df = fitted
    model = MixtureEffectModel(["w_a", "w_b", "w_c"], ["ws_a", "ws_b", "junk"], reference="w_c", features="sqrt",
                               n_estimators=100, cv=2, min_samples_leaf=5, random_state=0).fit(df, "y")
    assert np.asarray(model.est_.const_marginal_effect(df[model.covariates].to_numpy())).shape[1] == 3
    it = ci.interpret(model, df, max_depth=2)
    assert it.cate.tree_model_.n_outputs_ == 2 and it.cate.tree_model_.n_outputs_ == len(it.domains)
    assert it.covariates[it.cate.tree_model_.tree_.feature[0]] == "ws_a"
    root = it.cate.tree_model_.tree_.value[0].ravel()             # the root's value: the mean return per domain
    np.testing.assert_allclose(root, model.theta(df).mean(axis=0), rtol=1e-6)
