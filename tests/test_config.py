"""Config composition and the one-line errors for bad values, before any long work."""
import pytest

from causalmix.cli import main
from causalmix.config import compose
from causalmix.errors import ConfigError


def test_scales_compose_with_expected_sizes():
    smoke, cpu, paper = (compose([f"scale={s}"]) for s in ("smoke", "cpu", "paper"))
    assert smoke.sweep.n_runs < cpu.sweep.n_runs < paper.sweep.n_runs == 512
    assert cpu.sweep.n_runs >= 128
    assert smoke.pretrain.steps < cpu.pretrain.steps
    assert cpu.proxy.samples == cpu.data.pool_size          # interpolation follows overrides
    assert compose(["data.pool_size=400"]).proxy.samples == 400


def test_experiment_and_estimator_groups():
    assert compose(["estimator=linear"]).estimator.name == "linear"
    assert compose(["estimator=linear"]).estimator.cv == compose([]).estimator.cv


def test_target_model_is_at_least_4x_proxy():
    from causalmix.lm.model import GPT
    from causalmix.experiments.world import gpt_config
    for s in ("smoke", "cpu", "paper"):
        cfg = compose([f"scale={s}"])
        assert GPT(gpt_config(cfg, "target")).n_params() >= 4 * GPT(gpt_config(cfg, "proxy")).n_params()


@pytest.mark.parametrize("override, needle", [
    ("data.pool_size=0", "data.pool_size=0: expected a positive integer"),
    ("data.pool_size=-5", "data.pool_size=-5"),
    ("sweep.n_runs=2.5", "sweep.n_runs=2.5"),
    ("proxy.lr=0", "proxy.lr=0"),
    ("data.state.noise=[0.5,0.1]", "data.state.noise"),
    ("estimator.reference=klingon", "estimator.reference='klingon'"),
    ("policy.reference_mixture=best", "policy.reference_mixture='best'"),
    ("target.methods=[equal,oracle]", "['oracle']"),
    ("nosuchkey=1", "nosuchkey"),
    ("scale=huge", "scale"),
    ("data.split.pool=0.9", "data.split"),
    ("reproduce.jobs=0", "reproduce.jobs=0: expected a positive integer"),
    ("threads=0", "threads=0: expected a positive integer"),
])
def test_bad_values_fail_fast_with_one_line(override, needle):
    with pytest.raises(ConfigError) as e:
        compose([override])
    msg = str(e.value)
    assert needle in msg and "\n" not in msg


def test_cli_reports_config_errors_in_one_line(capsys):
    assert main(["sweep", "data.pool_size=0"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "data.pool_size=0" in err


def test_an_experiment_states_only_deltas():
    base, exp = compose([]), compose(["experiment=noisy_target"])
    assert list(exp.target.states) == ["noisy_text"] and exp.target.catalog.noisy_text.news.noise == 0.8
    assert exp.target.seeds == base.target.seeds and exp.target.catalog == base.target.catalog
    assert exp.sweep == base.sweep


def test_threads_default_to_two_or_the_environments(monkeypatch):
    """`make test` gives its workers one thread through CAUSALMIX_THREADS; an explicit override still wins, and a
    value that is not a number fails in one line."""
    monkeypatch.delenv("CAUSALMIX_THREADS", raising=False)
    assert compose([]).threads == 2
    monkeypatch.setenv("CAUSALMIX_THREADS", "1")
    assert compose([]).threads == 1 and compose(["threads=3"]).threads == 3
    monkeypatch.setenv("CAUSALMIX_THREADS", "many")
    with pytest.raises(ConfigError, match=r"^threads='many': expected a positive integer$"):
        compose([])
