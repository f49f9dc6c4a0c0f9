"""How well does the instrument rank held-out proxy runs under a config, and what is its ceiling?

  python scripts/instrument_check.py [hydra overrides...]

For a lever that would retire the shipped runs (a larger pool, longer proxies), before anyone pays to
recompute the book with it. It runs the config's sweep (into the run store under `paths.out`; finished
runs are reused), scores the causal model's and RegMix's 5-fold held-out Spearman on each outcome as
chapter 3 does (`power.heldout.repeats` fold assignments), retrains the sweep's first `power.pool_retest`
runs on a pool drawn afresh at their state (chapter 2's fresh-pool retest, stored beside the sweep) and
gives the ceiling that the pool's own draw puts on any model of the state and the mixture. One JSON
document on stdout, also written to `<paths.out>/instrument_check.json`. Use a `paths.out` of its own:
`paths.out=outputs/pool4000 data.pool_size=4000 proxy.epochs=1` (book/method.md gives the measurements)."""
import inspect
import json
import math
import sys
import time

from causalmix.causal.estimator import validate_runs
from causalmix.config import compose, path
from causalmix.experiments import power, validation
from causalmix.errors import ConfigError
from causalmix.experiments.sweep import prepare, run_sweep

overrides = sys.argv[1:]
try:
    cfg = compose(overrides)
except ConfigError as e:
    sys.exit(str(e))
folds, repeats = validation.heldout_plan(cfg)
need = inspect.signature(validate_runs).parameters["min_rows"].default        # the estimator's fewest runs
n_runs = int(cfg.sweep.n_runs)
if n_runs - math.ceil(n_runs / folds) < need or not 0 <= int(cfg.power.pool_retest) <= n_runs:
    sys.exit(f"sweep.n_runs={n_runs}: expected at least {math.ceil(need * folds / (folds - 1))} for "
             f"{folds}-fold checks (power.heldout.folds), and power.pool_retest={cfg.power.pool_retest} at most that")
log = lambda *a: print(*a, file=sys.stderr, flush=True)  # noqa: E731
t0 = time.perf_counter()
world, base = prepare(cfg, log=log)          # the corpora parsed once, for the sweep and the retrains alike
runs = run_sweep(cfg, world=world, log=log)
out = {"overrides": overrides, "runs": len(runs), "sweep_s": round(time.perf_counter() - t0, 1),
       "folds": folds, "repeats": repeats, "outcomes": {}}
for y in ("avg_dev", "avg_margin"):
    _, sc = validation.heldout_check(compose(overrides + [f"estimator.outcome={y}"]), runs, world.domains,
                                     folds=folds, repeats=repeats)
    sc = sc.set_index("model")
    out["outcomes"][y] = {"sd": float(runs[y].std(ddof=1)),
                          "heldout": {m: [round(float(sc.loc[m, "spearman"]), 4), round(float(sc.loc[m, "spearman_sd"]), 4)]
                                      for m in sc.index}}
n = int(cfg.power.pool_retest)
if n:
    t1 = time.perf_counter()
    fresh = power.pool_retest(world, base, runs, n, store=power.pool_retest_store(cfg), log=log)
    out["pool_retest_s"] = round(time.perf_counter() - t1, 1)
    for _, r in power.pool_summary(runs, None, fresh, seed=cfg.seed).iterrows():
        out["outcomes"][r.outcome]["fresh_pool"] = {
            "runs": int(r.runs), "spearman": round(r["Spearman, fresh pool"], 4),
            "spearman_ci": [round(r["Spearman lo"], 4), round(r["Spearman hi"], 4)],
            "fresh_pool_sd": round(r["fresh-pool SD"], 4), "ceiling": round(r["ceiling, state known"], 4),
            "ceiling_ci": [round(r["ceiling lo"], 4), round(r["ceiling hi"], 4)]}
out["total_s"] = round(time.perf_counter() - t0, 1)
text = json.dumps(out, indent=1)
(path(cfg, "out") / "instrument_check.json").write_text(text + "\n")
print(text)
