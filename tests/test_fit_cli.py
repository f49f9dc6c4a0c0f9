"""main_fit + main_recommend round trip through files."""

import io

import numpy as np
import pandas as pd
import pytest

from causalmix.errors import ConfigError
from causalmix.causal.estimator import main_fit
from causalmix.causal.policy import main_recommend


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    d = tmp_path_factory.mktemp("fit")
    rng = np.random.default_rng(0)
    n = 150
    X = rng.uniform(size=(n, 2))
    T = rng.dirichlet(np.ones(4), size=n)
    # loss: lower is better; domain "code" lowers loss when x1 is high, raises it when low
    loss = 3 - X[:, 1] - np.where(X[:, 0] > 0.5, 2.0, -2.0) * T[:, 1] + 0.05 * rng.normal(size=n)
    df = pd.DataFrame(T, columns=["web", "code", "math", "chat"]).assign(x1=X[:, 0], x2=X[:, 1], loss=loss)
    df.to_csv(d / "runs.csv", index=False)
    pd.DataFrame({"x1": [0.1, 0.9], "x2": [0.5, 0.5], "extra": [0, 0]}).to_csv(d / "state.csv", index=False)
    buf = io.StringIO()
    main_fit(str(d / "runs.csv"), "web,code,math,chat", "x1, x2", "loss", str(d / "model"),
             estimator="causal_forest", reference="web", minimize=True, file=buf, n_estimators=100)
    return d, buf.getvalue()


def test_fit_writes_model_and_summary(fitted):
    d, text = fitted
    assert (d / "model" / "meta.json").is_file() and (d / "model" / "estimator.joblib").is_file()
    assert "150 runs" in text and "reference 'web'" in text and "t:code=" in text
    for dom in ("code", "math", "chat"):
        assert f"{dom}:" in text


@pytest.mark.parametrize("policy", ["analytic", "search"])
def test_recommend_round_trip(fitted, policy, tmp_path):
    d, _ = fitted
    buf = io.StringIO()
    main_recommend(str(d / "model"), str(d / "state.csv"), policy=policy, radius=0.2, out=buf)
    rec = pd.read_csv(io.StringIO(buf.getvalue()))
    assert list(rec.columns) == ["web", "code", "math", "chat", "predicted_gain"] and len(rec) == 2
    W = rec[["web", "code", "math", "chat"]].to_numpy()
    np.testing.assert_allclose(W.sum(axis=1), 1, atol=1e-9)
    assert rec.code[0] < 0.25 < rec.code[1]  # minimize=True: code helps (lowers loss) only when x1 high
    assert (rec.predicted_gain >= 0).all()
    # reference mixture from a one-row CSV, output to a path
    pd.DataFrame([{"web": 0.4, "code": 0.2, "math": 0.2, "chat": 0.2}]).to_csv(tmp_path / "ref.csv", index=False)
    main_recommend(str(d / "model"), str(d / "state.csv"), policy=policy, radius=0.1,
                   reference_mixture=str(tmp_path / "ref.csv"), out=str(tmp_path / "rec.csv"))
    rec2 = pd.read_csv(tmp_path / "rec.csv")
    dist = 0.5 * np.abs(rec2[["web", "code", "math", "chat"]].to_numpy() - [0.4, 0.2, 0.2, 0.2]).sum(axis=1)
    assert (dist <= 0.1 + 1e-9).all()


def test_cli_errors(fitted, tmp_path):
    d, _ = fitted
    pd.DataFrame({"x1": [0.3]}).to_csv(tmp_path / "bad_state.csv", index=False)
    with pytest.raises(ConfigError, match="lacks covariate column 'x2'"):
        main_recommend(str(d / "model"), str(tmp_path / "bad_state.csv"))
    with pytest.raises(ConfigError, match="no fitted model"):
        main_recommend(str(tmp_path / "nothing"), str(d / "state.csv"))
    with pytest.raises(ConfigError, match="not found"):
        main_fit(str(tmp_path / "missing.csv"), "a,b", "x", "y", str(tmp_path / "m"))
    with pytest.raises(ConfigError, match="column 'x3' not in runs table"):
        main_fit(str(d / "runs.csv"), "web,code,math,chat", "x1,x3", "loss", str(tmp_path / "m"))
    pd.DataFrame([{"web": 0.5, "code": 0.5}]).to_csv(tmp_path / "ref.csv", index=False)
    with pytest.raises(ConfigError, match="lacks column 'math'"):
        main_recommend(str(d / "model"), str(d / "state.csv"), reference_mixture=str(tmp_path / "ref.csv"))
