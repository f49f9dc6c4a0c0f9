"""Faults: damaged run files, two workers on one store, kill -9 mid-sweep. (No network at run time:
test_determinism runs one of its two fresh sweeps with the network cut off.)

Every sweep here is a real `causalmix sweep` process on the real corpora at a tiny config (4 runs of a
4-step base), compared with one uninterrupted sweep of the same config."""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from causalmix.errors import ConfigError
from causalmix.experiments.store import RunStore, adopt, file_lock, host, seal
from conftest import TINY, fresh_cache

REPO = Path(__file__).resolve().parents[1]
N_RUNS = 6
RACE_RUNS = 12   # the two-worker race: six blocks, so the second worker still finds some unclaimed
BATCH = 2      # runs train in fixed blocks of 2: three blocks, so two workers can share them and kills land between
SWEEP = [o for o in TINY if not o.startswith("sweep.n_runs=")] + [f"sweep.n_runs={N_RUNS}", f"sweep.batch={BATCH}"]
VOLATILE = ["wall_seconds", "worker"]          # differ between processes by design; everything else must not


def sweep_cmd(out: Path, *extra: str, n_runs: int = N_RUNS) -> list[str]:
    sweep = [o if not o.startswith("sweep.n_runs=") else f"sweep.n_runs={n_runs}" for o in SWEEP]
    return [sys.executable, "-m", "causalmix.cli", "sweep", *sweep, f"paths.out={out}", *extra]


def env() -> dict:
    return {**os.environ, "PYTHONUNBUFFERED": "1"}


def run_dir(out: Path) -> Path:
    dirs = [d for d in (out / "runs").iterdir() if d.is_dir()]
    assert len(dirs) == 1, dirs
    return dirs[0]


def stable(df: pd.DataFrame) -> pd.DataFrame:
    return df.drop(columns=[c for c in VOLATILE if c in df]).reset_index(drop=True)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """One uninterrupted sweep: the records every faulted sweep must reproduce."""
    out = tmp_path_factory.mktemp("reference")
    p = subprocess.run(sweep_cmd(out), capture_output=True, text=True, env=env(), cwd=REPO, timeout=900)
    assert p.returncode == 0, p.stderr[-3000:]
    df = RunStore(out, run_dir(out).name).load()
    assert df.run_id.tolist() == list(range(N_RUNS))
    return out, df


# ---- a damaged run file is named, never read as data -----------------------------------------------------

RECORD = {"config_hash": "abc", "run_id": 3, "w_math": 0.1 + 0.2, "w_code": 0.7, "note": "a, quoted\nfield",
          "avg_dev": 41.25}


def _damaged(raw: bytes) -> dict[str, bytes]:
    head, _, rest = raw.partition(b"\n")
    return {
        "empty": b"",
        "cut in the header": raw[:10],
        "header only": head + b"\n",
        "cut mid-row": raw[:len(head) + 20],
        "cut inside the checksum": raw[:-20],
        "last newline lost": raw[:-1],
        "a value edited": raw.replace(b"41.25", b"91.25"),
        "a column renamed": raw.replace(b"w_math", b"w_mash"),
        "a row appended": raw + b"abc,3,0.5,0.5,x,1.0," + b"0" * 64 + b"\n",
        "no checksum column (old format)": raw.replace(b",sha256", b"").rsplit(b",", 1)[0] + b"\n",
        "not a run file": b"hello,world\n1,2\n",
    }


@pytest.mark.parametrize("kind", list(_damaged(b"x\ny\n")))
def test_damaged_run_file_is_named_and_refused(tmp_path, kind):
    store = RunStore(tmp_path, "h")
    store.write(3, RECORD)
    good = store.file(3).read_bytes()
    assert store.read(3).w_math.iloc[0] == 0.1 + 0.2        # the exact float survives the round trip
    bad = _damaged(good)[kind]
    store.file(3).write_bytes(bad)
    for call in (store.load, lambda: store.done(3), lambda: store.read(3)):
        with pytest.raises(ConfigError) as e:
            call()
        msg = str(e.value)
        assert str(store.file(3)) in msg and len(msg.splitlines()) == 1, msg
        assert re.search(r"truncated|checksum|empty|not a run record|edited|one record", msg), msg
    assert store.file(3).read_bytes() == bad                 # the evidence is left as it was


def test_run_file_copied_under_another_id_is_refused(tmp_path):
    store = RunStore(tmp_path, "h")
    store.write(3, RECORD)
    shutil.copy(store.file(3), store.file(4))
    with pytest.raises(ConfigError, match=r"run_00004\.csv should hold one record with run_id=4"):
        store.load()


def test_old_format_file_can_be_adopted_byte_for_byte(tmp_path):
    store = RunStore(tmp_path, "h")
    old = pd.DataFrame([RECORD]).to_csv(index=False, lineterminator="\n").encode()
    store.dir.mkdir(parents=True)
    store.file(3).write_bytes(old)
    with pytest.raises(ConfigError, match="no sha256 column.*causalmix.experiments.store adopt"):
        store.done(3)
    p = subprocess.run([sys.executable, "-m", "causalmix.experiments.store", "adopt", str(store.dir)], capture_output=True,
                       text=True, cwd=REPO)
    assert p.returncode == 0 and "1 run file" in p.stdout, p.stderr
    assert store.file(3).read_bytes() == seal(old)
    assert store.read(3).to_dict("records") == [RECORD]
    assert adopt(store.dir) == []                            # adopting twice changes nothing


def test_write_never_replaces_a_finished_run(tmp_path, capsys):
    store = RunStore(tmp_path, "h")
    assert store.write(3, RECORD) is True
    first = store.file(3).read_bytes()
    assert store.write(3, {**RECORD, "avg_dev": 1.0}) is False
    assert store.file(3).read_bytes() == first
    assert "written by another worker" in capsys.readouterr().err
    assert sorted(p.name for p in store.dir.iterdir()) == ["run_00003.csv"]   # no temp file left behind


def test_sweep_refuses_a_damaged_store_file_in_one_line(tmp_path, reference):
    """The real command: a hand-edited run file stops the sweep with exit 2 and one line naming the file."""
    out = tmp_path / "out"
    shutil.copytree(reference[0], out)
    f = run_dir(out) / "run_00002.csv"
    edited = f.read_bytes().replace(b",", b";", 1)
    f.write_bytes(edited)
    p = subprocess.run(sweep_cmd(out), capture_output=True, text=True, env=env(), cwd=REPO, timeout=900)
    assert p.returncode == 2, (p.returncode, p.stderr[-3000:])
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert lines[-1].startswith("causalmix sweep: error: ") and str(f) in lines[-1], p.stderr[-2000:]
    assert "Traceback" not in p.stderr
    assert f.read_bytes() == edited


# ---- claims ----------------------------------------------------------------------------------------------

def _dead_pid() -> int:
    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


def test_claim_is_exclusive_and_released(tmp_path):
    a, b = RunStore(tmp_path, "h"), RunStore(tmp_path, "h")
    c = a.claim(0)
    assert c is not None and b.claim(0) is None              # held by a live process (this one)
    token = json.loads(a.claim_file(0).read_text())
    assert token["pid"] == os.getpid() and token["host"] == host()
    c.release()
    assert not a.claim_file(0).exists()
    assert b.claim(0) is not None


def test_stale_claims_are_taken_over_live_ones_are_not(tmp_path):
    store = RunStore(tmp_path, "h", stale_after_s=600)
    store.dir.mkdir(parents=True)
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        claims = {0: {"host": host(), "pid": _dead_pid(), "start": None, "nonce": "dead"},
                  1: {"host": host(), "pid": sleeper.pid, "start": None, "nonce": "alive"},
                  2: {"host": "elsewhere", "pid": 1, "start": None, "nonce": "fresh"},
                  3: {"host": "elsewhere", "pid": 1, "start": None, "nonce": "silent"}}
        for i, tok in claims.items():
            store.claim_file(i).write_text(json.dumps(tok))
        old = time.time() - 3600
        os.utime(store.claim_file(3), (old, old))
        (store.dir / f"run_00000.tmp{claims[0]['pid']}.{host()}").write_text("half a record")
        logs = []
        got = {i: store.claim(i, log=logs.append) for i in claims}
        assert [i for i, c in got.items() if c is not None] == [0, 3], logs
        assert not list(store.dir.glob("run_00000.tmp*"))     # the dead holder's temp file is cleared
        assert any("gone" in m for m in logs) and any("not refreshed" in m for m in logs), logs
        # a claim that is not ours is never removed by release()
        mine = got[0]
        store.claim_file(0).write_text(json.dumps({**claims[1], "nonce": "someone else"}))
        mine.release()
        assert store.claim_file(0).exists()
    finally:
        sleeper.kill()
        sleeper.wait()


def test_claimed_waits_for_a_run_held_by_a_live_worker(tmp_path):
    store = RunStore(tmp_path, "h")
    store.dir.mkdir(parents=True)
    other = subprocess.Popen(["sleep", "60"])
    store.claim_file(1).write_text(json.dumps({"host": host(), "pid": other.pid, "start": None, "nonce": "o"}))

    def the_other_worker_finishes():
        time.sleep(1.5)
        store.write(1, {**RECORD, "run_id": 1})
        store.claim_file(1).unlink()
        other.kill()
        other.wait()

    t = threading.Thread(target=the_other_worker_finishes)
    t.start()
    got = []
    for i in store.claimed([0, 1, 2], poll_s=0.2, log=lambda m: None):
        assert store.claim_file(i).exists()                  # computed only while claimed
        got.append(i)
        store.write(i, {**RECORD, "run_id": i})
    t.join()
    assert got == [0, 2]                                     # run 1 came from the other worker, not from us
    assert store.load().run_id.tolist() == [0, 1, 2]
    assert not list(store.dir.glob("*.claim"))


def _reader(proc, sink: list, seen: threading.Event, pattern: str):
    for line in proc.stdout:
        sink.append(line)
        if re.search(pattern, line):
            seen.set()


@pytest.mark.slow
def test_two_workers_at_once_compute_every_run_exactly_once(tmp_path, reference):
    """Two real `causalmix sweep` processes on one store, released at the same moment, over RACE_RUNS runs (six
    blocks; a run's record does not depend on n_runs, so the first N_RUNS must equal the reference's). Every
    attempt must compute each run exactly once; at least one of three attempts must have both workers compute
    some. (One worker can claim every block before the other has loaded its caches when a third process, such
    as another xdist test worker, holds a core: a matter of timing, which a retry on a fresh store absorbs.)"""
    for attempt in range(3):
        computed = _race(tmp_path / f"try{attempt}", reference)
        if all(c >= 1 for c in computed):
            return
    raise AssertionError(f"in three attempts one worker always computed every run: {computed}")


def _race(tmp_path: Path, reference) -> list[int]:
    """One attempt: the runs each worker computed, after checking the invariants that hold whatever the timing."""
    out = tmp_path / "out"
    cache_lock = REPO / ".cache" / "prepare.lock"            # the lock run_sweep takes before its loop
    procs, logs, ready = [], [], []
    with file_lock(cache_lock):                              # hold both at the start line
        for _ in range(2):
            p = subprocess.Popen(sweep_cmd(out, n_runs=RACE_RUNS), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                 text=True, env=env(), cwd=REPO)
            log, ev = [], threading.Event()
            threading.Thread(target=_reader, args=(p, log, ev, r"runs already in"), daemon=True).start()
            procs.append(p), logs.append(log), ready.append(ev)
        for ev in ready:
            assert ev.wait(300), "a worker did not reach the sweep"
        time.sleep(0.5)
    for p in procs:
        assert p.wait(900) == 0, "".join(sum(logs, []))[-3000:]
    text = ["".join(log) for log in logs]
    computed = [int(re.search(r"^(\d+) runs in ", t, re.M).group(1)) for t in text]
    assert sum(computed) == RACE_RUNS, (computed, text)      # no run computed twice, none skipped
    assert not any("written by another worker" in t for t in text)
    store = RunStore(out, run_dir(out).name)
    df = store.load()
    assert df.run_id.tolist() == list(range(RACE_RUNS))
    assert set(df.worker) == {f"{host()}:{p.pid}" for p, c in zip(procs, computed) if c}
    assert not list(store.dir.glob("*.claim")) and not list(store.dir.glob("*.tmp*"))
    pd.testing.assert_frame_equal(stable(df[df.run_id < N_RUNS]), stable(reference[1]), check_exact=True)
    return computed


# ---- kill -9 ---------------------------------------------------------------------------------------------

def _kill_when(out: Path, ready, what: str) -> tuple[int, list[str]]:
    """Start a sweep, SIGKILL it as soon as ready(run_dir) holds; the killed pid and its output so far."""
    p = subprocess.Popen(sweep_cmd(out), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env(),
                         cwd=REPO)
    log = []
    threading.Thread(target=_reader, args=(p, log, threading.Event(), r"$^"), daemon=True).start()
    deadline = time.time() + 600
    while time.time() < deadline:
        d = out / "runs"
        dirs = [x for x in d.iterdir() if x.is_dir()] if d.is_dir() else []
        if dirs and ready(dirs[0]):
            break
        assert p.poll() is None, f"the sweep ended before {what}: " + "".join(log)[-2000:]
        time.sleep(0.02)
    else:
        raise AssertionError(f"never reached {what}")
    p.send_signal(signal.SIGKILL)
    p.wait()
    return p.pid, log


@pytest.mark.slow
def test_kill_9_at_several_points_then_rerun_equals_an_uninterrupted_sweep(tmp_path, reference):
    out = tmp_path / "out"
    done = lambda d: sorted(d.glob("run_*.csv"))  # noqa: E731
    points = [("block 0 claimed, none finished", lambda d: (d / "run_00000.claim").exists()),
              ("block 0 finished, block 1 claimed", lambda d: len(done(d)) >= 2 and (d / "run_00002.claim").exists()),
              ("4 runs finished", lambda d: len(done(d)) >= 4)]
    kept, said = {}, []
    for what, ready in points:
        pid, log = _kill_when(out, ready, what)
        said += log
        d = run_dir(out)
        store = RunStore(out, d.name)
        df = store.load()                                  # every file present verifies: no half record
        assert df.run_id.is_unique and len(df) < N_RUNS, what
        for f in done(d):                                  # a finished run is never recomputed
            kept.setdefault(f.name, f.stat().st_mtime_ns)
        leftovers = [f.name for f in d.iterdir()
                     if not re.fullmatch(r"run_\d{5}\.csv|manifest\.json|\.claims\.lock", f.name)]
        assert all(re.fullmatch(rf"run_\d{{5}}\.(claim|tmp{pid}\..*)", n) for n in leftovers), leftovers
        # what a kill inside write() would leave: a half-written temp file of the dead worker
        nxt = len(df)
        (d / f"run_{nxt:05d}.tmp{pid}.{host()}").write_text(f"config_hash,run_id\n{d.name},{nxt}")
    p = subprocess.run(sweep_cmd(out), capture_output=True, text=True, env=env(), cwd=REPO, timeout=900)
    assert p.returncode == 0, p.stderr[-3000:]
    assert f"{len(kept)} of {N_RUNS} runs already in" in p.stdout, p.stdout
    assert "took over a stale claim" in "".join(said) + p.stdout   # a killed worker's claim blocks nothing
    d = run_dir(out)
    for name, mtime in kept.items():
        assert (d / name).stat().st_mtime_ns == mtime, name
    assert sorted(f.name for f in d.iterdir() if f.name != ".claims.lock") == \
        sorted([f"run_{i:05d}.csv" for i in range(N_RUNS)] + ["manifest.json"])
    df = RunStore(out, d.name).load()
    assert df.run_id.tolist() == list(range(N_RUNS))
    pd.testing.assert_frame_equal(stable(df), stable(reference[1]), check_exact=True)
