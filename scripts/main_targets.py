"""Fill the main results' target store from several processes before the book runs notebook 04.

  python scripts/main_targets.py PART/PARTS [hydra overrides...]     e.g. 0/2 and 1/2 in two shells

Each process fits the same models on the finished sweep (deterministic), proposes the same mixtures, and
runs its share of the (state, candidate) pairs: every configured state's methods, plus the oracle state's
grid, plus the ablations' variants (notebook 06). Notebooks 04 and 06 then find every run in the store and
only read it. Useful where one process cannot
keep the cores busy (small models on a few threads) or on a machine with several devices."""
import sys

from causalmix.config import compose
from causalmix.experiments import ablations as ab
from causalmix.experiments import mainresults as mr
from causalmix.experiments import target as tg
from causalmix.experiments.sweep import store_for
from causalmix.experiments.world import set_threads

part, parts = (int(x) for x in sys.argv[1].split("/"))
cfg = compose(sys.argv[2:])
set_threads(cfg)
runs = store_for(cfg).load()
if len(runs) < cfg.sweep.n_runs:
    sys.exit(f"main_targets: error: the sweep has {len(runs)} of {cfg.sweep.n_runs} runs; expected a finished sweep")
world, states = mr.prepare(cfg, runs)
groups = []                    # exactly the calls notebooks 04 and 06 make: mr.run_states, mr.run_oracle, ab.run
for s in states:
    if s.name in cfg.target.states:
        groups.append((s, s.mixtures))
    if s.name == cfg.target.oracle.state:
        groups.append((s, mr.oracle_mixtures(cfg, world.domains, s)))
if list(cfg.ablations.run):
    proposals = ab.propose(cfg, runs, states, log=lambda *_: None)
    groups += [(s, {ab.BASE: s.mixtures[ab.BASE], **proposals[s.name]}) for s in states if s.name in proposals]
jobs, seen = [], set()
for s, mixtures in groups:     # only the runs each call trains itself (the others share them: mr.run_shared)
    for m, owner in mr.owners(mixtures).items():
        if owner == m and (s.name, m) not in seen:
            seen.add((s.name, m))
            jobs.append((s, m, mixtures[m]))
mine = jobs[part::parts]
print(f"part {part}/{parts}: {len(mine)} of {len(jobs)} (state, candidate) pairs x {cfg.target.seeds} seeds", flush=True)
for s, m, w in mine:
    tg.run_targets(world, {m: w}, s.pool, s.name)
print("done", flush=True)
