"""Each method's proposed mixture for a target state, kept once computed, like a run.

A proposal takes seconds to compute, so why keep it? Because the fits behind it are chaotic in the last
bit, and the last bit of a fit depends on the machine (the BLAS kernels numpy and scikit-learn pick for the
CPU). Measured on the shipped `cpu` runs (2026-11-30): moving every number of the sweep's runs by one part
in 10^12 moved CausalMix-A's mixture in all four target states, by up to 0.012 per domain, and one
ablation's (half_runs, scarce_bible) by 0.11. CausalMix-A's step follows the forest's effect estimates
continuously, and a tree's split that flips moves them by a step. So on another CPU the methods would
propose other mixtures, and every target run of those mixtures would be trained again: on a Zen 3 without
bf16 instructions, `make book` from the shipped results trained CausalMix-A's 12 again (4 states x 3 seeds;
four ablations moved too, by up to 0.15 per domain).

A proposal is reused only under the same key, as runs are: the config values that decide it
(`_settings`), the exact inputs (the sweep's runs, and the state's measured covariates and natural
mixture: `inputs_digest`), and the code of the fits (lineage `proposals`, with econml's and
scikit-learn's versions). Proposals are always returned as read back from the store, so one computed here
and one reused agree to the bit.
"""
from __future__ import annotations

import hashlib
from typing import Callable

import pandas as pd
from omegaconf import DictConfig, OmegaConf

from causalmix import lineage
from causalmix.config import config_hash, path
from causalmix.experiments.store import CHECK, RunStore

SEP = "|"     # a record's columns: <method>|w_<domain> and <method>|gain


def _settings(cfg: DictConfig, what: str) -> dict:
    """The config values a proposal depends on (beyond its inputs): the estimator, policies and baselines,
    which methods are proposed, the ablations for what=ablations, and the seed (the forest's random_state)."""
    import econml
    import sklearn
    spec = {"what": what, "seed": cfg.seed, "domains": list(cfg.data.domains), "methods": list(cfg.target.methods),
            **{k: OmegaConf.to_container(cfg[k], resolve=True) for k in ("estimator", "policy", "baselines")},
            "versions": {"econml": econml.__version__, "sklearn": sklearn.__version__}}
    if what == "ablations":     # which variants, each's delta (not its seed count), and its share of the runs
        ab = OmegaConf.to_container(cfg.ablations, resolve=True)
        spec["ablations"] = {"run": ab["run"], "variants": {n: {k: v for k, v in ab["variants"][n].items() if k != "seeds"}
                                                            for n in ab["run"]}}
        spec["n_runs"] = int(cfg.sweep.n_runs)
    return spec


def manifest(cfg: DictConfig, what: str) -> dict:
    return lineage.manifest(_settings(cfg, what), "proposals")


def store(cfg: DictConfig, what: str = "main") -> RunStore:
    """what: main (chapter 4's methods, target.propose) | ablations (chapter 6's variants, ablations.propose)."""
    return RunStore(path(cfg, "out") / "proposals" / what, lineage.store_key(manifest(cfg, what)))


def inputs_digest(runs: pd.DataFrame, covariates: dict, natural: dict) -> str:
    """The bits a proposal is computed from: the runs table (values and column names, in run order) and the
    state's covariates and natural mixture."""
    ordered = runs.sort_values("run_id").reset_index(drop=True) if "run_id" in runs else runs
    h = hashlib.sha256(pd.util.hash_pandas_object(ordered, index=False).to_numpy().tobytes())
    h.update(repr(list(ordered.columns)).encode())
    h.update(lineage.digest({"covariates": covariates, "natural": natural}).encode())
    return h.hexdigest()[:16]


def record_id(state: str, digest: str) -> int:
    return int(config_hash({"state": state, "inputs": digest}), 16) % 10**9


def to_record(state: str, rid: int, mixtures: dict[str, dict], gains: dict[str, float]) -> dict:
    row = {"run_id": rid, "state": state}
    for m, mix in mixtures.items():
        row.update({f"{m}{SEP}w_{d}": float(w) for d, w in mix.items()})
    row.update({f"{m}{SEP}gain": float(g) for m, g in gains.items()})
    return row


def from_record(row: dict) -> tuple[dict[str, dict], dict[str, float]]:
    mixtures, gains = {}, {}
    for k, v in row.items():
        if SEP not in k or k == CHECK:
            continue
        m, field = k.split(SEP, 1)
        if field == "gain":
            gains[m] = float(v)
        else:
            mixtures.setdefault(m, {})[field[2:]] = float(v)
    return mixtures, gains


def kept(cfg: DictConfig, what: str, digests: dict[str, str],
         compute: Callable[[list[str]], dict[str, tuple[dict, dict]]], log=print) -> dict[str, tuple[dict, dict]]:
    """{state: (mixtures, gains)} for the states of `digests` ({state: inputs_digest}): stored ones read back;
    the others computed at once by compute(missing states), stored, and read back."""
    st = store(cfg, what)
    ids = {s: record_id(s, d) for s, d in digests.items()}
    missing = [s for s, rid in ids.items() if not st.done(rid)]
    if missing:
        lineage.write_manifest(st.dir / "manifest.json", manifest(cfg, what))
        log(f"proposals ({what}): fitting for {len(missing)} of {len(ids)} states")
        fresh = compute(missing)
        for s in missing:
            st.write(ids[s], to_record(s, ids[s], *fresh[s]))
    return {s: from_record(st.read(rid).iloc[0].to_dict()) for s, rid in ids.items()}
