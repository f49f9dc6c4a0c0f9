"""The `causalmix` command as a user runs it: real processes, CSV in, CSV out, one-line errors."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

REGMIX = Path(__file__).resolve().parent / "data" / "regmix"   # the RegMix authors' runs (MIT), vendored


def cm(*args):
    return subprocess.run([sys.executable, "-m", "causalmix.cli", *map(str, args)], capture_output=True, text=True)


@pytest.fixture(scope="module")
def runs_csv(tmp_path_factory):
    """Synthetic proxy runs with a known state-dependent return: domain b helps only when x > 0.5."""
    d = tmp_path_factory.mktemp("cli")
    rng = np.random.default_rng(3)
    n = 200
    T = rng.dirichlet(np.ones(3), n)
    x = rng.uniform(size=n)
    y = 30 + 8 * np.where(x > 0.5, 1, -1) * (T[:, 1] - T[:, 0]) + rng.normal(0, 0.3, n)
    pd.DataFrame({"a": T[:, 0], "b": T[:, 1], "c": T[:, 2], "x": x, "z": rng.uniform(size=n), "y": y}) \
        .to_csv(d / "runs.csv", index=False)
    return d


def test_fit_then_recommend_moves_toward_the_positive_domain(runs_csv):
    d = runs_csv
    r = cm("fit", "--runs", d / "runs.csv", "--treatment", "a,b,c", "--covariates", "x,z", "--outcome", "y",
           "--out", d / "model", "--reference", "a")
    assert r.returncode == 0, r.stderr
    pd.DataFrame({"x": [0.1, 0.9], "z": [0.5, 0.5]}).to_csv(d / "state.csv", index=False)
    r = cm("recommend", "--model", d / "model", "--state", d / "state.csv", "--policy", "search",
           "--reference-mixture", "equal", "--radius", "0.2")
    assert r.returncode == 0, r.stderr
    rec = pd.read_csv(pd.io.common.StringIO(r.stdout))
    assert list(rec.columns) == ["a", "b", "c", "predicted_gain"]
    assert rec.b[1] > 1 / 3 + 0.05 and rec.b[0] < 1 / 3 - 0.05       # b up when x high, down when low
    assert rec.predicted_gain.min() > 0
    # the analytic policy's two steps: the scaled one moves no more share than the full radius, the same way
    moved = {}
    for step in ("full", "scaled"):
        r = cm("recommend", "--model", d / "model", "--state", d / "state.csv", "--reference-mixture", "equal",
               "--radius", "0.2", "--step", step)
        assert r.returncode == 0, r.stderr
        moved[step] = pd.read_csv(pd.io.common.StringIO(r.stdout))[["a", "b", "c"]].to_numpy() - 1 / 3
    tv = {k: 0.5 * abs(v).sum(axis=1) for k, v in moved.items()}
    assert (tv["full"] > 0.2 - 1e-9).all() and (tv["scaled"] <= tv["full"] + 1e-9).all()
    assert (moved["scaled"][:, 1] * moved["full"][:, 1] >= 0).all()


@pytest.mark.parametrize("mutate, needle", [
    (lambda df: df.drop(columns="z"), "z"),
    (lambda df: df.assign(a=df.a + 0.2), "sum"),
    (lambda df: df.head(5), "rows"),
    (lambda df: df.assign(y=df.y.where(df.index != 7)), "y"),
])
def test_fit_rejects_bad_runs_in_one_line(runs_csv, tmp_path, mutate, needle):
    bad = mutate(pd.read_csv(runs_csv / "runs.csv"))
    bad.to_csv(tmp_path / "bad.csv", index=False)
    r = cm("fit", "--runs", tmp_path / "bad.csv", "--treatment", "a,b,c", "--covariates", "x,z", "--outcome", "y",
           "--out", tmp_path / "m")
    assert r.returncode == 2 and needle in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize("size, floor", [("1m", 0.98), ("60m", 0.97)])
def test_regmix_cli_ranks_unseen_mixtures(tmp_path, size, floor):
    target = "metric/the_pile_pile_cc_val_loss"
    r = cm("regmix", "--ratios", REGMIX / "train_mixture_1m.csv", "--metrics", REGMIX / "train_pile_loss_1m.csv",
           "--target", target, "--predict", REGMIX / f"test_mixture_{size}.csv", "--out", tmp_path / "pred.csv")
    assert r.returncode == 0, r.stderr
    pred = pd.read_csv(tmp_path / "pred.csv")
    truth = pd.read_csv(REGMIX / f"test_pile_loss_{size}.csv")
    merged = pred.merge(truth, left_on="id", right_on="index")
    assert len(merged) == 256
    assert spearmanr(merged.iloc[:, 1], merged[target]).statistic >= floor


def test_sweep_rejects_bad_config_before_work(tmp_path):
    r = cm("sweep", "data.pool_size=-1", f"paths.out={tmp_path}")
    assert r.returncode == 2 and "data.pool_size=-1" in r.stderr and not any(tmp_path.iterdir())
