"""outputs/<scale>/results.json: the run's headline numbers in one file, merged key by key as each
notebook computes its part (the book's landing page and scripts read it)."""
from __future__ import annotations

import json
import math
import os
import subprocess
import time
from pathlib import Path

from omegaconf import DictConfig

from causalmix.config import REPO_ROOT, path


def results_file(cfg: DictConfig) -> Path:
    return path(cfg, "out") / "results.json"


def _clean(x):
    """JSON without NaN: a number that could not be computed is null."""
    if isinstance(x, float):
        return None if not math.isfinite(x) else x
    if isinstance(x, dict):
        return {str(k): _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    if hasattr(x, "item"):          # numpy scalars
        return _clean(x.item())
    return x


def _commit() -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT, capture_output=True,
                              text=True, timeout=10).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def update(cfg: DictConfig, **keys) -> Path:
    """Merge `keys` into results.json (atomically), stamping scale, date and commit."""
    from causalmix.experiments.store import file_lock
    f = results_file(cfg)
    f.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(f.with_name(f"{f.name}.lock")):   # notebooks run side by side (reproduce.jobs): no lost update
        doc = load(cfg)
        doc.update(_clean(keys))
        doc |= {"scale": str(cfg.scale.name), "seed": int(cfg.seed), "updated": time.strftime("%Y-%m-%d %H:%M"),
                "commit": _commit()}
        tmp = f.with_name(f"{f.name}.tmp{os.getpid()}")
        tmp.write_text(json.dumps(doc, indent=1, sort_keys=True))
        tmp.replace(f)
    return f


def load(cfg: DictConfig) -> dict:
    f = results_file(cfg)
    return json.loads(f.read_text()) if f.is_file() else {}
