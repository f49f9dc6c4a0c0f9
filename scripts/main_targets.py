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
jobs = []
for s in states:
    cands = dict(s.mixtures) if s.name in cfg.target.states else {}
    if s.name == cfg.target.oracle.state:
        same = lambda a, b: all(abs(a[d] - b[d]) < 1e-6 for d in a)  # noqa: E731  (as mr.run_oracle)
        cands.update({k: w for k, w in tg.oracle_candidates(cfg, world.domains).items()
                      if not any(same(w, p) for p in s.mixtures.values())})
        cands.update(s.mixtures)
    seen = []                       # methods proposing one mixture share its runs (mr.run_shared)
    for m, w in cands.items():
        if not any(all(abs(w[d] - v[d]) < 1e-9 for d in w) for v in seen):
            seen.append(w)
            jobs.append((s, m, w))
if list(cfg.ablations.run):
    proposals = ab.propose(cfg, runs, states, log=lambda *_: None)
    same = lambda a, b: all(abs(a[d] - b[d]) < 1e-9 for d in a)  # noqa: E731  (as ab.run: those use CausalMix-S's)
    jobs += [(s, m, w) for s in states for m, w in proposals.get(s.name, {}).items()
             if not same(w, s.mixtures[ab.BASE])]
mine = jobs[part::parts]
print(f"part {part}/{parts}: {len(mine)} of {len(jobs)} (state, candidate) pairs x {cfg.target.seeds} seeds", flush=True)
for s, m, w in mine:
    tg.run_targets(world, {m: w}, s.pool, s.name)
print("done", flush=True)
