"""Scale-out through Hydra's launchers: shards of one sweep, as separate jobs, into one store.

The joblib path (cores of one machine) and the submitit path (here with submitit's local executor, the
same pickling/submission/result machinery as on SLURM) each run a tiny sweep in 2 shards through
`python -m causalmix.experiments.sweep_app -m ...`; the analysis then reads the store whole."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import OmegaConf

from causalmix.config import CONF_DIR
from causalmix.config import compose as cm_compose
from causalmix.errors import ConfigError
from causalmix.experiments.store import RunStore
from causalmix.experiments.sweep import run_sweep, shard_ids
from conftest import TINY

REPO = Path(__file__).resolve().parents[1]
N_RUNS = 4
SWEEP = [o for o in TINY if not o.startswith("sweep.n_runs=")] + [f"sweep.n_runs={N_RUNS}", "threads=1",
                                                                   "sweep.batch=1"]   # one run per block: ids alternate shards


def multirun(tmp: Path, launcher: str) -> tuple[subprocess.CompletedProcess, Path]:
    out = tmp / "out"
    cmd = [sys.executable, "-m", "causalmix.experiments.sweep_app", "-m", f"hydra/launcher={launcher}",
           "sweep.shard=range(0,2)", "sweep.n_shards=2", *SWEEP, f"paths.out={out}", f"hydra.sweep.dir={tmp / 'multirun'}"]
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=900,
                       env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert p.returncode == 0, (p.stdout[-2000:], p.stderr[-3000:])
    return p, out


def check_sharded_store(tmp: Path, out: Path) -> pd.DataFrame:
    dirs = list((out / "runs").iterdir())
    assert len(dirs) == 1, dirs                              # both shards wrote into one store
    store = RunStore(out, dirs[0].name)
    df = store.load()
    assert df.run_id.tolist() == list(range(N_RUNS))
    by_run = dict(zip(df.run_id, df.worker))
    assert by_run[0] == by_run[2] and by_run[1] == by_run[3] and by_run[0] != by_run[1], by_run   # 1 job / shard
    assert sorted(p.name for p in (tmp / "multirun").iterdir() if p.name.isdigit()) == ["0", "1"]
    export = out / "export" / store.hash
    assert pd.read_csv(export / "mixtures.csv")["index"].tolist() == list(range(N_RUNS))
    assert not list(store.dir.glob("*.claim")) and not list(store.dir.glob("*.tmp*"))
    # the analysis reads the store whole, computing nothing
    cfg = cm_compose(SWEEP + [f"paths.out={out}"])
    mtimes = {f: f.stat().st_mtime_ns for f in store.dir.glob("run_*.csv")}
    logs, threads = [], torch.get_num_threads()
    try:
        whole = run_sweep(cfg, log=logs.append)
    finally:
        torch.set_num_threads(threads)
    assert f"{N_RUNS} of {N_RUNS} runs already in" in logs[0], logs
    assert {f: f.stat().st_mtime_ns for f in store.dir.glob("run_*.csv")} == mtimes
    pd.testing.assert_frame_equal(whole, df)
    return df


@pytest.fixture(scope="module")
def joblib_store(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("joblib")
    p, out = multirun(tmp, "cores")
    assert "Joblib.Parallel(n_jobs=2" in p.stdout + p.stderr, p.stdout[-2000:]
    return check_sharded_store(tmp, out)


@pytest.fixture(scope="module")
def submitit_store(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("submitit")
    p, out = multirun(tmp, "local")
    assert "Submitit 'local' sweep output dir" in p.stdout + p.stderr, p.stdout[-2000:]
    results = list((tmp / "multirun" / ".submitit").glob("*/*_result.pkl"))
    assert len(results) == 2, results                        # two submitit jobs, each returned a result
    return check_sharded_store(tmp, out)


def test_joblib_launcher_runs_the_shards_into_one_store(joblib_store):
    assert len(joblib_store) == N_RUNS


def test_submitit_local_launcher_runs_the_shards_into_one_store(submitit_store):
    assert len(submitit_store) == N_RUNS


def test_both_launchers_give_the_same_records(joblib_store, submitit_store):
    pd.testing.assert_frame_equal(joblib_store.drop(columns=["wall_seconds", "worker"]),
                                  submitit_store.drop(columns=["wall_seconds", "worker"]), check_exact=True)


@pytest.mark.parametrize("name,target,key,value", [
    ("cores", "JoblibLauncher", "n_jobs", 3),
    ("slurm", "SlurmLauncher", "cpus_per_task", 2),
    ("local", "LocalLauncher", "cpus_per_task", 2),
])
def test_shipped_launcher_configs_compose_and_instantiate(name, target, key, value):
    """conf/hydra/launcher/*.yaml extend the plugins' configs and build their launchers (no job is sent)."""
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=[f"hydra/launcher={name}", "threads=2", "sweep.n_shards=3"],
                      return_hydra_config=True)
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith(target)
    assert OmegaConf.select(cfg, f"hydra.launcher.{key}") == value
    assert type(instantiate(launcher)).__name__ == target


@pytest.mark.parametrize("shard,n,msg", [(2, 2, r"sweep.shard=2: expected an integer in \[0, sweep.n_shards=2\)"),
                                         (-1, 2, r"sweep.shard=-1"), (0, 0, r"sweep.n_shards=0: expected a positive"),
                                         ("a", 2, r"sweep.shard='a'")])
def test_bad_shard_settings_are_refused(shard, n, msg):
    cfg = cm_compose(SWEEP + [f"sweep.shard={shard}", f"sweep.n_shards={n}"])
    with pytest.raises(ConfigError, match=msg):
        shard_ids(cfg, list(range(N_RUNS)))


def test_shards_partition_the_run_ids():
    cfgs = [cm_compose(SWEEP + [f"sweep.shard={k}", "sweep.n_shards=3"]) for k in range(3)]
    parts = [shard_ids(c, list(range(10))) for c in cfgs]
    assert sorted(sum(parts, [])) == list(range(10)) and parts[1] == [1, 4, 7]


def test_shards_never_split_a_block_of_runs():
    cfgs = [cm_compose(SWEEP + ["sweep.batch=2", f"sweep.shard={k}", "sweep.n_shards=2"]) for k in range(2)]
    parts = [shard_ids(c, list(range(10))) for c in cfgs]
    assert parts == [[0, 1, 4, 5, 8, 9], [2, 3, 6, 7]]


def test_sweep_app_refuses_a_bad_shard_in_one_line(tmp_path):
    p = subprocess.run([sys.executable, "-m", "causalmix.experiments.sweep_app", *SWEEP, "sweep.shard=5", "sweep.n_shards=2",
                        f"paths.out={tmp_path}", f"hydra.run.dir={tmp_path / 'h'}"],
                       capture_output=True, text=True, cwd=REPO, timeout=300)
    assert p.returncode == 2 and "Traceback" not in p.stderr, p.stderr
    assert p.stderr.strip() == "causalmix sweep_app: error: sweep.shard=5: expected an integer in [0, sweep.n_shards=2)"
