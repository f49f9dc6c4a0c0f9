"""Shared fixtures: a tiny config that runs every stage in seconds on the real corpora."""
from pathlib import Path

import pytest

from causalmix.config import REPO_ROOT, compose

TINY = ["scale=smoke", "data.pool_size=60", "data.bench_items=8", "sweep.n_runs=3", "pretrain.steps=4",
        "target.seeds=1", "data.covariates.score_samples=40", "baselines.regmix.n_samples=500",
        "baselines.regmix.top_k=5", "proxy.epochs=0.5"]


@pytest.fixture
def tiny_cfg(tmp_path):
    return compose(TINY + [f"paths.out={tmp_path / 'out'}"])


def fresh_cache(root: Path) -> Path:
    """An empty cache holding only what set-up leaves (the fetched corpora, inputs rather than results):
    parsed samples and base models start anew."""
    cache = root / "cache"
    cache.mkdir(parents=True)
    for sub in ("corpora", "downloads"):
        if (REPO_ROOT / ".cache" / sub).exists():
            (cache / sub).symlink_to(REPO_ROOT / ".cache" / sub)
    return cache
