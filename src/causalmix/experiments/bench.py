"""`causalmix bench [overrides]`: how fast each stage runs on this machine, as one JSON document.

What is counted (model FLOPs, not what an implementation happens to execute):
- N = parameters that take part in a matmul per character: every block's Linear weights plus the
  (tied) output head, V x d. Embedding look-ups, biases, LayerNorms and the attention scores
  (QK^T, AV) are not counted, so `mfu` is a lower bound on how busy the matmul units are.
- training: 6 N per trained character (non-pad targets);
- scoring: 2 N per position a benchmark item needs: its prompt once plus each choice's characters
  (per-choice scoring re-reads the prompt for each choice; that repeat is not counted as useful work);
- covariates: 2 N per scored pool character.
Attention scores are reported beside it (`mfu_incl_attention`): 4 d L FLOPs per causal (query, key) pair
forward, 3x that when training. At d = 64, head size 16 and up to 128 characters they add only 13-20% to
the FLOPs, but PyTorch's CPU attention kernels run them far below the matmul peak: in a profile they take
about 40% of a proxy's training and scoring time, which is most of why a d = 64 proxy's `mfu` is low.
`mfu` = achieved FLOP/s over the matmul peak measured in the same process, in the dtype the stage
runs in. The proxy and target models are freshly initialised at the configured size (speed does not
depend on the weights), so the bench never pretrains. Optional knobs: +bench.reps=3 (median of reps; proxy batches),
+bench.target_steps=40, +bench.fit_runs=512, +bench.timings=PATH (a JSON of book stage wall times),
+bench.scaling=true (how a proxy run's time grows with the pool size, and fit + policy time with the number of
runs: the measurements the book's cost figure draws; +bench.scaling_runs=[64,128] sets the run
counts), +bench.only_scaling=true (skip the rest), +bench.out=FILE (also write the JSON there).
"""
from __future__ import annotations

import contextlib
import copy
import json
import os
import platform
import resource
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from omegaconf import OmegaConf

from causalmix.data import benchmarks, covariates, pool as pools
from causalmix.experiments import proxy
from causalmix.config import path
from causalmix.lm import kernels
from causalmix.lm.model import GPT
from causalmix.experiments.world import build_world, gpt_config, rng_for, set_threads


def _opt(cfg, key, default):
    v = OmegaConf.select(cfg, f"bench.{key}", default=None)
    return default if v is None else v


def matmul_params(model: GPT) -> int:
    n = model.head.weight.numel()
    for b in model.blocks:
        n += sum(m.weight.numel() for m in b.modules() if isinstance(m, torch.nn.Linear))
    return n


def matmul_peak(dtype: torch.dtype, reps: int = 7) -> dict:
    """Best median rate over a few square sizes: the dense-matmul roof this process can reach. bf16 is
    measured as the models multiply: fp32 operands under bf16 autocast (the CPU's bf16 GEMM, or on a CPU
    without one the fp32 route of `causalmix.lm.kernels`)."""
    best = {}
    for n in (512, 1024, 2048):
        a, b = torch.randn(n, n), torch.randn(n, n)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype == torch.bfloat16):
            a @ b
            ts = []
            for _ in range(reps):
                t0 = time.perf_counter()
                a @ b
                ts.append(time.perf_counter() - t0)
        rate = 2 * n ** 3 / statistics.median(ts)
        if rate > best.get("flops", 0):
            best = {"flops": rate, "size": n}
    return best


def _stage(chars: float, flops: float, seconds: float, peak: float, dtype: str, attn: float, **extra) -> dict:
    return {"seconds": seconds, "chars": int(chars), "chars_per_s": chars / seconds,
            "flops": flops, "flops_per_s": flops / seconds, "dtype": dtype, "mfu": flops / seconds / peak,
            "attention_flops": attn, "mfu_incl_attention": (flops + attn) / seconds / peak, **extra}


def pairs_per_char(texts: list[str], context: int) -> float:
    """Causal (query, key) pairs per input character of these texts: attention work grows with length."""
    t = np.array([min(len(x), context + 1) - 1 for x in texts], dtype=float)
    return float((t * (t + 1) / 2).sum() / max(t.sum(), 1))


def item_positions(benches, context: int) -> tuple[int, int, int]:
    """(positions needed: prompt once + choice characters, scored characters, causal attention pairs)."""
    need = scored = pairs = 0
    for items in benches.values():
        for it in items:
            p = min(len(it.prompt), context)
            need, pairs = need + p, pairs + p * (p + 1) // 2
            for c in it.choices:
                n = max(0, min(len(it.prompt) + len(c), context + 1) - max(len(it.prompt), 1))
                need, scored = need + n, scored + n
                pairs += sum(p + j + 1 for j in range(max(n - 1, 0)))
    return need, scored, pairs


def _precision(settings) -> str:
    return str(settings.get("precision", "fp32")) if hasattr(settings, "get") else "fp32"


def _kw(settings) -> dict:
    """Pass precision only to code that knows it (the bench also measures the code before it did)."""
    import inspect
    return {"precision": _precision(settings)} if "precision" in inspect.signature(benchmarks.evaluate).parameters \
        else {}


@contextlib.contextmanager
def _counting(calls: list, context: int):
    """Count the characters the covariates hand to the scoring loop (the texts are drawn inside)."""
    orig = covariates.char_stats

    def counting(model, texts, *a, **k):
        calls.append((sum(min(len(t), context + 1) - 1 for t in texts), pairs_per_char(texts, context)))
        return orig(model, texts, *a, **k)
    covariates.char_stats = counting
    try:
        yield
    finally:
        covariates.char_stats = orig


def proxy_bench(cfg, world, peaks: dict, reps: int) -> dict:
    """Proxy runs as the sweep runs them: `reps` batches of sweep.batch runs (one stacked model when > 1);
    per-run medians for covariates and scoring, the median batch's training time shared by its runs."""
    from causalmix.lm import train
    torch.manual_seed(cfg.seed)
    base = GPT(gpt_config(cfg, "proxy")).eval()
    N = matmul_params(base)
    kw = _kw(cfg.proxy)
    dtype = _precision(cfg.proxy)
    peak = peaks[dtype]["flops"]
    need, scored, pairs = item_positions(world.benches, cfg.model.context)
    attn = 4 * base.config.n_embd * base.config.n_layer     # FLOPs per (query, key) pair: QK^T and AV, all heads
    size = int(OmegaConf.select(cfg, "sweep.batch", default=1) or 1)
    size = size if hasattr(train, "fit_many") else 1
    s = cfg.proxy
    fit_kw = dict(epochs=s.epochs, batch_size=s.batch_size, lr=s.lr, weight_decay=s.get("weight_decay", 0.0),
                  device=cfg.device, **kw)
    runs, batches = [], []
    for b in range(reps):
        texts = []
        for r in range(size):
            rng = rng_for(cfg, 1, 10_000 + b * size + r)
            state = pools.draw_state(world.domains, cfg.data.state, rng)
            pool = pools.build(world.pool_samples(), state, cfg.data.pool_size, world.families, rng,
                               width=cfg.data.state.difficulty_width)
            mixture = proxy.draw_mixture(cfg, world.domains, pools.composition(state), rng)
            calls = []
            t0 = time.perf_counter()
            with _counting(calls, cfg.model.context):
                proxy.measure_pool(world, base, pool, rng)
            runs.append({"cov": (time.perf_counter() - t0, calls[0][0]), "cov_pairs": calls[0][1]})
            texts.append(pools.draw_training_set(pool, mixture, s.samples, rng))
        models = [copy.deepcopy(base) for _ in texts]
        t0 = time.perf_counter()
        if size > 1:
            st = train.fit_many(models, texts, list(range(size)), **fit_kw)
        else:
            st = [train.fit(models[0], texts[0], seed=b, **fit_kw)]
        batches.append((time.perf_counter() - t0, sum(x["tokens"] for x in st), size,
                        statistics.mean(pairs_per_char(t, cfg.model.context) for t in texts)))
        for m, run in zip(models, runs[-size:]):
            t0 = time.perf_counter()
            benchmarks.evaluate(m, world.benches, device=cfg.device, **kw)
            run["score"] = time.perf_counter() - t0
    med = lambda f: statistics.median(f(x) for x in runs)  # noqa: E731
    tr_s = statistics.median(t / n for t, _, n, _ in batches)
    tr_c = statistics.median(c / n for _, c, n, _ in batches)
    tr_p, cv_p = statistics.mean(b[3] for b in batches), statistics.mean(x["cov_pairs"] for x in runs)
    cv_s, cv_c, sc_s = med(lambda x: x["cov"][0]), med(lambda x: x["cov"][1]), med(lambda x: x["score"])
    total = tr_s + cv_s + sc_s
    out = {"params_matmul": N, "params_total": base.n_params(), "runs": len(runs), "batch": size,
           "train": _stage(tr_c, 6 * N * tr_c, tr_s, peak, dtype, 3 * attn * tr_p * tr_c, steps=st[0]["steps"],
                           note=f"{size} proxies trained at once; seconds and chars per proxy"),
           "score": _stage(scored, 2 * N * need, sc_s, peak, dtype, attn * pairs, positions_needed=need,
                           items=sum(len(v) for v in world.benches.values())),
           "covariates": _stage(cv_c, 2 * N * cv_c, cv_s, peak, dtype, attn * cv_p * cv_c)}
    flops = sum(out[k]["flops"] for k in ("train", "score", "covariates"))
    attn_all = sum(out[k]["attention_flops"] for k in ("train", "score", "covariates"))
    out["run"] = {"seconds": total, "flops_per_s": flops / total, "mfu": flops / total / peak, "dtype": dtype,
                  "mfu_incl_attention": (flops + attn_all) / total / peak,
                  "note": "train + score + covariates per proxy run (median stage times)"}
    return out


def target_bench(cfg, world, peaks: dict) -> dict:
    from causalmix.lm.train import fit
    torch.manual_seed(cfg.seed)
    model = GPT(gpt_config(cfg, "target"))
    N = matmul_params(model)
    dtype = _precision(cfg.target)
    steps = int(_opt(cfg, "target_steps", 40))
    rng = rng_for(cfg, 3, 0)
    state = pools.draw_state(world.domains, cfg.data.state, rng)
    pool = pools.build(world.pool_samples(), state, cfg.data.pool_size, world.families, rng,
                       width=cfg.data.state.difficulty_width)
    texts = pools.draw_training_set(pool, {d: 1 / len(world.domains) for d in world.domains},
                                    steps * cfg.target.batch_size, rng)
    t0 = time.perf_counter()
    st = fit(model, texts, steps=steps, batch_size=cfg.target.batch_size, lr=cfg.target.lr, seed=0,
             device=cfg.device, **_kw(cfg.target))
    s = time.perf_counter() - t0
    full_steps = int(np.ceil(cfg.target.epochs * cfg.proxy.samples * cfg.target.sample_factor / cfg.target.batch_size))
    return {"params_matmul": N, "params_total": model.n_params(),
            "train": _stage(st["tokens"], 6 * N * st["tokens"], s, peaks[dtype]["flops"], dtype,
                            12 * model.config.n_embd * model.config.n_layer * pairs_per_char(texts, cfg.model.context)
                            * st["tokens"], steps=steps,
                            est_full_run_train_seconds=s / steps * full_steps)}


def fit_policy_bench(cfg, domains: list[str], n_runs: int) -> dict:
    """The configured estimator and both policies on synthetic runs with a known state-dependent return."""
    import pandas as pd

    from causalmix.causal.policy import recommend
    from causalmix.experiments.target import fit_effect_model
    rng = np.random.default_rng(0)
    K = len(domains)
    W = rng.dirichlet(np.ones(K), size=n_runs)
    df = pd.DataFrame(W, columns=[f"w_{d}" for d in domains])
    for d in domains:
        df[f"nl_{d}"], df[f"ws_{d}"] = rng.normal(2, 0.3, n_runs), rng.uniform(0.5, 1, n_runs)
        df[f"hes_{d}"] = rng.normal(20, 2, n_runs)
        df[f"dup_{d}"], df[f"len_{d}"] = rng.uniform(0, 0.5, n_runs), rng.normal(100, 10, n_runs)
    df[[f"share_{d}" for d in domains]] = rng.dirichlet(np.full(K, 4.0), size=n_runs)   # the training-set terms read them
    for c in ("nl", "ws", "hes"):
        df[f"pool_{c}"] = df[[f"{c}_{d}" for d in domains]].mean(axis=1)
    beta = rng.normal(0, 5, K)
    df[cfg.estimator.outcome] = 35 + W @ beta + 4 * (W * (df[[f"ws_{d}" for d in domains]].to_numpy() - 0.75)).sum(1) \
        + rng.normal(0, 1, n_runs)
    df["run_id"] = np.arange(n_runs)
    t0 = time.perf_counter()
    model = fit_effect_model(cfg, df, domains)
    t1 = time.perf_counter()
    X = df[model.inputs].iloc[:1]
    ref = np.ones(K) / K
    p = cfg.policy
    for pol in ("analytic", "search"):
        recommend(model, X, ref, policy=pol, radius=p.radius, z=p.z, floor=p.floor,
                  n_candidates=p.search_candidates, seed=cfg.seed)
    t2 = time.perf_counter()
    return {"runs": n_runs, "estimator": cfg.estimator.name, "fit_seconds": t1 - t0, "policy_seconds": t2 - t1,
            "seconds": t2 - t0}


def scaling(cfg, world, peaks: dict) -> dict:
    """Wall time against the two sizes a user turns: the pool (and the samples a proxy trains on, which
    follow it) and the number of proxy runs. One batch of sweep.batch proxies per pool size; fit + policy on
    synthetic runs per run count. The sweep's wall time is then about n_runs x run seconds + fit seconds."""
    pool = []
    for f in (0.25, 0.5, 1.0, 2.0):
        c = copy.deepcopy(cfg)
        c.data.pool_size = max(8, int(round(cfg.data.pool_size * f)))
        c.proxy.samples = max(8, int(round(cfg.proxy.samples * f)))
        r = proxy_bench(c, world, peaks, 1)
        pool.append({"pool_size": c.data.pool_size, "samples": c.proxy.samples, "steps": r["train"]["steps"],
                     "run_seconds": r["run"]["seconds"], "train_seconds": r["train"]["seconds"],
                     "score_seconds": r["score"]["seconds"], "covariates_seconds": r["covariates"]["seconds"]})
    fit = [fit_policy_bench(cfg, world.domains, int(n)) for n in _opt(cfg, "scaling_runs", (64, 128, 256, 512))]
    return {"pool": pool, "fit_policy": [{k: f[k] for k in ("runs", "fit_seconds", "policy_seconds", "seconds")}
                                          for f in fit]}


def book_stages(cfg) -> dict:
    f = _opt(cfg, "timings", None)
    f = Path(f) if f else path(cfg, "out") / "timings.json"
    if f.exists():
        from causalmix.config import REPO_ROOT
        src = f.resolve().relative_to(REPO_ROOT) if f.resolve().is_relative_to(REPO_ROOT) else f.name
        return {"source": str(src), **json.loads(f.read_text())}
    return {"seconds": None, "source": None,
            "reason": f"no stage timing file at {f}: `causalmix reproduce` prints each notebook's wall time "
                      "('NN_name.ipynb: S s') but does not write them; pass +bench.timings=FILE.json to include one"}


def bench(cfg) -> dict:
    set_threads(cfg)
    reps = int(_opt(cfg, "reps", 3))
    load0 = os.getloadavg()
    t0 = time.perf_counter()
    peaks = {"fp32": matmul_peak(torch.float32), "bf16": matmul_peak(torch.bfloat16)}
    world = build_world(cfg)
    from causalmix.experiments.results import _commit
    out = {"scale": cfg.scale.name, "date": time.strftime("%Y-%m-%d %H:%M"), "commit": _commit(),
           "device": cfg.device, "threads": torch.get_num_threads(),
           "torch": torch.__version__, "cpu": platform.processor() or platform.machine(),
           "cpu_capability": torch.backends.cpu.get_cpu_capability(),
           "bf16_matmul": kernels.route(),     # native: the CPU's bf16 GEMM; fp32: widened (causalmix.lm.kernels)
           "peak_flops": {k: v["flops"] for k, v in peaks.items()}}
    if _opt(cfg, "scaling", False) or _opt(cfg, "only_scaling", False):
        out["scaling"] = scaling(cfg, world, peaks)
    if _opt(cfg, "only_scaling", False):
        out["bench_seconds"] = time.perf_counter() - t0
        return out
    out["proxy"] = proxy_bench(cfg, world, peaks, reps)
    out["proxy_run"] = out["proxy"].pop("run")
    out["target"] = target_bench(cfg, world, peaks)
    out["fit_policy"] = fit_policy_bench(cfg, world.domains, int(_opt(cfg, "fit_runs", 512)))
    late = {"fp32": matmul_peak(torch.float32), "bf16": matmul_peak(torch.bfloat16)}
    out["peak_flops_end"] = {k: v["flops"] for k, v in late.items()}   # the load may change while the bench runs
    out["book_stages"] = book_stages(cfg)
    out["peak_memory_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out["bench_seconds"] = time.perf_counter() - t0
    out["loadavg_1min"] = {"start": load0[0], "end": os.getloadavg()[0], "cores": os.cpu_count()}
    out["counting"] = __doc__.split("What is counted")[1].split("`mfu` =")[0].strip().replace("\n", " ")
    return out


def main(overrides: list[str]) -> None:
    """Print the JSON; +bench.out=FILE also writes it there (book/measurements/cost-<scale>.json is the one the
    book's reproducibility page draws its cost figure from)."""
    from causalmix.config import compose
    cfg = compose(overrides)
    doc = json.dumps(bench(cfg), indent=2)
    print(doc)
    dest = _opt(cfg, "out", None)
    if dest:
        Path(dest).parent.mkdir(parents=True, exist_ok=True)
        Path(dest).write_text(doc + "\n")
