"""The path a run's data takes: corpus -> pool -> covariates -> proxy run -> store, on real corpora."""
import numpy as np
import pandas as pd
import pytest

from causalmix.data import benchmarks, covariates, pool as pools
from causalmix.data.corrupt import distractors, math_near_miss, math_steps, ocr_noise, swap_words
from causalmix.data.covariates import math_ok
from causalmix.experiments.sweep import run_sweep, store_for
from causalmix.experiments.world import base_model, build_world


def test_math_near_miss_is_wrong_but_well_formed():
    rng = np.random.default_rng(0)
    right = "7+8=15;4+3+1=8;85"
    assert math_ok(right) == 1.0
    for _ in range(20):
        wrong = math_near_miss(right, rng)
        assert wrong != right and math_steps(wrong) is not None and math_ok(wrong) == 0.0


def test_text_corruptions_keep_words_or_shape():
    rng = np.random.default_rng(1)
    s = "And the Lord said unto Moses, Go in unto Pharaoh"
    assert sorted(swap_words(s, rng).split()) == sorted(s.split()) and swap_words(s, rng) != s
    assert ocr_noise(s, rng) != s
    d = distractors(s, "text", rng, other="something else entirely, from another passage of text")
    assert len(d) == 3 and s not in d


@pytest.fixture(scope="module")
def world_and_base(tmp_path_factory):
    from causalmix.config import compose
    from conftest import TINY
    cfg = compose(TINY + [f"paths.out={tmp_path_factory.mktemp('w')}"])
    return build_world(cfg), base_model(cfg, "proxy")


def test_splits_are_disjoint_and_benchmarks_come_from_bench(world_and_base):
    world, _ = world_and_base
    for d, s in world.splits.items():
        docs = {k: {x.doc for x in v} for k, v in s.items()}
        assert not docs["pool"] & docs["bench"] and not docs["pool"] & docs["pretrain"]
        bench_prompts = {x.prompt for x in s["bench"]}
        assert all(it.prompt in bench_prompts for it in world.benches[d])
        assert all(len(it.choices) == 4 and 0 <= it.answer < 4 for it in world.benches[d])


def test_noise_knob_moves_measured_quality(world_and_base):
    world, base = world_and_base
    rng = np.random.default_rng(0)
    clean = {d: {"amount": 1, "noise": 0.0, "dup": 0.0, "trunc": 0.0, "difficulty": 0.5} for d in world.domains}
    noisy = {d: {**k, "noise": 0.9, "dup": 0.6} for d, k in clean.items()}
    rows = []
    for st in (clean, noisy):
        p = pools.build(world.pool_samples(), st, 300, world.families, rng)
        rows.append(covariates.measure(base, p, world.families, world.vocabs, 80, 0.1, rng))
    drops = [rows[0][f"ws_{d}"] - rows[1][f"ws_{d}"] for d in world.domains]
    assert min(drops) > 0 and np.mean(drops) > 0.05, dict(zip(world.domains, drops))
    for d in world.domains:
        assert rows[1][f"dup_{d}"] > rows[0][f"dup_{d}"] + 0.2, d


def test_training_set_follows_the_mixture(world_and_base):
    world, _ = world_and_base
    rng = np.random.default_rng(0)
    st = pools.draw_state(world.domains, world.cfg.data.state, rng)
    p = pools.build(world.pool_samples(), st, 200, world.families, rng)
    mix = dict(zip(world.domains, rng.dirichlet(np.ones(len(world.domains)))))
    texts = pools.draw_training_set(p, mix, 500, rng)
    assert len(texts) == 500
    tags = {d: p[d][0].prompt.split(":")[0] for d in world.domains}
    for d in world.domains:
        share = np.mean([t.startswith(tags[d] + ":") for t in texts])
        assert abs(share - mix[d]) < 0.01


def test_sweep_store_resumes_and_is_deterministic(tiny_cfg):
    df = run_sweep(tiny_cfg)
    assert len(df) == 3 and df.run_id.tolist() == [0, 1, 2]
    need = {"config_hash", "seed", "avg_dev", "avg_margin", "tokens", "wall_seconds", "pool_ws", "w_math",
            "state_noise_math", "acc_math"}
    assert need <= set(df.columns)
    w = df[[c for c in df.columns if c.startswith("w_")]].sum(axis=1)
    assert np.allclose(w, 1)
    store = store_for(tiny_cfg)
    keep = store.file(0).stat().st_mtime_ns
    store.file(1).unlink()
    (store.dir / "run_00001.tmp999").write_text("half a record from a killed run")
    df2 = run_sweep(tiny_cfg)
    assert store.file(0).stat().st_mtime_ns == keep                      # finished runs are skipped
    pd.testing.assert_series_equal(df.avg_dev, df2.avg_dev)              # the rerun reproduces run 1
    mix, met = store.export(tiny_cfg.paths.out + "/export", list(tiny_cfg.data.domains))
    m, t = pd.read_csv(mix), pd.read_csv(met)
    assert m.columns[0] == t.columns[0] == "index" and len(m) == len(t) == 3
    assert set(tiny_cfg.data.domains) == set(m.columns[1:]) and "avg_dev" in t
    from causalmix.experiments.sweep import export
    from omegaconf import OmegaConf
    mix, met = export(OmegaConf.merge(tiny_cfg, {"sweep": {"n_runs": 2}}))   # a sweep's own runs, not the whole store's
    assert pd.read_csv(mix)["index"].tolist() == pd.read_csv(met)["index"].tolist() == [0, 1]
    assert pd.read_csv(met).columns.tolist() == t.columns.tolist()    # RunStore.export's format


def test_evaluate_scores_a_model_that_knows_the_answers_above_chance(world_and_base):
    """A model fine-tuned on the bench answers themselves must beat chance: the scorer is wired right."""
    world, base = world_and_base
    import copy
    from causalmix.lm.train import fit
    m = copy.deepcopy(base)
    texts = [it.prompt + it.choices[it.answer] for its in world.benches.values() for it in its] * 10
    before = benchmarks.evaluate(base, world.benches)["avg_dev"]
    fit(m, texts, epochs=6, batch_size=16, lr=3e-3)
    s = benchmarks.evaluate(m, world.benches)
    assert s["avg_dev"] > max(50, before + 15), (before, s)


def test_a_users_jsonl_domain_joins_by_config_alone(tmp_path):
    import json
    from causalmix.config import compose
    from causalmix.errors import ConfigError
    f = tmp_path / "recipes.jsonl"
    f.write_text("\n".join(json.dumps({"prompt": f"Step {i} of the recipe: ", "response": f"stir the pot {i} times"})
                           for i in range(60)))
    cfg = compose(["scale=smoke", "data.bench_items=5", f"+data.domains.recipes={{kind: jsonl, path: {f}}}"])
    world = build_world(cfg)
    assert "recipes" in world.domains and world.families["recipes"] == "text"
    assert len(world.benches["recipes"]) == 5
    f.write_text(f.read_text() + "\n{not json\n")
    with pytest.raises(ConfigError, match="recipes.jsonl:61"):
        build_world(cfg)


def test_the_knob_sweep_is_stored_and_reused_and_a_new_level_recomputes(tiny_cfg):
    from causalmix.experiments import analysis
    from causalmix.experiments.world import base_model, build_world
    world, base = build_world(tiny_cfg), base_model(tiny_cfg, "proxy")
    levels = {"noise": (0.0, 0.8)}
    first = analysis.knob_sweep(world, base, levels, seeds=1)
    store = analysis.knob_store(tiny_cfg, levels, 1)
    assert len(list(store.dir.glob("run_*.csv"))) == 2 and (store.dir / "manifest.json").exists()
    files = {f: f.stat().st_mtime_ns for f in store.dir.glob("run_*.csv")}
    again = analysis.knob_sweep(world, base, levels, seeds=1)
    pd.testing.assert_frame_equal(first, again)
    assert {f: f.stat().st_mtime_ns for f in store.dir.glob("run_*.csv")} == files     # read, not recomputed
    other = analysis.knob_store(tiny_cfg, {"noise": (0.0, 0.5)}, 1)
    assert other.dir != store.dir                                  # other levels, another key
