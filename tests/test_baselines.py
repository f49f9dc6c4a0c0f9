"""Baselines: Equal/Natural sanity, RegMix ranking quality on the RegMix authors' data, propose, errors."""

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

from causalmix.causal.baselines import (RegMix, equal_mixture, main_regmix, natural_mixture, read_regmix_csvs)
from causalmix.errors import ConfigError

REGMIX = Path(__file__).resolve().parent / "data" / "regmix"   # the RegMix authors' runs (MIT), vendored
TARGET = "metric/the_pile_pile_cc_val_loss"


def test_equal_and_natural():
    assert equal_mixture(["a", "b", "c", "d"]) == {d: 0.25 for d in "abcd"}
    assert natural_mixture({"a": 30, "b": 10, "c": 0}) == {"a": 0.75, "b": 0.25, "c": 0.0}
    with pytest.raises(ConfigError):
        equal_mixture([])
    with pytest.raises(ConfigError):
        natural_mixture({"a": 0, "b": 0})
    with pytest.raises(ConfigError):
        natural_mixture({"a": -1, "b": 2})


@pytest.mark.parametrize("scale,floor", [("1m", 0.98), ("60m", 0.97)])
def test_regmix_ranks_unseen_mixtures(tmp_path, scale, floor):
    out = tmp_path / "pred.csv"
    main_regmix(str(REGMIX / "train_mixture_1m.csv"), str(REGMIX / "train_pile_loss_1m.csv"), TARGET,
                predict=str(REGMIX / f"test_mixture_{scale}.csv"), out=str(out))
    pred = pd.read_csv(out)
    assert list(pred.columns) == ["id", f"{TARGET}_pred"]
    truth = pd.read_csv(REGMIX / f"test_pile_loss_{scale}.csv")
    both = pred.merge(truth, left_on="id", right_on=truth.columns[0])
    assert len(both) == len(truth) == 256
    rho = spearmanr(both[f"{TARGET}_pred"], both[TARGET])[0]
    print(f"RegMix Spearman on unseen {scale} mixtures: {rho:.4f}")
    assert rho >= floor


# RegMix's published 1B mixture for Pile-CC loss (sail-sg/regmix mixture_config/config_1b/regmix.yaml), main domains
PAPER_MIX = {"train_the_pile_pile_cc": 0.870, "train_the_pile_ubuntu_irc": 0.064,
             "train_the_pile_pubmed_abstracts": 0.024, "train_the_pile_wikipedia_en": 0.016}


def test_regmix_proposal_close_to_paper():
    X, y = read_regmix_csvs(REGMIX / "train_mixture_1m.csv", REGMIX / "train_pile_loss_1m.csv", TARGET)
    mix = RegMix().fit(X, y).propose(n_samples=20_000, top_k=100, minimize=True)
    assert abs(sum(mix.values()) - 1) < 1e-9 and min(mix.values()) >= 0
    assert max(mix, key=mix.get) == "train_the_pile_pile_cc"
    l1 = sum(abs(mix[d] - PAPER_MIX.get(d, 0.0)) for d in mix)
    print(f"L1 distance to the paper's RegMix mixture: {l1:.3f}")
    assert l1 < 0.25


def test_main_regmix_recommends_one_row(tmp_path):
    X, y, opt = _synthetic(n=60)
    ratios = X.copy()
    ratios.insert(0, "index", range(len(X)))
    ratios.to_csv(tmp_path / "r.csv", index=False)
    pd.DataFrame({"index": range(len(X)), "score": y}).to_csv(tmp_path / "m.csv", index=False)
    rows = {}
    for minimize in (False, True):
        buf = io.StringIO()
        main_regmix(str(tmp_path / "r.csv"), str(tmp_path / "m.csv"), "score", minimize=minimize, stdout=buf)
        lines = buf.getvalue().strip().splitlines()
        assert len(lines) == 2 and lines[0] == "a,b,c,d"
        rows[minimize] = np.array([float(v) for v in lines[1].split(",")])
        assert abs(rows[minimize].sum() - 1) < 1e-4 and rows[minimize].min() >= 0
    assert np.abs(rows[False] - opt).sum() < np.abs(rows[True] - opt).sum()


def _synthetic(n=400, seed=0):
    """Score peaks at a known interior mixture; RegMix should find it."""
    rng = np.random.default_rng(seed)
    domains = ["a", "b", "c", "d"]
    opt = np.array([0.4, 0.3, 0.2, 0.1])
    X = rng.dirichlet(np.ones(4), n)
    y = -((X - opt) ** 2).sum(axis=1)
    return pd.DataFrame(X, columns=domains), y, opt


def test_propose_finds_known_optimum_and_minimize_flips():
    X, y, opt = _synthetic()
    reg = RegMix(n_estimators=300, learning_rate=0.05).fit(X, y)
    best = reg.propose(n_samples=20_000, top_k=100, seed=1)
    w = np.array([best[d] for d in X.columns])
    assert abs(w.sum() - 1) < 1e-9 and (w >= 0).all()
    assert np.abs(w - opt).max() < 0.08, w
    worst = reg.propose(n_samples=20_000, top_k=100, minimize=True, seed=1)
    v = np.array([worst[d] for d in X.columns])
    assert abs(v.sum() - 1) < 1e-9 and (v >= 0).all()
    # minimising a peaked score pushes away from the optimum (towards the vertices)
    assert np.abs(v - opt).sum() > np.abs(w - opt).sum() + 0.2
    assert reg.predict(pd.DataFrame([w], columns=X.columns))[0] > reg.predict(pd.DataFrame([v], columns=X.columns))[0]


def test_propose_with_prior_respects_zero_domains():
    X, y, _ = _synthetic()
    reg = RegMix(n_estimators=100, learning_rate=0.1).fit(X, y)
    best = reg.propose(prior={"a": 0.5, "b": 0.3, "c": 0.2}, n_samples=5_000, top_k=50)
    assert best["d"] == 0.0 and abs(sum(best.values()) - 1) < 1e-9
    with pytest.raises(ConfigError, match="unknown domains"):
        reg.propose(prior={"zzz": 1.0})
    with pytest.raises(ConfigError, match="lack domain columns"):
        reg.predict(X.drop(columns=["a"]))


def _write(tmp_path, n=10, *, ids=None, target="loss", bad_sum=False, nan=False):
    rng = np.random.default_rng(0)
    W = np.round(rng.dirichlet(np.ones(3), n), 3)
    if bad_sum:
        W[2, 0] += 0.2
    ratios = pd.DataFrame(W, columns=["x", "y", "z"])
    ratios.insert(0, "index", range(1, n + 1))
    metrics = pd.DataFrame({"index": ids if ids is not None else range(1, n + 1), target: rng.normal(size=n)})
    if nan:
        metrics.loc[3, target] = np.nan
    r, m = tmp_path / "r.csv", tmp_path / "m.csv"
    ratios.to_csv(r, index=False)
    metrics.to_csv(m, index=False)
    return r, m


def test_read_regmix_csvs_ok_and_aligned(tmp_path):
    r, m = _write(tmp_path, ids=list(range(10, 0, -1)))  # same ids, other order
    X, y = read_regmix_csvs(r, m, "loss")
    assert list(X.columns) == ["x", "y", "z"] and len(X) == len(y) == 10
    assert (X.index == y.index).all()
    assert y.loc[1] == pd.read_csv(m).set_index("index").loc[1, "loss"]


@pytest.mark.parametrize("kw,target,match", [
    ({}, "nope", "available: \\['loss'\\]"),
    ({"ids": list(range(2, 12))}, "loss", "ids differ"),
    ({"bad_sum": True}, "loss", "sum to"),
    ({"nan": True}, "loss", "NaN"),
    ({"n": 5}, "loss", "at least 8"),
])
def test_read_regmix_csvs_errors(tmp_path, kw, target, match):
    r, m = _write(tmp_path, **kw)
    with pytest.raises(ConfigError, match=match):
        read_regmix_csvs(r, m, target)


def test_read_regmix_csvs_missing_file(tmp_path):
    r, m = _write(tmp_path)
    with pytest.raises(ConfigError, match="not found"):
        read_regmix_csvs(tmp_path / "missing.csv", m, "loss")
