"""The proxy sweep as a Hydra app, so Hydra's multirun and its launcher plugins can spread it out.

    python -m causalmix.experiments.sweep_app -m hydra/launcher=cores sweep.shard='range(0,4)' sweep.n_shards=4 scale=cpu

Its config is the same conf/ tree as `causalmix sweep` (conf/config.yaml), so every override works the same
way. Each job runs one shard (sweep.shard of sweep.n_shards) into the one run store under paths.out; the
store's claims make sure no run is computed twice even when shards overlap or a job is resubmitted. The
job that finds the whole sweep in the store writes the RegMix/Olmix export, and the analysis (notebooks,
`causalmix reproduce`) reads the store whole. Launcher configs: conf/hydra/launcher/ (cores = joblib on one
machine, slurm = submitit on a SLURM cluster, local = submitit's local executor, for tests)."""
from __future__ import annotations

import sys

import hydra
from omegaconf import DictConfig

from causalmix.config import CONF_DIR, validate
from causalmix.errors import ConfigError


def sweep_job(cfg: DictConfig) -> dict:
    """One Hydra job: this shard's runs into the store; the export once the store holds every run."""
    from causalmix.experiments.sweep import export, run_sweep, store_for
    validate(cfg)
    df = run_sweep(cfg)
    store = store_for(cfg)
    missing = [i for i in range(cfg.sweep.n_runs) if not store.done(i)]
    out = {"shard": int(cfg.sweep.shard), "n_shards": int(cfg.sweep.n_shards), "runs": df.run_id.tolist(),
           "store": str(store.dir), "missing": len(missing), "export": None}
    if not missing:
        mix, _ = export(cfg)
        out["export"] = str(mix.parent)
    print(f"shard {out['shard']} of {out['n_shards']}: {len(df)} runs in {store.dir}; "
          + (f"whole sweep in, exported to {out['export']}" if not missing
             else f"{len(missing)} runs of the sweep still to come from other shards"))
    return out


@hydra.main(config_path=str(CONF_DIR), config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> dict:
    try:
        return sweep_job(cfg)
    except ConfigError as e:
        print(f"causalmix sweep_app: error: {e}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
