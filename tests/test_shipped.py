"""The results that ship with the repo (outputs/cpu) are current, and recompute to the same numbers.

`make book` on a fresh clone reuses the committed run stores of the default cpu config. That is only
honest if (a) they sit under the key the current config and code compute, with nothing stale beside
them, and (b) two runs chosen at random, recomputed here, give the shipped numbers within the tolerance
that `causalmix.experiments.shipped` states (a shipped run was trained in a stacked block; the check
retrains it alone, which rounds differently in bf16)."""
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from causalmix.config import REPO_ROOT, compose
from causalmix.experiments import power
from causalmix.experiments import shipped
from causalmix.experiments.sweep import store_for
from causalmix.experiments.grid import grid_store
from causalmix.experiments.target import target_store
from causalmix.experiments.world import base_file

SHIPPED = REPO_ROOT / "outputs" / "cpu"


@pytest.fixture(scope="module")
def cfg():
    return compose([f"paths.out={SHIPPED}"])


def _tracked_stores(folder: Path) -> set[Path]:
    """The store folders (those holding run files) that git tracks under `folder`."""
    import subprocess
    out = subprocess.run(["git", "ls-files", str(folder.relative_to(REPO_ROOT))], cwd=REPO_ROOT,
                         capture_output=True, text=True, check=True).stdout.split()
    return {(REPO_ROOT / f).parent for f in out if Path(f).name.startswith("run_")}


@pytest.mark.parametrize("kind", ["runs", "power", "retest", "target", "grid", "knobs", "long_cot/runs",
                                  "long_cot/grid", "long_cot/target"])
def test_shipped_stores_are_the_ones_this_code_computes(cfg, kind):
    from causalmix.experiments import longcot as lc
    from causalmix.experiments.analysis import knob_store
    draws = lambda c: {store_for(OmegaConf.merge(c, {"seed": int(x)})).dir.resolve() for x in c.power.base_seeds}  # noqa: E731
    store = {"runs": store_for, "power": power.floor_store, "retest": power.retest_store, "target": target_store,
             "grid": grid_store,
             "knobs": lambda c: knob_store(c, c.knobs.levels, c.knobs.seeds),
             **{f"long_cot/{w}": (lambda c, w=w: lc.store(lc.config(c), w)) for w in ("runs", "grid", "target")}}[kind](cfg)
    tracked = _tracked_stores(SHIPPED / kind)
    assert tracked, f"nothing shipped under outputs/cpu/{kind}: expected the default cpu config's store"
    habit = store_for(OmegaConf.merge(cfg, {"sweep": {"design": "habit"}})).dir.resolve()   # chapter 5's habit sweep
    expected = {store.dir.resolve()} | (draws(cfg) | {habit} if kind == "runs" else set())  # + chapter 2's other draws
    assert tracked == expected, (
        f"outputs/cpu/{kind} ships {sorted(str(p.relative_to(REPO_ROOT)) for p in tracked)} but this config and "
        f"code key the store as {store.dir.relative_to(REPO_ROOT)}: rerun `make book` and commit the new store "
        "(and remove the stale one)")


def test_shipped_bases_are_the_ones_this_code_keys(cfg):
    """The shipped runs were trained on these bases; a clone must load them, not pretrain its own draw."""
    import subprocess
    tracked = set(subprocess.run(["git", "ls-files", ".cache/base"], cwd=REPO_ROOT, capture_output=True,
                                 text=True, check=True).stdout.split())
    keyed = set()
    for c, size in [(cfg, "proxy"), (cfg, "target"),
                    *[(OmegaConf.merge(cfg, {"seed": int(x)}), "proxy") for x in cfg.power.base_seeds]]:
        file, _ = base_file(c, size)
        keyed |= {str(file.relative_to(REPO_ROOT)), str(file.with_suffix(".json").relative_to(REPO_ROOT))}
    assert tracked == keyed, (f"the repo ships bases {sorted(tracked)} but this config and code key {sorted(keyed)}: "
                              "pretrain them with `make book`, `git add -f` the new files and remove the old ones")


@pytest.mark.slow
def test_the_shipped_proxy_base_is_what_this_code_pretrains(cfg):
    lines = []
    assert shipped.verify_base(cfg, "proxy", log=lines.append) == []
    assert lines and lines[0].startswith("proxy base: recomputed weights differ")


def test_the_shipped_sweeps_are_complete(cfg):
    from causalmix.experiments.validation import extended
    for c in [extended(cfg), *[OmegaConf.merge(cfg, {"seed": int(x)}) for x in cfg.power.base_seeds]]:
        n = len(list(store_for(c).dir.glob("run_*.csv")))     # the configured draw's: extended for chapter 2's curve
        assert n == c.sweep.n_runs, f"seed {c.seed}: {n} of {c.sweep.n_runs} shipped proxy runs"
    n = len(list(store_for(OmegaConf.merge(cfg, {"sweep": {"design": "habit"}})).dir.glob("run_*.csv")))
    assert n == cfg.analyses.observational.real_runs, f"habit sweep: {n} of {cfg.analyses.observational.real_runs} runs"
    n = len(list(power.retest_store(cfg).dir.glob("run_*.csv")))
    assert n == cfg.power.retest, f"retest: {n} of {cfg.power.retest} runs"


@pytest.mark.slow
@pytest.mark.parametrize("verify", [shipped.verify, shipped.verify_long_cot], ids=["sweep", "long_cot"])
def test_a_random_shipped_block_recomputes_within_tolerance(cfg, verify):
    """A random shipped block, trained again as the same stack (a run retrained alone rounds differently)."""
    lines = []
    res = verify(cfg, n_blocks=1, seed=None, log=lines.append)
    assert len(res) == cfg.sweep.batch
    for rid, diffs in res.items():
        assert not diffs, f"shipped run {rid} differs when recomputed in its stack: " + "; ".join(diffs)
        assert any(f"run {rid}: matches" in line for line in lines)


def test_compare_names_the_value_and_by_how_much():
    shipped_row = {"avg_dev": 40.0, "acc_news": 30.0, "w_news": 0.25, "train_loss": 1.0}
    assert shipped.compare(shipped_row, {"avg_dev": 40.5, "acc_news": 33.0, "w_news": 0.25, "train_loss": 9.0}) == []
    bad = shipped.compare(shipped_row, {"avg_dev": 41.0, "acc_news": 36.0, "w_news": 0.26, "train_loss": 1.0})
    assert bad[0].startswith("avg_dev: shipped 40.0000, recomputed 41.0000 (differs by +1.0000")
    assert any(b.startswith("acc_news:") and "+6.0000" in b for b in bad)
    assert any(b.startswith("w_news:") for b in bad)


def test_elsewhere_loosens_only_what_another_cpu_moves():
    """On another CPU: before training within 2e-4 (relative), not 1e-6; long-CoT scores by their block mean."""
    row = {"nl_news": 2.5, "avg_dev": 9.0, "acc_chain": 13.0}
    moved = {"nl_news": 2.5 + 2.5e-5, "avg_dev": 9.0, "acc_chain": 13.0}
    assert shipped.compare(row, moved) and not shipped.compare(row, moved, elsewhere=True)
    assert shipped.compare(row, {**moved, "nl_news": 2.5 + 2e-3}, elsewhere=True)[0].startswith("nl_news:")
    flipped = {**moved, "avg_dev": 6.0, "acc_chain": 6.0}       # one greedy-decoded run flips
    assert not shipped.compare(row, flipped, elsewhere=True, scores=False)
    block = [row] * 8
    assert shipped.compare_block(block, [flipped] + [row] * 7) == []            # mean moves 0.375 and 0.875
    bad = shipped.compare_block(block, [flipped] * 8)                           # every run moves: a real change
    assert any(b.startswith("avg_dev, mean over the block's 8 runs: shipped 9.0000, recomputed 6.0000") for b in bad)
    assert any(b.startswith("acc_chain, mean") for b in bad)
