"""The habit design (sweep.design=habit): real proxy runs whose mixture follows the measured pool, on the same
pools as the randomised sweep, in a store of their own."""
import numpy as np
import pytest
from omegaconf import OmegaConf

from causalmix.config import compose
from causalmix.experiments import sweep as sw
from causalmix.experiments.habit import habit_mixture


def test_habit_mixtures_tilt_to_clean_domains_and_gamma_zero_is_the_randomised_draw():
    cfg = compose([])
    domains = list(cfg.data.domains)
    rng = np.random.default_rng(0)
    Z = rng.normal(size=(3000, len(domains)))
    natural = {d: 1 / len(domains) for d in domains}
    W = np.array([list(habit_mixture(cfg, domains, natural, z, rng).values()) for z in Z])
    corr = np.mean([np.corrcoef(W[:, j], Z[:, j])[0, 1] for j in range(len(domains))])
    assert corr > 0.3, corr
    flat = OmegaConf.merge(cfg, {"sweep": {"habit": {"confounding": 0.0}}})
    W0 = np.array([list(habit_mixture(flat, domains, natural, z, rng).values()) for z in Z])
    corr0 = np.mean([np.corrcoef(W0[:, j], Z[:, j])[0, 1] for j in range(len(domains))])
    assert abs(corr0) < 0.05, corr0
    # gamma = 0 draws from the randomised design's Dirichlet: mean share 1/K, same spread
    np.testing.assert_allclose(W0.mean(axis=0), 1 / len(domains), atol=0.01)


def test_the_design_keys_only_the_habit_store():
    cfg = compose([])
    assert "sweep.design" not in sw.sweep_spec(cfg)            # randomised stores keep their names
    habit = compose(["sweep.design=habit"])
    assert sw.sweep_hash(habit) != sw.sweep_hash(cfg)
    assert sw.sweep_hash(compose(["sweep.habit.confounding=1.0"])) == sw.sweep_hash(cfg)
    assert sw.sweep_hash(compose(["sweep.design=habit", "sweep.habit.confounding=1.0"])) != sw.sweep_hash(habit)
    assert "experiments/habit.py" in " ".join(sw.sweep_manifest(habit)["code"])


@pytest.mark.parametrize("override, message", [
    ("sweep.design=observed", "sweep.design='observed': expected randomised or habit"),
    ("sweep.habit.confounding=-1", "sweep.habit.confounding=-1: expected a number >= 0"),
    ("analyses.observational.real_runs=12", "analyses.observational.real_runs=12: expected an integer >= 20"),
])
def test_bad_design_values_are_one_line(override, message):
    from causalmix.errors import ConfigError
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        compose([override])


def test_a_habit_run_trains_on_the_randomised_runs_pool_with_its_own_mixture(tiny_cfg):
    """Same state, covariates and training seed as randomised run i; another mixture, tilted by the pool."""
    from causalmix.experiments.habit import calibration
    rand = sw.run_sweep(tiny_cfg, log=lambda *_: None)
    hcfg = OmegaConf.merge(tiny_cfg, {"sweep": {"design": "habit", "habit": {"calibration": 4, "confounding": 4.0}}})
    habit = sw.run_sweep(hcfg, log=lambda *_: None)
    assert sw.store_for(hcfg).dir != sw.store_for(tiny_cfg).dir and len(habit) == len(rand) == 3
    state = [c for c in rand.columns if c.startswith(("state_", "ws_", "nl_", "share_"))]
    np.testing.assert_allclose(habit.sort_values("run_id")[state].to_numpy(float),
                               rand.sort_values("run_id")[state].to_numpy(float))
    w = [c for c in rand.columns if c.startswith("w_")]
    assert not np.allclose(habit.sort_values("run_id")[w].to_numpy(), rand.sort_values("run_id")[w].to_numpy())
    np.testing.assert_allclose(habit[w].sum(axis=1), 1.0)
    assert {"acc_news", "avg_dev"} <= set(habit.columns)
    # resuming reads back; nothing is retrained
    again = sw.run_sweep(hcfg, log=lambda *_: None)
    np.testing.assert_allclose(again.sort_values("run_id").avg_dev, habit.sort_values("run_id").avg_dev)
    from causalmix.experiments.world import base_model, build_world
    m, s = calibration(build_world(hcfg), base_model(hcfg, "proxy", log=lambda *_: None))
    assert m.shape == s.shape == (len(w),) and (s > 0).all()
