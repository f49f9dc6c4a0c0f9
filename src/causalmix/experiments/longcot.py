"""Long chain-of-thought: the whole CausalMix pipeline again, on a reasoning pool, with a target model of
another shape than the proxies (notebook 07).

The pool's domains are generated multi-step problems whose samples carry worked solutions of varied
length (data/reasoning.py); each domain's benchmark gives the model a held-out problem, decodes greedily,
and checks the final answer (exact match; AvgDev = mean accuracy x 100). Everything else is the main
experiment's machinery: latent pool states and Dirichlet mixtures, the proxy base and its fine-tuning
settings, the measured covariates, the CausalForestDML fit and trust-region policies, RegMix, Grid (real
proxy trials on the target pool) and paired target runs. What differs is stated once, in config as
`long_cot.delta`, merged onto the main config: so a change to the main experiment's settings reaches this
one too, except where the delta overrides it.

Two things differ from the main pool by design. A reasoning domain's noise is a reasoning error (one step
off, carried to a wrong final answer), applied to samples that are not truncated; and the quality
covariate `ws_<domain>` is the share of a pool's samples whose worked solution checks, which a
practitioner can compute for such data.

Runs are stored under `outputs/<scale>/long_cot/` (`runs/` for proxies, `grid/runs/` for Grid's trials,
`target/runs/`), keyed by this experiment's config and the code that computes a run (lineage kind `longcot`).
Runs trained together as one stack are always the same set (a sweep block of run ids; a state's grid; the
seeds of one mixture on one state), so a run's numbers never depend on which others were already stored."""
from __future__ import annotations

import copy
import sys
import time

import numpy as np
import pandas as pd
from omegaconf import DictConfig, OmegaConf
from tqdm.auto import tqdm

from causalmix import lineage
from causalmix.config import config_hash, path
from causalmix.data import domains as dom, pool as pools, reasoning
from causalmix.data.covariates import vocabulary
from causalmix.experiments import proxy
from causalmix.experiments.store import RunStore
from causalmix.experiments.world import World, base_model, rng_for
from causalmix.lm.generate import greedy
from causalmix.lm.train import fit_many

METHODS_ORDER = ("equal", "regmix", "grid", "causalmix_a", "causalmix_s")


def config(cfg: DictConfig) -> DictConfig:
    """The main config with long_cot.delta merged on, writing under <paths.out>/long_cot."""
    out = copy.deepcopy(cfg)
    OmegaConf.set_struct(out, False)          # the delta may add keys (a target state of its own)
    out = OmegaConf.merge(out, OmegaConf.to_container(cfg.long_cot.delta, resolve=True))
    out.paths.out = str(path(cfg, "out") / "long_cot")
    return out


def build_world(cfg: DictConfig) -> World:
    """The reasoning domains split by problem, and each one's benchmark: `long_cot.bench_items` held-out
    problems (World.benches holds reasoning Samples here: the prompt, and the worked solution whose final
    answer is checked)."""
    lc = cfg.long_cot
    specs = OmegaConf.to_container(lc.domains, resolve=True)
    splits = {}
    for name, spec in specs.items():
        samples = reasoning.samples(name, {"n": lc.n, **spec}, cfg.seed)
        splits[name] = dom.split_by_doc(samples, dict(cfg.data.split), seed=cfg.seed)
    rng = np.random.default_rng(cfg.seed + 7)
    benches = {d: [s["bench"][i] for i in sorted(rng.choice(len(s["bench"]), min(lc.bench_items, len(s["bench"])),
                                                             replace=False))] for d, s in splits.items()}
    return World(cfg, splits, {d: "text" for d in specs}, benches, {d: vocabulary(s["pretrain"]) for d, s in splits.items()})


def _spec(world: World, d: str) -> tuple[str, str]:
    spec = world.cfg.long_cot.domains[d]
    return spec.task, spec.get("tag", f"{d}: ")


def make_pool(world: World, state: dict, size: int, rng: np.random.Generator) -> dict:
    """pools.build with the noise knob applied as a reasoning error, once per distinct sample (copies of a
    sample stay copies), to samples whose solution still checks (a truncated one is damaged already)."""
    clean = {d: {**k, "noise": 0.0} for d, k in state.items()}
    pool = pools.build(world.pool_samples(), clean, size, world.families, rng,
                       width=world.cfg.data.state.difficulty_width)
    for d, samples in pool.items():
        task, tag = _spec(world, d)
        memo = {}
        for s in samples:
            if id(s) not in memo:
                bad = reasoning.checks(s, task, tag) and rng.random() < state[d]["noise"]
                memo[id(s)] = reasoning.corrupt(s, task, tag, rng) if bad else s
        pool[d] = [memo[id(s)] for s in samples]
    return pool


def covariates(world: World, scorer, pool: dict, rng) -> dict:
    """The main experiment's covariates, with ws_<domain> the share of solutions that check."""
    row = proxy.measure_pool(world, scorer, pool, rng)
    checked = {d: [reasoning.checks(s, *_spec(world, d)) for s in pool[d]] for d in pool}
    row |= {f"ws_{d}": float(np.mean(v)) for d, v in checked.items()}
    row["pool_ws"] = float(np.mean([x for v in checked.values() for x in v]))
    return row


def score(world: World, model, settings) -> dict:
    """acc_<domain>: % of benchmark problems whose greedy continuation states the right final answer."""
    cfg, out = world.cfg, {}
    for d, items in world.benches.items():
        longest = max(len(s.response) for s in items)
        got = greedy(model, [s.prompt for s in items], longest + 4, device=cfg.device,
                     precision=proxy.precision(settings))
        out[f"acc_{d}"] = 100.0 * float(np.mean([reasoning.answer(g) == reasoning.answer(s.response)
                                                 for g, s in zip(got, items)]))
    out["avg_dev"] = float(np.mean([out[f"acc_{d}"] for d in world.benches]))
    return out


def train_and_score(world: World, base, texts: list[list[str]], seeds: list[int], settings) -> list[dict]:
    models = [copy.deepcopy(base).to(world.cfg.device) for _ in texts]
    stats = fit_many(models, texts, seeds, epochs=settings.epochs, batch_size=settings.batch_size, lr=settings.lr,
                     weight_decay=settings.get("weight_decay", 0.0), device=world.cfg.device,
                     precision=proxy.precision(settings))
    t0 = time.perf_counter()
    scores = [score(world, m, settings) for m in models]
    each = (time.perf_counter() - t0 + sum(st["train_seconds"] for st in stats)) / len(models)
    return [{**sc, "steps": st["steps"], "train_loss": st["final_loss"], "wall_seconds": each}
            for sc, st in zip(scores, stats)]


def _manifest(cfg: DictConfig, what: str) -> dict:
    keys = ["long_cot.domains", "long_cot.n", "long_cot.bench_items", "data.pool_size", "data.split", "data.state",
            "data.covariates", "pretrain", "proxy", "sweep.mixture", "sweep.seed_offset", "sweep.batch", "seed",
            "model.proxy", "model.context"]
    if what != "runs":
        keys += ["target.state_seed", "target.pool_factor", "target.sample_factor", "target.lr", "target.epochs",
                 "target.batch_size", "target.precision", "model.target", "baselines.grid.tilt"]
    spec = {k: OmegaConf.to_container(v, resolve=True) if isinstance(v := OmegaConf.select(cfg, k), DictConfig)
            else v for k in keys}
    return lineage.manifest(spec, "longcot")


def store(cfg: DictConfig, what: str) -> RunStore:
    """what: runs (the sweep) | grid (Grid's proxy trials) | target."""
    man = _manifest(cfg, what)
    root = path(cfg, "out") / ("" if what == "runs" else what)       # as the main stores: runs/, grid/runs/, target/runs/
    return RunStore(root, config_hash({"config": man["config_key"], "code": lineage.digest(man["code"])}))


def prepare(world: World, base, run_id: int) -> tuple[dict, list[str], int]:
    """A proxy run before training: its record's head (mixture, latent state, covariates), texts and seed."""
    cfg = world.cfg
    rng = rng_for(cfg, 11, cfg.sweep.seed_offset + run_id)
    state = pools.draw_state(world.domains, cfg.data.state, rng)
    pool = make_pool(world, state, cfg.data.pool_size, rng)
    mixture = proxy.draw_mixture(cfg, world.domains, pools.composition(state), rng)
    covs = covariates(world, base, pool, rng)
    texts = pools.draw_training_set(pool, mixture, cfg.proxy.samples, rng)
    head = {"run_id": run_id, "seed": int(cfg.seed), **{f"w_{d}": w for d, w in mixture.items()},
            **pools.flat_state(state), **covs}
    return head, texts, int(rng.integers(2**31))


def sweep(world: World, log=print) -> pd.DataFrame:
    """The proxy sweep on reasoning pools (stacked blocks of sweep.batch runs); finished runs are reused."""
    cfg = world.cfg
    st = store(cfg, "runs")
    todo = [i for i in range(cfg.sweep.n_runs) if not st.done(i)]
    if todo:
        lineage.write_manifest(st.dir / "manifest.json", _manifest(cfg, "runs"))
        base = base_model(cfg, "proxy", log=log)
        log(f"long CoT sweep: {cfg.sweep.n_runs - len(todo)} of {cfg.sweep.n_runs} runs reused, {len(todo)} to go")
        size = int(cfg.sweep.batch)
        blocks = sorted({i - i % size for i in todo})      # fixed blocks of run ids: a run's bits never depend
        bar = tqdm(total=len(todo), desc="long-CoT proxy runs", unit="run", file=sys.stderr, mininterval=30)
        for b in blocks:                                    # on which other runs were missing
            block = list(range(b, min(b + size, cfg.sweep.n_runs)))
            heads, texts, seeds = zip(*[prepare(world, base, i) for i in block])
            for i, h, sc in zip(block, heads, train_and_score(world, base, list(texts), list(seeds), cfg.proxy)):
                if not st.done(i):
                    st.write(i, {"config_hash": st.hash, **h, **sc})
                    bar.update(1)
        bar.close()
    return st.load().sort_values("run_id").reset_index(drop=True)


def target_pool(world: World, name: str) -> tuple[dict, dict]:
    """As the main experiment's target pools: drawn with target.state_seed, pool_factor x larger, then the
    named state's pins from target.catalog on top."""
    cfg = world.cfg
    rng = rng_for(cfg, 2, cfg.target.state_seed)
    pins = OmegaConf.to_container(cfg.target.catalog[name], resolve=True) or {}
    state = pools.draw_state(world.domains, cfg.data.state, rng, fixed=pins)
    return state, make_pool(world, state, cfg.data.pool_size * cfg.target.pool_factor, rng)


def _run_id(name: str, m: str, s: int, mix: dict) -> int:
    return int(config_hash({"state": name, "m": m, "s": s, "w": {d: round(w, 6) for d, w in mix.items()}}), 16) % 10**9


def grid_trials(world: World, scorer, name: str, pool: dict, log=print) -> pd.DataFrame:
    """Grid's proxy trials on a state's target pool: each tilted-grid point x baselines.grid.seeds."""
    from causalmix.experiments import grid
    cfg, st = world.cfg, store(world.cfg, "grid")
    jobs = [(p, s, mix) for p, mix in grid.points(cfg, world.domains).items() for s in range(int(cfg.baselines.grid.seeds))]
    todo = jobs if any(not st.done(_run_id(name, *j)) for j in jobs) else []   # one stack, always the whole set
    if todo:
        lineage.write_manifest(st.dir / "manifest.json", _manifest(cfg, "grid"))
        log(f"long CoT grid ({name}): {len(todo)} proxy runs to go")
        texts, seeds = [], []
        for p, s, mix in todo:
            rng = rng_for(cfg, 8, s)
            texts.append(pools.draw_training_set(pool, mix, cfg.proxy.samples, rng))
            seeds.append(int(rng.integers(2**31)))
        for (p, s, mix), sc in zip(todo, train_and_score(world, scorer, texts, seeds, cfg.proxy)):
            if not st.done(_run_id(name, p, s, mix)):
                st.write(_run_id(name, p, s, mix), {"run_id": _run_id(name, p, s, mix), "state": name, "point": p,
                                                    "seed": s, **{f"w_{d}": w for d, w in mix.items()}, **sc})
    return pd.concat([st.read(_run_id(name, *j)) for j in jobs], ignore_index=True)


def propose(world: World, runs: pd.DataFrame, log=print) -> dict:
    """Per target state: its latent state, covariates, Grid's trials and each method's mixture."""
    from causalmix.experiments import grid
    from causalmix.experiments import target as tg
    cfg = world.cfg
    scorer = base_model(cfg, "proxy", log=log)
    fits = tg.fit_methods(cfg, runs, world.domains)
    out = {}
    for name in cfg.target.states:
        state, pool = target_pool(world, name)
        covs = covariates(world, scorer, pool, rng_for(cfg, 6))
        natural = pools.composition(state)
        mixtures, gains = tg.propose(cfg, runs, world.domains, covs, natural, fits=fits)
        trials = grid_trials(world, scorer, name, pool, log=log) if "grid" in cfg.target.methods else None
        if trials is not None:
            mixtures["grid"] = grid.pick(cfg, trials)[1]
        out[name] = {"state": state, "pool": pool, "covariates": covs, "natural": natural, "gains": gains,
                     "mixtures": {m: mixtures[m] for m in cfg.target.methods}, "grid": trials}
    return out


def target_runs(world: World, proposals: dict, log=print) -> pd.DataFrame:
    """Every state x method x seed as a target run (the target base of model.target, fine-tuned with the
    target settings on proxy.samples x sample_factor samples); methods with the same mixture share runs."""
    from causalmix.experiments import mainresults as mr
    cfg, st = world.cfg, store(world.cfg, "target")
    rows, groups = [], []
    for name, p in proposals.items():
        owner = mr.owners(p["mixtures"])
        for m, mix in p["mixtures"].items():
            ids = [_run_id(name, owner[m], s, p["mixtures"][owner[m]]) for s in range(int(cfg.target.seeds))]
            rows += [(rid, name, m, s) for s, rid in enumerate(ids)]
            if owner[m] == m and not all(st.done(r) for r in ids):
                groups.append((name, m, mix, ids))     # one stack: every seed of a (state, mixture), always together
    if groups:
        lineage.write_manifest(st.dir / "manifest.json", _manifest(cfg, "target"))
        base = base_model(cfg, "target", log=log)
        log(f"long CoT target runs: {sum(len(g[3]) for g in groups)} in {len(groups)} stacks to go")
        for name, m, mix, ids in tqdm(groups, desc="long-CoT target stacks", file=sys.stderr, mininterval=30):
            texts = [pools.draw_training_set(proposals[name]["pool"], mix, cfg.proxy.samples * cfg.target.sample_factor,
                                             rng_for(cfg, 3, s)) for s in range(len(ids))]
            scores = train_and_score(world, base, texts, [1000 + s for s in range(len(ids))], cfg.target)
            for s, (rid, sc) in enumerate(zip(ids, scores)):
                if not st.done(rid):
                    st.write(rid, {"run_id": rid, "state": name, "method": m, "seed": s, "device": cfg.device,
                                   **{f"w_{d}": w for d, w in mix.items()}, **sc})
    return pd.concat([st.read(rid).assign(state=name, method=m, seed=s) for rid, name, m, s in rows],
                     ignore_index=True)
