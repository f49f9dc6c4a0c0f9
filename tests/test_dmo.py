"""The DMO-style baseline: per-domain power laws recover a known law, and the proposal is its optimum."""
import numpy as np
import pandas as pd
import pytest

from causalmix.causal.dmo import EPS, DMOLaw
from causalmix.config import compose
from causalmix.errors import ConfigError

TRUE = {"a": (30.0, 20.0, 0.5), "b": (25.0, 10.0, 0.8), "c": (40.0, 5.0, 0.3)}


def _runs(n=200, noise=0.05, seed=0):
    rng = np.random.default_rng(seed)
    W = pd.DataFrame(rng.dirichlet(np.ones(3), n), columns=list(TRUE))
    Y = pd.DataFrame({d: a + b * (W[d] + EPS) ** c + rng.normal(0, noise, n) for d, (a, b, c) in TRUE.items()})
    return W, Y


def test_fit_recovers_a_known_law():
    W, Y = _runs()
    law = DMOLaw().fit(W, Y)
    for d, (a, b, c) in TRUE.items():
        fa, fb, fc = law.params[d]
        assert fc == pytest.approx(c, abs=0.05), d
        assert fb == pytest.approx(b, rel=0.1), d
        assert law.r2[d] > 0.99
    assert np.allclose(law.predict(W), Y.mean(axis=1), atol=0.1)


def test_propose_is_the_laws_optimum_on_the_simplex():
    W, Y = _runs(noise=0.0)
    law = DMOLaw().fit(W, Y)
    w = law.propose(floor=0.0)
    assert sum(w.values()) == pytest.approx(1.0)
    # KKT: at an interior optimum every domain's marginal return b c (w+eps)^(c-1) is the same
    marg = [b * c * (w[d] + EPS) ** (c - 1) for d, (a, b, c) in law.params.items()]
    assert np.ptp(marg) < 1e-3 * np.mean(marg)
    # and no random mixture beats it
    rand = pd.DataFrame(np.random.default_rng(1).dirichlet(np.ones(3), 5000), columns=list(TRUE))
    assert law.predict(pd.DataFrame([w])).item() >= law.predict(rand).max() - 1e-9


def test_propose_keeps_the_floor_and_says_when_it_cannot():
    W, Y = _runs()
    law = DMOLaw().fit(W, Y)
    w = law.propose(floor=0.2)
    assert min(w.values()) >= 0.2 - 1e-9
    with pytest.raises(ConfigError, match=r"floor=0.5; expected 0 <= floor < 1/3"):
        law.propose(floor=0.5)


def test_bad_input_is_one_clear_line():
    W, Y = _runs()
    with pytest.raises(ConfigError, match=r"no metric column for domains \['c'\]"):
        DMOLaw().fit(W, Y.drop(columns="c"))
    with pytest.raises(ConfigError, match=r"target.methods has \['magic'\]: expected a subset of \[.*'dmo'"):
        compose(["target.methods=[equal,magic]"])
