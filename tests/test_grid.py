"""The Grid baseline: its points, proxy trials on the target pool (stored and reused), and its pick."""
import pandas as pd
import pytest

from causalmix.config import compose
from causalmix.errors import ConfigError
from causalmix.experiments import grid
from causalmix.experiments import target as tg
from causalmix.experiments.world import base_model, build_world


def test_points_are_equal_and_each_domain_tilted():
    cfg = compose([])
    domains = list(cfg.data.domains)
    pts = grid.points(cfg, domains)
    assert list(pts) == ["equal", *domains]
    for name, w in pts.items():
        assert sum(w.values()) == pytest.approx(1.0)
        if name != "equal":
            assert w[name] == cfg.baselines.grid.tilt and max(v for d, v in w.items() if d != name) < w[name]
    with pytest.raises(ConfigError, match=r"baselines.grid.tilt=0.1: expected a number in \(0.142857, 1\)"):
        compose(["baselines.grid.tilt=0.1"])


def test_pick_takes_the_best_mean_over_seeds():
    cfg = compose([])
    rows = [{"point": p, "seed": s, "w_a": w, "w_b": 1 - w, "avg_dev": y}
            for p, w, ys in (("equal", 0.5, (40, 42)), ("a", 0.4, (45, 39)), ("b", 0.6, (41, 44)))
            for s, y in enumerate(ys)]
    best, mix = grid.pick(cfg, pd.DataFrame(rows))
    assert best == "b" and mix == {"a": 0.6, "b": 0.4}


def test_trials_run_every_point_on_the_target_pool_and_are_reused(tiny_cfg, monkeypatch):
    cfg = compose([*tiny_cfg_overrides(tiny_cfg), "baselines.grid.seeds=1"])
    world, base = build_world(cfg), base_model(cfg, "proxy", log=lambda *_: None)
    _, pool = tg.target_pool(world, "noisy_text")
    first = grid.trials(world, base, "noisy_text", pool, log=lambda *_: None)
    assert len(first) == len(world.domains) + 1 and set(first.point) == {"equal", *world.domains}
    assert (first.state == "noisy_text").all() and first.avg_dev.notna().all()
    monkeypatch.setattr(grid, "finetune_and_score_many", lambda *a, **k: pytest.fail("a stored grid run was recomputed"))
    again = grid.trials(world, base, "noisy_text", pool, log=lambda *_: None)
    assert sorted(again.run_id) == sorted(first.run_id)
    assert grid.pick(cfg, again) == grid.pick(cfg, first)


def tiny_cfg_overrides(cfg):
    from tests.conftest import TINY
    return [*TINY, f"paths.out={cfg.paths.out}"]


def test_rank_transfer_matches_points_to_target_runs_by_mixture():
    cfg = compose([])
    mixes = {"equal": (0.5, 0.5), "a": (0.8, 0.2), "b": (0.2, 0.8), "c": (0.65, 0.35)}
    trials = pd.DataFrame([{"point": p, "seed": s, "w_a": wa, "w_b": wb, "avg_dev": y + s}
                           for (p, (wa, wb)), y in zip(mixes.items(), (40, 44, 38, 42)) for s in range(2)])
    # target runs named differently (the oracle's "grid:a", a method's pick), ranked the same but for a swap
    target = pd.DataFrame([{"method": m, "seed": s, "w_a": wa, "w_b": wb, "avg_dev": y}
                           for m, (wa, wb), y in (("equal", mixes["equal"], 45), ("grid:a", mixes["a"], 47),
                                                  ("grid:b", mixes["b"], 44), ("natural", mixes["c"], 48))
                           for s in range(3)])
    rt = grid.rank_transfer(cfg, trials, target).set_index("point")
    assert rt.loc["a", "proxy"] == 44.5 and rt.loc["a", "target"] == 47 and rt.loc["a", "target runs"] == 3
    assert rt.attrs["points"] == 4 and rt.attrs["rho"] == pytest.approx(0.8)
    assert rt.attrs["same_best"] is False                         # proxies' best is a, the targets' is c
