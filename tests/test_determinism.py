"""Same config and seed, same numbers: two fresh processes with no shared cache agree to the last bit, one
of them with the network cut off. And no stale results: a cache is reused only when the code that made it
is unchanged."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

from causalmix import lineage
from causalmix.config import compose
from causalmix.experiments.dryrun import plan
from causalmix.experiments.store import RunStore
from causalmix.experiments.sweep import run_sweep, store_for
from conftest import TINY, fresh_cache


def _unshare_reason() -> str | None:
    """Why this machine cannot cut a process's network with `unshare -n`; None if it can (as root)."""
    if shutil.which("unshare") is None:
        return "the unshare command is not installed"
    p = subprocess.run(["unshare", "-n", "true"], capture_output=True, text=True)
    if p.returncode != 0:
        return f"`unshare -n` cannot make a network namespace here ({p.stderr.strip() or p.returncode}); run as root"
    return None


def _sweep_in_new_process(root: Path, prefix: list[str]) -> subprocess.CompletedProcess:
    cache = fresh_cache(root)
    args = [*TINY, "sweep.n_runs=2", f"paths.out={root / 'out'}", f"paths.cache={cache}"]
    env = {**os.environ, "PYTHONHASHSEED": "random"}
    return subprocess.run([*prefix, sys.executable, "-m", "causalmix.cli", "sweep", *args], cwd=root, env=env,
                          capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_two_fresh_processes_one_offline_give_identical_bases_runs_and_tables(tmp_path):
    """Two sweeps, each from an empty cache (only set-up's fetched corpora), parse, pretrain and run; the first
    with the network cut off (no network at run time beyond set-up). Bases, parsed corpora, run records and
    exported tables agree to the bit. Where `unshare -n` is not allowed, both run online and the test says so
    by skipping after the determinism checks."""
    offline = _unshare_reason()
    if offline is None:
        probe = "import socket; socket.create_connection(('1.1.1.1', 443), timeout=3)"
        p = subprocess.run(["unshare", "-n", sys.executable, "-c", probe], capture_output=True, text=True)
        assert p.returncode != 0 and "unreachable" in p.stderr.lower(), p.stderr   # the cut is real
    for k, prefix in (("a", ["unshare", "-n"] if offline is None else []), ("b", [])):
        p = _sweep_in_new_process(tmp_path / k, prefix)
        assert p.returncode == 0, (k, p.stderr[-2000:])
        assert "pretrained proxy base" in p.stdout, p.stdout    # from scratch, not from a shared cache
    bases = [sorted((tmp_path / k / "cache" / "base").glob("proxy-*.pt")) for k in "ab"]
    assert len(bases[0]) == 1 and [b.name for b in bases[0]] == [b.name for b in bases[1]]
    sa, sb = (torch.load(b[0]) for b in bases)
    assert sa.keys() == sb.keys() and all(torch.equal(sa[n], sb[n]) for n in sa)
    # every parsed corpus too, byte for byte
    for f in sorted((tmp_path / "a" / "cache" / "samples").glob("*.jsonl")):
        assert f.read_bytes() == (tmp_path / "b" / "cache" / "samples" / f.name).read_bytes(), f.name
    runs = [sorted((tmp_path / k / "out" / "runs").glob("*/run_*.csv")) for k in "ab"]
    assert len(runs[0]) == 2 and [r.relative_to(tmp_path / "a") for r in runs[0]] == \
        [r.relative_to(tmp_path / "b") for r in runs[1]]
    for ra, rb in zip(*runs):
        # all but when and where it ran
        a, b = (RunStore(r.parents[2], r.parent.name).read(int(r.stem.split("_")[1]))
                .drop(columns=["wall_seconds", "worker"], errors="ignore") for r in (ra, rb))
        pd.testing.assert_frame_equal(a, b, check_exact=True)
    for table in ("mixtures.csv", "metrics.csv"):
        ta, tb = (next((tmp_path / k / "out" / "export").glob(f"*/{table}")).read_bytes() for k in "ab")
        assert ta == tb, table
    if offline is not None:
        pytest.skip(f"two fresh processes agree, both online: the offline half did not run ({offline})")


def test_source_hash_ignores_comments_and_docstrings_not_code():
    src = 'def f(x):\n    """Doc."""\n    return x + 1\n'
    assert lineage.source_hash(src) == lineage.source_hash('def f(x):  # a comment\n\n    return x + 1\n')
    assert lineage.source_hash(src) != lineage.source_hash('def f(x):\n    return x + 2\n')


def test_fingerprints_cover_what_computes_each_artifact():
    runs = lineage.fingerprint("runs")
    for m in ("lm/train.py", "lm/model.py", "data/benchmarks.py", "data/covariates.py", "data/pool.py", "experiments/proxy.py", "data/domains.py"):
        assert m in runs, m
    assert "causal/policy.py" not in runs and "causal/estimator.py" not in runs and "experiments/sweep.py" not in runs
    base = lineage.fingerprint("base")
    assert "experiments/world.py:base_model" in base and "data/benchmarks.py" not in base
    assert "torch" in base and "experiments/target.py:run_targets" in lineage.fingerprint("target")
    # runs made by functions outside the proxy's closure carry those functions too
    assert "experiments/power.py:noise_floor" in lineage.fingerprint("floor")
    grid = lineage.fingerprint("grid")
    assert {"experiments/grid.py:trials", "experiments/grid.py:points", "experiments/target.py:tilted_grid",
            "experiments/target.py:target_pool", "experiments/proxy.py"} <= set(grid)


def test_an_edited_noise_floor_or_grid_retires_their_runs_and_dry_run_says_why(tmp_path, monkeypatch):
    """Noise-floor runs and Grid's trials are proxy runs made by their own functions (power.noise_floor,
    grid.trials): an edit to those, not only to the proxy's code, keys them anew."""
    from causalmix.experiments import grid, power
    from causalmix.experiments.world import base_model, build_world
    cfg = compose(TINY + ["power.pairs=1", "power.seeds=2", f"paths.out={tmp_path / 'out'}"])
    world = build_world(cfg)
    power.noise_floor(world, base_model(cfg, "proxy", log=lambda *_: None), 1, 2, store=power.floor_store(cfg))
    line = next(l for l in plan(cfg) if l.startswith("noise-floor runs"))
    assert line.startswith("noise-floor runs (chapter 2): reuse 2 of 2 from "), line
    floor_dir, grid_dir = power.floor_store(cfg).dir, grid.grid_store(cfg).dir
    real = lineage.fingerprint

    def edited(kind):   # as if noise_floor and grid.trials had been edited since
        return {k: "0" * 12 if k in ("experiments/power.py:noise_floor", "experiments/grid.py:trials") else v
                for k, v in real(kind).items()}
    monkeypatch.setattr(lineage, "fingerprint", edited)
    assert power.floor_store(cfg).dir != floor_dir and grid.grid_store(cfg).dir != grid_dir
    after = plan(cfg)
    i = next(i for i, l in enumerate(after) if l.startswith("noise-floor runs"))
    assert after[i].startswith("noise-floor runs (chapter 2): reuse 0 of 2"), after[i]
    assert "experiments/power.py:noise_floor changed" in after[i + 1], after[i + 1]
    assert len(list(floor_dir.glob("run_*.csv"))) == 2      # the old runs are still on disk, untouched


def test_changed_code_retires_the_cache_and_dry_run_says_why(tmp_path, monkeypatch):
    cfg = compose(TINY + ["sweep.n_runs=2", f"paths.out={tmp_path / 'out'}"])
    run_sweep(cfg, log=lambda *_: None)
    before = plan(cfg, "sweep")
    assert any(l.startswith("proxy runs: reuse 2 of 2") for l in before), before
    assert any("base model proxy: reuse" in l for l in before), before

    real = lineage.fingerprint

    def edited(kind):   # as if train.py had been edited since
        return {**real(kind), **({"lm/train.py": "0" * 12} if "lm/train.py" in real(kind) else {})}
    monkeypatch.setattr(lineage, "fingerprint", edited)
    assert store_for(cfg).dir.name != Path(before[3].split(" from ")[1].split(",")[0]).name
    after = plan(cfg, "sweep")
    assert any(l.startswith("proxy runs: reuse 0 of 2") for l in after), after
    why = [l for l in after if "why:" in l]
    assert why and "lm/train.py changed" in why[0], after
    assert any("base model proxy: pretrain" in l and "lm/train.py changed" in l for l in after), after
    # the old runs are still on disk, untouched
    assert len(list((tmp_path / "out" / "runs").glob("*/run_*.csv"))) == 2
