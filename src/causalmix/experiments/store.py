"""The run store: one small CSV file per finished run, under a folder named by the config hash.

Why CSV files, one per run: a run is written atomically (temp file, then a hard link that never replaces an
existing file), so a killed sweep never leaves half a record and a rerun skips exactly the finished runs;
parallel workers (Hydra's joblib or SLURM launchers, or two `causalmix sweep` at once) never contend for one
file; and the files open in any tool. `export` writes the two CSVs that RegMix and Olmix read (mixture
columns; metric columns; same `index`).

Integrity. Every run file ends in a `sha256` column: the SHA-256 of the file's bytes without that column
(the header without `,sha256`, the row without `,<hex>`). `load`, `read` and `done` check it and raise
`ConfigError` naming the file when a run file is truncated, edited by hand or otherwise damaged, so a bad
file is never read as data. A file without the column (written before checksums existed, or by another
tool) cannot be verified and is refused the same way; the message says to delete it (the sweep recomputes
it) or to vouch for it with `python -m causalmix.experiments.store adopt DIR`, which appends the checksum of its bytes
as they are.

Claims. Before computing run i a worker creates `run_<i>.claim` with O_CREAT|O_EXCL (host, pid, process
start time, a nonce). Another worker that finds the claim skips the run and comes back to it later. A claim
is stale, and taken over, when its process is gone on this host (checked by pid and start time), or, for a
worker on another host, when the claim has not been refreshed for `stale_after_s` (holders touch their
claims every `heartbeat_s`). A finished run file always wins: a claimed run is computed only if its file is
still absent once the claim is held."""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import json
import os
import re
import socket
import sys
import threading
import time
import uuid
from pathlib import Path

import pandas as pd

from causalmix.errors import ConfigError

CHECK = "sha256"
_CHECK_HEADER = b"," + CHECK.encode()
_HEX = re.compile(rb"[0-9a-f]{64}")


def _hash(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def seal(body: bytes) -> bytes:
    """A plain one-record CSV (header line + row) -> the same CSV with a trailing sha256 column."""
    if not body.endswith(b"\n"):
        body += b"\n"
    head, sep, rest = body.partition(b"\n")
    if not sep or not rest.strip():
        raise ValueError("a run record needs a header line and a row")
    return head + _CHECK_HEADER + b"\n" + rest[:-1] + b"," + _hash(body).encode() + b"\n"


def unseal(raw: bytes, name: str) -> bytes:
    """The verified plain CSV inside a sealed run file, or ConfigError naming the file and the damage."""
    head, sep, rest = raw.partition(b"\n")
    if not head.endswith(_CHECK_HEADER):
        if b"run_id" in head.split(b","):
            raise ConfigError(f"{name} has no {CHECK} column (written before run files carried checksums, or by "
                              f"another tool), so it cannot be verified: delete it to recompute that run, or "
                              f"vouch for it with `python -m causalmix.experiments.store adopt {Path(name).parent}`")
        what = "is empty" if not raw else f"is not a run record (no run_id and {CHECK} columns in its header)"
        raise ConfigError(f"{name} {what}: truncated or overwritten; delete it to recompute that run")
    tail = rest[-66:]
    if not raw.endswith(b"\n") or len(rest) < 66 or tail[:1] != b"," or not _HEX.fullmatch(tail[1:65]):
        raise ConfigError(f"{name} is truncated: its row does not end in a {CHECK} checksum; "
                          f"delete it to recompute that run")
    body = head[:-len(_CHECK_HEADER)] + b"\n" + rest[:-66] + b"\n"
    if _hash(body) != tail[1:65].decode():
        raise ConfigError(f"{name} does not match its {CHECK} checksum: edited by hand or damaged; "
                          f"delete it to recompute that run")
    return body


def host() -> str:
    return socket.gethostname()


def _start_time(pid: int) -> str | None:
    """The process start time in clock ticks since boot (Linux), to tell a live pid from a reused one."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()
    if fields[0] == "Z":            # a zombie: dead, only not reaped yet
        return "zombie"
    return fields[19]


def _alive(pid: int, start: str | None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    now = _start_time(pid)
    if now == "zombie":
        return False
    return start is None or now is None or now == start


@contextlib.contextmanager
def file_lock(path: Path):
    """An exclusive advisory lock (flock) held for the block; released by the kernel if the process dies."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


_HELD: dict[Path, dict] = {}      # this process's claims, refreshed by one heartbeat thread
_BEAT: list[threading.Thread] = []


def _start_heartbeat(every_s: float) -> None:
    """One daemon thread per process touches every held claim every `every_s` (it dies with the process)."""
    if _BEAT and _BEAT[0].is_alive():
        return

    def beat():
        while True:
            time.sleep(every_s)
            for p in list(_HELD):
                with contextlib.suppress(OSError):
                    os.utime(p)

    _BEAT[:] = [threading.Thread(target=beat, name="runstore-heartbeat", daemon=True)]
    _BEAT[0].start()


class Claim:
    """This worker's claim on one run; `release()` (or leaving the `with` block) removes it."""

    def __init__(self, store: "RunStore", run_id: int, path: Path, token: dict):
        self.store, self.run_id, self.path, self.token = store, run_id, path, token

    def release(self) -> None:
        _HELD.pop(self.path, None)
        with contextlib.suppress(OSError):
            if json.loads(self.path.read_text()) == self.token:   # never remove a claim that is not ours
                self.path.unlink()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()


class RunStore:
    def __init__(self, root: Path, config_hash: str, heartbeat_s: float = 60.0, stale_after_s: float = 900.0):
        self.dir = Path(root) / "runs" / config_hash
        self.hash = config_hash
        self.heartbeat_s, self.stale_after_s = heartbeat_s, stale_after_s
        self.worker = f"{host()}:{os.getpid()}"

    # ---- files --------------------------------------------------------------------------------------------
    def file(self, run_id: int) -> Path:
        return self.dir / f"run_{run_id:05d}.csv"

    def claim_file(self, run_id: int) -> Path:
        return self.dir / f"run_{run_id:05d}.claim"

    def _id_of(self, f: Path) -> int:
        return int(f.stem.split("_", 1)[1])

    def done(self, run_id: int) -> bool:
        """True when run_id's file exists and verifies; ConfigError when it exists but is damaged."""
        f = self.file(run_id)
        if not f.exists():
            return False
        self._verified(f)
        return True

    def _verified(self, f: Path) -> pd.DataFrame:
        try:
            raw = f.read_bytes()
        except FileNotFoundError:
            raise ConfigError(f"{f} vanished while it was read") from None
        body = unseal(raw, str(f))
        try:
            df = pd.read_csv(io.BytesIO(body))
        except (ValueError, pd.errors.ParserError) as e:
            raise ConfigError(f"{f} passes its checksum but is not CSV: {str(e).splitlines()[0]}") from None
        if len(df) != 1 or "run_id" not in df or int(df.run_id.iloc[0]) != self._id_of(f):
            raise ConfigError(f"{f} should hold one record with run_id={self._id_of(f)}; "
                              f"found {len(df)} row(s), run_id {df['run_id'].tolist() if 'run_id' in df else None}")
        return df

    def read(self, run_id: int) -> pd.DataFrame:
        """One verified record (one row), without the checksum column."""
        return self._verified(self.file(run_id))

    def write(self, run_id: int, record: dict) -> bool:
        """Write one record atomically, with its checksum. An existing run file is never replaced: if one
        appeared meanwhile (another worker finished the same run), it wins, ours is dropped, and False is
        returned."""
        if CHECK in record:
            raise ValueError(f"a record may not carry a {CHECK!r} field: the store adds it")
        self.dir.mkdir(parents=True, exist_ok=True)
        final = self.file(run_id)
        sealed = seal(pd.DataFrame([record]).to_csv(index=False, lineterminator="\n").encode())
        tmp = final.with_name(f"{final.stem}.tmp{os.getpid()}.{host()}")
        with open(tmp, "wb") as fh:
            fh.write(sealed)
            fh.flush()
            os.fsync(fh.fileno())
        try:
            try:
                os.link(tmp, final)             # atomic, and fails if the run file exists: the first one wins
            except FileExistsError:
                try:
                    self._verified(final)
                except ConfigError as e:
                    keep = tmp.with_name(f"{final.stem}.unsaved{os.getpid()}.{host()}")
                    os.replace(tmp, keep)
                    raise ConfigError(f"{e} (this worker's fresh record for run {run_id} is kept in {keep})") from None
                print(f"run {run_id}: {final.name} was written by another worker meanwhile; keeping it",
                      file=sys.stderr)
                return False
            except OSError:                     # a filesystem without hard links
                if final.exists():
                    self._verified(final)
                    return False
                os.replace(tmp, final)
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        return True

    def load(self) -> pd.DataFrame:
        """Every run file, verified, in run_id order; ConfigError on the first damaged file."""
        files = sorted(self.dir.glob("run_*.csv"))
        if not files:
            return pd.DataFrame({"run_id": pd.Series(dtype="int64")})
        return pd.concat([self._verified(f) for f in files], ignore_index=True).sort_values(
            "run_id", ignore_index=True)

    def export(self, out_dir: Path, domains: list[str]) -> tuple[Path, Path]:
        """mixtures.csv (index + one weight column per domain) and metrics.csv (index + metrics); plain CSVs
        without checksums, each written atomically."""
        df = self.load()
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        mix = df[["run_id"] + [f"w_{d}" for d in domains]].rename(
            columns={"run_id": "index", **{f"w_{d}": d for d in domains}})
        metric_cols = [c for c in df.columns if c.startswith(("acc_", "margin_"))] + ["avg_dev", "avg_margin"]
        met = df[["run_id"] + metric_cols].rename(columns={"run_id": "index"})
        a, b = out_dir / "mixtures.csv", out_dir / "metrics.csv"
        for frame, f in ((mix, a), (met, b)):
            tmp = f.with_name(f"{f.name}.tmp{os.getpid()}")
            frame.to_csv(tmp, index=False)
            os.replace(tmp, f)
        return a, b

    # ---- claims -------------------------------------------------------------------------------------------
    def claim(self, run_id: int, log=print) -> Claim | None:
        """Claim run_id for this worker, or None while another live worker holds it."""
        self.dir.mkdir(parents=True, exist_ok=True)
        path = self.claim_file(run_id)
        token = {"host": host(), "pid": os.getpid(), "start": _start_time(os.getpid()),
                 "nonce": uuid.uuid4().hex}
        for _ in range(3):
            try:
                fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                if not self._take_over_if_stale(run_id, path, log):
                    return None
                continue
            with os.fdopen(fd, "w") as fh:
                json.dump(token, fh)
                fh.flush()
                os.fsync(fh.fileno())
            _HELD[path] = token
            _start_heartbeat(self.heartbeat_s)
            self.clear_dead_temps(run_id)
            return Claim(self, run_id, path, token)
        return None

    def clear_dead_temps(self, run_id: int) -> None:
        """Temp files of run_id left by killed writers on this host (never read; removed for tidiness)."""
        for t in self.dir.glob(f"run_{run_id:05d}.tmp*.{host()}"):
            m = re.fullmatch(rf"run_{run_id:05d}\.tmp(\d+)\.{re.escape(host())}", t.name)
            if m and int(m.group(1)) != os.getpid() and not _alive(int(m.group(1)), None):
                t.unlink(missing_ok=True)

    def _holder(self, path: Path) -> tuple[dict | None, float | None]:
        try:
            text, mtime = path.read_text(), path.stat().st_mtime
        except FileNotFoundError:
            return None, None
        try:
            return json.loads(text), mtime
        except ValueError:
            return {}, mtime        # created but not yet written, or cut short by a kill

    def _stale(self, holder: dict, mtime: float) -> str | None:
        """Why a claim is stale, or None when its holder may still be working."""
        age = time.time() - mtime
        if not holder:
            return "empty claim" if age > 60 else None
        if holder.get("host") == host():
            if not _alive(int(holder["pid"]), holder.get("start")):
                return f"pid {holder['pid']} on this host is gone"
            return None
        if age > self.stale_after_s:
            return f"{holder.get('host')}:{holder.get('pid')} has not refreshed it for {age:.0f}s"
        return None

    def _take_over_if_stale(self, run_id: int, path: Path, log) -> bool:
        """Remove a stale claim (under a lock, re-checked there, so two workers never both take it over).
        True when the claim is gone and the caller may try again."""
        holder, mtime = self._holder(path)
        if holder is None:
            return True
        if self._stale(holder, mtime) is None:
            return False
        with file_lock(self.dir / ".claims.lock"):
            again, mtime = self._holder(path)
            if again is None:
                return True
            why = self._stale(again, mtime)
            if again != holder or why is None:
                return False
            path.unlink()
        log(f"run {run_id}: took over a stale claim ({why})")
        return True

    def claimed(self, ids, poll_s: float = 5.0, log=print, done=None):
        """Yield each run id of `ids` that is not finished, once this worker holds its claim; the claim is
        released when the caller asks for the next id. Runs held by other live workers are revisited every
        `poll_s` until they are finished (by them) or their claim goes stale (then this worker takes over),
        so when the generator ends every id has a run file."""
        done = done or self.done      # a unit of work other than one run (a block) says when it is finished
        pending, shown = list(ids), None
        while pending:
            waiting = []
            for i in pending:
                if done(i):
                    continue
                c = self.claim(i, log=log)
                if c is None:
                    waiting.append(i)
                    continue
                with c:
                    if not done(i):             # another worker may have finished it before our claim
                        yield i
            if waiting:
                if len(waiting) != shown:
                    shown = len(waiting)
                    log(f"{len(waiting)} run(s) held by other workers ({self.claim_file(waiting[0]).name}, ...); "
                        f"waiting until they finish or their claims go stale")
                time.sleep(poll_s)
            pending = waiting


def adopt(directory: Path) -> list[Path]:
    """Append checksums to run files written before checksums existed, keeping their bytes as they are."""
    out = []
    for f in sorted(Path(directory).glob("run_*.csv")):
        raw = f.read_bytes()
        if raw.partition(b"\n")[0].endswith(_CHECK_HEADER):
            continue
        df = pd.read_csv(io.BytesIO(raw))
        if len(df) != 1 or "run_id" not in df:
            raise ConfigError(f"{f}: expected one record with a run_id column; found {len(df)} row(s)")
        tmp = f.with_name(f"{f.stem}.tmp{os.getpid()}.{host()}")
        tmp.write_bytes(seal(raw))
        os.replace(tmp, f)
        out.append(f)
    return out


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2 or argv[0] != "adopt":
        print("usage: python -m causalmix.experiments.store adopt RUN_DIR   (vouch for run files written without checksums)",
              file=sys.stderr)
        return 2
    if not Path(argv[1]).is_dir():
        print(f"causalmix.experiments.store: error: {argv[1]} is not a directory", file=sys.stderr)
        return 2
    try:
        done = adopt(Path(argv[1]))
    except ConfigError as e:
        print(f"causalmix.experiments.store: error: {e}", file=sys.stderr)
        return 2
    print(f"added checksums to {len(done)} run file(s) in {argv[1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
