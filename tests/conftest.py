"""Shared fixtures: a tiny config that runs every stage in seconds on the real corpora; the smoke book."""
import os
import shutil
from pathlib import Path

import pytest

# `make test` runs the suite on pytest-xdist workers, one per core. Each worker (and every process it starts:
# CLI subprocesses, papermill kernels) then trains with one torch thread, so two workers share two cores
# instead of fighting over them; a plain `pytest` keeps the config's default.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("CAUSALMIX_THREADS", "1")

from causalmix.config import REPO_ROOT, compose

# The proxy keeps the cpu scale's size (smoke's is smaller, for the smoke book): tests that fine-tune it must see
# it learn (math, a scorer's sanity check), and a run must take long enough (about a second a block) for two
# sweep workers released together to share the blocks and for a kill -9 to land between them.
TINY = ["scale=smoke", "data.pool_size=60", "data.bench_items=8", "sweep.n_runs=3", "pretrain.steps=4",
        "target.seeds=1", "data.covariates.score_samples=40", "baselines.regmix.n_samples=500",
        "baselines.regmix.top_k=5", "proxy.epochs=0.5",
        "model.proxy.n_layer=2", "model.proxy.n_head=4", "model.proxy.n_embd=64"]


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


@pytest.fixture(scope="session")
def smoke_book(tmp_path_factory):
    """The whole smoke-scale `causalmix reproduce` (papermill notebooks, then the strict book build), once
    per session: test_notebooks reads its executed notebooks, test_browser serves its HTML. It runs on a copy
    of book/ (every page, _config.yml, the vendored MathJax) in a temp dir, so the repo's book is untouched.
    Returns (book dir, run dir)."""
    from causalmix.experiments.reproduce import reproduce
    tmp = tmp_path_factory.mktemp("smoke")
    book = tmp / "book"
    shutil.copytree(REPO_ROOT / "book", book, ignore=shutil.ignore_patterns("_build", "executed"))
    overrides = ["scale=smoke", f"paths.out={tmp / 'out'}"]
    run_dir = reproduce(compose(overrides), overrides, book_dir=book)
    return book, run_dir


SCREENSHOTS = pytest.StashKey[list]()


@pytest.fixture(scope="session")
def screenshot_log(request) -> list:
    """Screenshots a test saved; their paths are printed at the end of the run."""
    return request.config.stash.setdefault(SCREENSHOTS, [])


def pytest_terminal_summary(terminalreporter, config):
    """Say where the browser test left its screenshots (they outlive the run in pytest's temp dir)."""
    shots = config.stash.get(SCREENSHOTS, [])
    if shots:
        terminalreporter.write_line("browser test screenshots: " + ", ".join(map(str, shots)))


# Under xdist (`make test`) a session fixture is built once per worker, and the smoke book takes minutes: every
# test in these files runs on one worker, which starts with them (the largest unit of work is handed out first).
BOOK_FILES = ("tests/test_notebooks.py", "tests/test_browser.py", "tests/test_book_pages.py")


# Files whose module fixture several tests read (test_faults: one reference sweep; test_launchers: the two sharded
# sweeps): one worker runs each such file, so the fixture is built once, not once per worker that runs a test.
SHARED_FIXTURE_FILES = ("tests/test_faults.py", "tests/test_launchers.py")


def _in_book_files(nodeid: str) -> bool:
    return nodeid.split("::")[0] in BOOK_FILES


def pytest_collection_modifyitems(config, items):
    """A test that reads the smoke book must live in BOOK_FILES, or a second worker would build the book again.
    The order: the book's files, then tests marked slow, then the rest, so the long ones do not end the run
    on one worker while the other waits (xdist hands out single tests in this order)."""
    for item in items:
        if {"smoke_book", "book_html"} & set(getattr(item, "fixturenames", ())) and not _in_book_files(item.nodeid):
            raise pytest.UsageError(f"{item.nodeid} reads the smoke book: expected its file in tests/conftest.py "
                                    "BOOK_FILES, so that one xdist worker builds the book once")
    rank = lambda it: 0 if _in_book_files(it.nodeid) else 1 if it.get_closest_marker("slow") else 2  # noqa: E731
    items.sort(key=rank)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """xdist's scheduler: one work unit for BOOK_FILES, one per file of SHARED_FIXTURE_FILES, one per test
    elsewhere; the units with the most tests first, then collection order. (`--dist loadgroup` would do this
    from a marker, but with pytest 9 xdist 3.8 drops the group.)"""
    from xdist.scheduler import LoadScopeScheduling

    class OneBookWorker(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            file = nodeid.split("::")[0]
            return "smoke book" if file in BOOK_FILES else file if file in SHARED_FIXTURE_FILES else nodeid

    return OneBookWorker(config, log)
