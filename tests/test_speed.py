"""Speed-ups that must not change what is computed: prompt-once scoring, bf16 autocast, stacked proxies."""
import copy

import numpy as np
import pandas as pd
import pytest
import torch

from causalmix.experiments import proxy
from causalmix.errors import ConfigError
from causalmix.lm.model import GPT, GPTConfig
from causalmix.lm.train import char_stats, choice_logprobs, fit, fit_many

ABC = "abcdefghij klmnop\n.,"


def _texts(rng, n, lo, hi):
    return ["".join(rng.choice(list(ABC), int(rng.integers(lo, hi)))) for _ in range(n)]


@pytest.fixture
def small():
    torch.manual_seed(0)
    return GPT(GPTConfig(n_layer=2, n_head=4, n_embd=32, context=32)).eval()


def test_prompt_once_scoring_matches_per_choice_scoring(small):
    """Each prompt run once (its keys and values reused by every choice) gives the per-choice log-probs of
    char_stats(prompt + choice) to 1e-4 per character in fp32, also where prompt + choice overflows the
    context, the prompt fills it, or is empty."""
    rng = np.random.default_rng(0)
    prompts = _texts(rng, 50, 1, 40) + ["", "x", "y" * 31, "z" * 32, "w" * 40]
    choices = [tuple(_texts(rng, int(rng.integers(1, 5)), 1, 30)) for _ in prompts]
    got = choice_logprobs(small, prompts, choices, tokens=300)   # small batches: many of them
    flat = [(p, c) for p, cs in zip(prompts, choices) for c in cs]
    want = char_stats(small, [p + c for p, c in flat], [len(p) for p, _ in flat])
    assert [len(g) for g in got] == [len(cs) for cs in choices]
    for (lp, _), g in zip(want, [g for gs in got for g in gs]):
        assert g.shape == lp.shape
        np.testing.assert_allclose(g, lp, atol=1e-4, rtol=0)


def test_bf16_scoring_is_close_and_bad_precision_is_one_line(small):
    rng = np.random.default_rng(1)
    prompts = _texts(rng, 20, 1, 20)
    choices = [tuple(_texts(rng, 4, 1, 12)) for _ in prompts]
    a = np.concatenate([x for xs in choice_logprobs(small, prompts, choices) for x in xs])
    b = np.concatenate([x for xs in choice_logprobs(small, prompts, choices, precision="bf16") for x in xs])
    assert np.abs(a - b).max() < 0.1     # bf16 keeps ~3 significant digits of each logit
    with pytest.raises(ConfigError, match="precision='fp16'"):
        choice_logprobs(small, prompts, choices, precision="fp16")


def test_stacked_training_matches_separate_models(small):
    """Three models trained as one Stack get the losses, token counts and weights that fit() gives each
    alone, with their own data order, seed, gradient clipping and AdamW state: fp32 to 1e-5."""
    rng = np.random.default_rng(2)
    texts = [_texts(rng, 40, 2, 40) for _ in range(3)]
    kw = dict(epochs=2.0, batch_size=8, lr=3e-3, weight_decay=0.01)
    alone = [copy.deepcopy(small) for _ in texts]
    want = [fit(m, t, seed=s, **kw) for m, t, s in zip(alone, texts, [5, 6, 7])]
    together = [copy.deepcopy(small) for _ in texts]
    got = fit_many(together, texts, [5, 6, 7], **kw)
    for w, g, a, b in zip(want, got, alone, together):
        assert (g["steps"], g["tokens"]) == (w["steps"], w["tokens"])
        assert g["final_loss"] == pytest.approx(w["final_loss"], abs=1e-5)
        for pa, pb in zip(a.parameters(), b.parameters()):
            torch.testing.assert_close(pb, pa, atol=1e-5, rtol=0)
    assert not all(torch.equal(pa, pb) for pa, pb in zip(alone[0].parameters(), alone[1].parameters()))
    with pytest.raises(ValueError, match="one step count"):
        fit_many([copy.deepcopy(small) for _ in range(2)], [texts[0], texts[1][:20]], [0, 1], **kw)


def test_run_many_gives_the_records_of_separate_runs(tmp_path):
    """proxy.run_many (one stacked model) = [proxy.run(i) ...] in fp32: same draws exactly, scores to 1e-4."""
    from causalmix.config import compose
    from causalmix.experiments.world import base_model, build_world
    from conftest import TINY
    cfg = compose(TINY + [f"paths.out={tmp_path / 'out'}", "proxy.precision=fp32"])
    world, base = build_world(cfg), base_model(cfg, "proxy", log=lambda *_: None)
    ids = [0, 1, 2]
    want = [proxy.run(world, base, i) for i in ids]
    got = proxy.run_many(world, base, ids)
    for w, g in zip(want, got):
        assert list(g) == list(w)
        for k in w:
            if k == "wall_seconds":
                continue
            if k.startswith("acc_") or k == "avg_dev":      # a choice flips only on a near-tie
                assert abs(g[k] - w[k]) <= 100 / len(world.benches["news"]) + 1e-9, k
            else:
                assert g[k] == pytest.approx(w[k], abs=1e-4), k


def test_sweep_trains_batches_and_writes_every_run(tmp_path):
    """sweep.batch=2 over 3 runs: a batch of 2, then 1; every run lands in the store, as with batch=1."""
    from causalmix.config import compose
    from causalmix.experiments.sweep import run_sweep
    from conftest import TINY
    cfg = compose(TINY + [f"paths.out={tmp_path / 'out'}", "sweep.batch=2"])
    df = run_sweep(cfg, log=lambda *_: None)
    assert sorted(df.run_id) == [0, 1, 2] and df.avg_dev.notna().all()


def test_bench_prints_one_json_with_each_stage(tiny_cfg, capsys):
    import json

    from causalmix.experiments.bench import main
    main(["scale=smoke", "data.pool_size=60", "data.bench_items=8", "data.covariates.score_samples=40",
          "proxy.epochs=0.5", "sweep.batch=2", "+bench.reps=2", "+bench.target_steps=2", "+bench.fit_runs=64",
          f"paths.out={tiny_cfg.paths.out}"])
    out = json.loads(capsys.readouterr().out)
    assert 0 < out["proxy_run"]["mfu"] < 1 and out["peak_flops"]["bf16"] > 0
    assert out["bf16_matmul"] in ("native", "fp32") and out["cpu_capability"]    # which bf16 kernel was measured
    for stage in ("train", "score", "covariates"):
        assert out["proxy"][stage]["chars_per_s"] > 0 and "mfu" in out["proxy"][stage]
    assert out["target"]["train"]["flops_per_s"] > 0 and out["fit_policy"]["runs"] == 64
    assert out["book_stages"]["seconds"] is None and out["book_stages"]["reason"]
    assert out["peak_memory_mb"] > 0


def test_a_runs_numbers_do_not_depend_on_which_runs_were_missing(tmp_path):
    """Blocks are fixed: a sweep resumed with holes recomputes whole blocks, so its runs equal, to the bit,
    those of a sweep that ran straight through (bf16 batched training rounds differently per batch)."""
    from causalmix.config import compose
    from causalmix.experiments.sweep import blocks, run_sweep, store_for
    from conftest import TINY
    over = [o for o in TINY if not o.startswith("sweep.n_runs=")] + ["sweep.n_runs=4", "sweep.batch=2"]
    a = compose(over + [f"paths.out={tmp_path / 'a'}"])
    assert blocks(a, [1, 3]) == {0: [0, 1], 2: [2, 3]}
    straight = run_sweep(a, log=lambda *_: None)
    b = compose(over + [f"paths.out={tmp_path / 'b'}"])
    run_sweep(b, run_ids=[0, 3], log=lambda *_: None)      # a worker that happened to do runs 0 and 3 first
    store = store_for(b)
    assert sorted(int(f.stem[4:]) for f in store.dir.glob("run_*.csv")) == [0, 1, 2, 3]   # whole blocks
    store.file(1).unlink()                                  # a hole, as a kill inside a block's writes leaves
    resumed = run_sweep(b, log=lambda *_: None)
    drop = ["wall_seconds", "worker"]
    pd.testing.assert_frame_equal(straight.drop(columns=drop), resumed.drop(columns=drop), check_exact=True)


def test_bench_scaling_measures_time_against_pool_size_and_run_count(tiny_cfg, capsys):
    import json

    from causalmix.experiments.bench import main
    main(["scale=smoke", "data.pool_size=40", "data.bench_items=8", "data.covariates.score_samples=40",
          "proxy.epochs=0.5", "sweep.batch=2", "+bench.only_scaling=true", "+bench.scaling_runs=[16,32]", f"paths.out={tiny_cfg.paths.out}"])
    out = json.loads(capsys.readouterr().out)
    pool = out["scaling"]["pool"]
    assert [p["pool_size"] for p in pool] == [10, 20, 40, 80]
    assert [p["steps"] for p in pool] == sorted(p["steps"] for p in pool) and pool[0]["steps"] < pool[-1]["steps"]
    assert all(p["run_seconds"] > 0 for p in pool)
    assert [f["runs"] for f in out["scaling"]["fit_policy"]] == [16, 32]
    assert "proxy" not in out   # only the scaling part was asked for
