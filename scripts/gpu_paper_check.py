"""The `paper` scale on one GPU, timed stage by stage: the base models, the 512-run proxy sweep, fit + propose,
and the main table's target runs. Prints one JSON document of figures (also OUT/paper_check.json).

  python scripts/gpu_paper_check.py OUT [--workers 8] [--sweep-budget 300] [--target-budget 180] [overrides...]

Small models leave one GPU mostly idle when one process drives them (each step is a few kernel launches
and some Python), so the sweep and the target runs go out as `--workers` processes on the one device,
through the ordinary tools: `causalmix sweep` shards (sweep.shard of sweep.n_shards) and
scripts/main_targets.py parts, both writing into the same crash-safe stores. Each stage stops at its
budget (seconds); what finished is counted, and the rest is extrapolated from the measured rate, said so
in the JSON (`extrapolated`). One block of sweep.batch proxies is first timed alone, so a rate comes back
even when the parallel sweep finishes no block inside its budget (as on 2026-11-29:
book/measurements/gpu-paper-check.json). The main table here leaves out Grid (its 8 x 2 proxy trials per state are
counted in proxy runs) and the ablations. Run it on the GPU machine through scripts/gpu_paper_check.sh."""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def sh(args: list[str], log: Path, budget: float | None = None) -> tuple[float, int | None]:
    t0 = time.perf_counter()
    with open(log, "a") as f:
        p = subprocess.Popen(args, stdout=f, stderr=subprocess.STDOUT, cwd=ROOT)
        try:
            rc = p.wait(timeout=budget)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            rc = None
    return time.perf_counter() - t0, rc


def parallel(cmds: list[list[str]], log: Path, budget: float) -> tuple[float, list]:
    """Start every command at once; kill what still runs at the budget. Returns wall and exit codes."""
    t0 = time.perf_counter()
    procs = []
    for i, c in enumerate(cmds):
        f = open(log.with_name(f"{log.stem}-{i}.log"), "w")
        procs.append((subprocess.Popen(c, stdout=f, stderr=subprocess.STDOUT, cwd=ROOT), f))
    codes = []
    for p, f in procs:
        try:
            codes.append(p.wait(timeout=max(1.0, budget - (time.perf_counter() - t0))))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            codes.append(None)
        f.close()
    return time.perf_counter() - t0, codes


class GpuWatch(threading.Thread):
    """Peak GPU memory and mean utilisation from nvidia-smi every 2 s (nothing where there is none)."""

    def __init__(self):
        super().__init__(daemon=True)
        self.mem, self.util, self.stop = 0, [], False

    def run(self):
        while not self.stop:
            try:
                out = subprocess.run(["nvidia-smi", "--query-gpu=memory.used,utilization.gpu",
                                      "--format=csv,noheader,nounits"], capture_output=True, text=True, timeout=10)
                mem, util = (float(x) for x in out.stdout.strip().splitlines()[0].split(","))
                self.mem, self.util = max(self.mem, mem), self.util + [util]
            except Exception:
                return
            time.sleep(2)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--workers", type=int, default=8)
    ap.add_argument("--scale", default="paper")
    ap.add_argument("--sweep-only", action="store_true", help="stop after the sweep")
    ap.add_argument("--sweep-budget", type=float, default=300)
    ap.add_argument("--target-budget", type=float, default=180)
    a, a.overrides = ap.parse_known_args()
    out = Path(a.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    py = sys.executable
    threads = max(1, (os.cpu_count() or 2) // a.workers)
    ov = [f"scale={a.scale}", f"paths.out={out}/{a.scale}", f"threads={threads}", *a.overrides]
    sys.path.insert(0, str(ROOT / "src"))
    from causalmix.config import compose
    from causalmix.experiments.sweep import store_for
    from causalmix.experiments.target import target_store
    cfg = compose(ov)
    n_runs = int(cfg.sweep.n_runs)
    fig: dict = {"device": cfg.device, "workers": a.workers, "threads_per_worker": threads, "overrides": ov,
                 "sweep_batch": int(cfg.sweep.batch), "n_runs": n_runs}
    try:
        import torch
        fig["gpu"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
        fig["torch"] = torch.__version__
    except Exception as e:   # noqa: BLE001
        fig["gpu"] = repr(e)
    watch = GpuWatch()
    watch.start()
    t_all = time.perf_counter()

    # 1. both base models, pretrained at once in two processes
    code = ("import sys; from causalmix.config import compose; from causalmix.experiments.world import base_model,"
            " set_threads; c = compose(sys.argv[2:]); set_threads(c); base_model(c, sys.argv[1])")
    w, codes = parallel([[py, "-c", code, s, *ov] for s in ("proxy", "target")], out / "base", 600)
    fig["bases"] = {"wall_s": round(w, 1), "exit": codes}

    # 2a. one block of sweep.batch proxies alone (a rate even if the parallel sweep finishes no block in time)
    one = [*ov, f"sweep.n_runs={int(cfg.sweep.batch)}"]
    w, rc = sh([py, "-m", "causalmix.cli", "sweep", *one], out / "block.log", a.sweep_budget / 2)
    fig["one_block"] = {"runs": int(cfg.sweep.batch), "wall_s": round(w, 1), "exit": rc,
                        "s_per_run": round(w / int(cfg.sweep.batch), 2) if rc == 0 else None}

    # 2b. the sweep: `workers` shards on the one device (the first block is already stored)
    cmds = [[py, "-m", "causalmix.cli", "sweep", *ov, f"sweep.shard={i}", f"sweep.n_shards={a.workers}"]
            for i in range(a.workers)]
    w, codes = parallel(cmds, out / "sweep", a.sweep_budget)
    runs = store_for(cfg).load()
    done = len(runs)
    fig["sweep"] = {"wall_s": round(w, 1), "runs_done": done, "exit": codes,
                    "s_per_run": round(w / max(done, 1), 3),
                    "wall_s_for_all": round(w * n_runs / max(done, 1), 1), "extrapolated": done < n_runs}
    if done:
        fig["sweep"]["avg_dev"] = [round(float(runs.avg_dev.mean()), 2), round(float(runs.avg_dev.std()), 2)]
        fig["sweep"]["acc_by_domain"] = {c[4:]: round(float(runs[c].mean()), 1)
                                         for c in runs.columns if c.startswith("acc_")}
    if a.sweep_only:
        runs.to_csv(out / "paper_runs.csv", index=False)
        return finish(fig, out, watch, t_all)
    if done < 16:
        fig["error"] = "too few proxy runs finished to fit"
        return finish(fig, out, watch, t_all)

    # 3. fit + propose on the finished runs (timed in one process), then the main table's target runs
    tov = [*ov, f"sweep.n_runs={done}", "ablations.run=[]", "target.oracle.state=null",
           "target.methods=[equal,natural,regmix,dmo,causalmix_a,causalmix_s]"]
    code = ("import sys, time, json; from causalmix.config import compose; from causalmix.experiments.sweep import"
            " store_for; from causalmix.experiments import mainresults as mr; c = compose(sys.argv[1:]);"
            " r = store_for(c).load(); t = time.perf_counter(); w, s = mr.prepare(c, r);"
            " print('FIT', time.perf_counter() - t);"
            " print('MIX', json.dumps({x.name: x.mixtures for x in s}))")
    t0 = time.perf_counter()
    res = subprocess.run([py, "-c", code, *tov], capture_output=True, text=True, cwd=ROOT, timeout=300)
    (out / "fit.log").write_text(res.stdout + res.stderr)
    lines = {ln.split(" ", 1)[0]: ln.split(" ", 1)[1] for ln in res.stdout.splitlines() if ln[:4] in ("FIT ", "MIX ")}
    fig["fit_propose"] = {"wall_s": round(time.perf_counter() - t0, 1), "exit": res.returncode,
                          "prepare_s": round(float(lines.get("FIT", "nan")), 1)}
    if res.returncode:
        fig["error"] = "fit failed: " + res.stderr.strip().splitlines()[-1] if res.stderr.strip() else "fit failed"
        return finish(fig, out, watch, t_all)
    mixtures = json.loads(lines["MIX"])
    fig["mixtures"] = {s: {m: {d: round(v, 3) for d, v in w.items()} for m, w in ms.items()}
                       for s, ms in mixtures.items()}
    cmds = [[py, "scripts/main_targets.py", f"{i}/{a.workers}", *tov] for i in range(a.workers)]
    w, codes = parallel(cmds, out / "targets", a.target_budget)
    tcfg = compose(tov)
    tr = target_store(tcfg).load()
    jobs = sum(len({json.dumps(v, sort_keys=True) for v in ms.values()}) for ms in mixtures.values()) * tcfg.target.seeds
    fig["targets"] = {"wall_s": round(w, 1), "runs_done": len(tr), "runs_needed": jobs, "exit": codes,
                      "s_per_run_in_process": round(float(tr.wall_seconds.mean()), 2) if len(tr) else None,
                      "wall_s_for_all": round(w * jobs / max(len(tr), 1), 1), "extrapolated": len(tr) < jobs}
    if len(tr):
        fig["targets"]["avg_dev_by_method"] = tr.groupby("method").avg_dev.mean().round(2).to_dict()
        tr.to_csv(out / "paper_targets.csv", index=False)
    runs.to_csv(out / "paper_runs.csv", index=False)
    return finish(fig, out, watch, t_all)


def finish(fig: dict, out: Path, watch: GpuWatch, t_all: float) -> None:
    watch.stop = True
    fig["wall_s"] = round(time.perf_counter() - t_all, 1)
    parts = [fig.get("bases", {}).get("wall_s", 0), fig.get("sweep", {}).get("wall_s_for_all", 0),
             fig.get("fit_propose", {}).get("wall_s", 0), fig.get("targets", {}).get("wall_s_for_all", 0)]
    fig["paper_scale_wall_s_estimate"] = round(sum(parts), 1)
    fig["gpu_mem_peak_mib"] = watch.mem
    fig["gpu_util_mean_pct"] = round(sum(watch.util) / len(watch.util), 1) if watch.util else None
    text = json.dumps(fig, indent=1)
    (out / "paper_check.json").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
