"""Run the main table's target runs for mixtures decided elsewhere (e.g. on a lent GPU machine).

  python scripts/target_runs.py MIXTURES.json [hydra overrides...]

MIXTURES.json maps method -> {domain: share}, as `target.propose` returned them; the runs land in the
same target store that notebook 04 reads (the store's key does not include the device), each record
saying which device ran it. A machine with another Python needs the code domain's parsed samples under
its own cache key: pass them as CODE_SAMPLES=path.jsonl and they are copied there."""
import json
import os
import shutil
import sys
from pathlib import Path

from omegaconf import OmegaConf

from causalmix.data import domains as dom
from causalmix.experiments import target as tg
from causalmix.config import compose, path
from causalmix.experiments.world import build_world, set_threads

mixtures = json.loads(Path(sys.argv[1]).read_text())
cfg = compose(sys.argv[2:])
set_threads(cfg)
if os.environ.get("CODE_SAMPLES"):
    for name, spec in OmegaConf.to_container(cfg.data.domains).items():
        if spec["kind"] == "stdlib":
            key = dom._cache_key(name, spec, cfg.data.sample_chars, cfg.seed)
            dst = path(cfg, "cache") / "samples" / f"{name}-{key}.jsonl"
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(os.environ["CODE_SAMPLES"], dst)
world = build_world(cfg)
state, pool = tg.target_pool(world)
res = tg.run_targets(world, mixtures, pool)
print(res.groupby("method")[["avg_dev", "wall_seconds"]].agg(["mean", "std", "count"]).round(2).to_string())
