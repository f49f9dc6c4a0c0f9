"""Run the notebooks with papermill, then build the book strictly from their executed copies.

The book never executes anything itself: what it shows is exactly what this run produced, and the
run's config sits next to its results (run_dir/config.yaml) so the pages can be traced to a config.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from causalmix.errors import ConfigError

from causalmix.config import REPO_ROOT

# Strict: warnings are errors, every missing reference warns, and all warnings are reported before failing.
# --all rebuilds every page so a warning on an unchanged page is not skipped by the incremental build.
BOOK_FLAGS = ["--warningiserror", "--nitpick", "--keep-going", "--all"]


class ReproduceError(RuntimeError):
    """A notebook or the strict book build failed; the message is one line saying which and where to look."""


def reproduce(
    cfg: DictConfig,
    overrides: list[str],
    notebooks: list[str] | None = None,
    build: bool = True,
    notebooks_dir: Path | str | None = None,
    book_dir: Path | str | None = None,
) -> Path:
    """Execute the notebooks into book/executed/, write the toc, build the book; return the run dir."""
    notebooks_dir = Path(notebooks_dir) if notebooks_dir is not None else REPO_ROOT / "notebooks"
    book_dir = Path(book_dir) if book_dir is not None else REPO_ROOT / "book"
    sources = select_notebooks(notebooks_dir, notebooks or OmegaConf.select(cfg, "reproduce.notebooks"))
    pages = select_pages(book_dir, OmegaConf.select(cfg, "reproduce.pages"))

    run_dir = run_dir_of(cfg)
    save_config(cfg, overrides, run_dir)

    import papermill  # slow import; only needed here

    executed = book_dir / "executed"
    executed.mkdir(parents=True, exist_ok=True)
    params = {"overrides": list(overrides), "run_dir": str(run_dir.resolve())}
    timings, start = {}, time.time()
    for k, src in enumerate(sources, 1):
        dst = executed / src.name
        t0 = time.time()
        print(f"[{k}/{len(sources)}] {src.name} ...", flush=True)
        try:
            papermill.execute_notebook(
                str(src), str(dst), parameters=params, kernel_name="python3",
                cwd=str(notebooks_dir), progress_bar=False,
                # ipykernel 7 logs a TCP-transport warning per kernel start; keep the run's output to one line each
                extra_arguments=["--IPKernelApp.log_level=ERROR"],
            )
        except Exception as e:  # a cell error, a dead kernel, a bad parameters cell: all stop the run
            if isinstance(e, papermill.PapermillExecutionError):
                what = f"{e.ename}: {_first_line(e.evalue)}"
            else:
                what = f"{type(e).__name__}: {_first_line(str(e))}"
            raise ReproduceError(f"notebook {src.name} failed ({what}); see the executed copy {dst}") from None
        timings[src.stem] = round(time.time() - t0, 1)
        print(f"[{k}/{len(sources)}] {src.name}: {timings[src.stem]:.1f} s", flush=True)

    write_toc(book_dir, [executed / s.name for s in sources], pages)
    if build:
        t0 = time.time()
        index = build_book(book_dir)
        timings["book_build"] = round(time.time() - t0, 1)
        print(f"book: {index} ({time.time() - start:.0f} s in all)")
    write_timings(run_dir, cfg, timings, time.time() - start)
    return run_dir


def write_timings(run_dir: Path, cfg: DictConfig, stages: dict, total: float) -> Path:
    """run_dir/timings.json: wall seconds per notebook and for the book build (read by `causalmix bench`)."""
    import json
    import os
    f = run_dir / "timings.json"
    doc = {"scale": str(OmegaConf.select(cfg, "scale.name")), "cores": os.cpu_count(),
           "finished": time.strftime("%Y-%m-%dT%H:%M:%S"), "stages_s": stages, "total_s": round(total, 1)}
    tmp = f.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc, indent=1))
    tmp.replace(f)
    return f


def _first_line(text: str | None) -> str:
    lines = (text or "").strip().splitlines()
    return lines[0] if lines else ""


def run_dir_of(cfg: DictConfig) -> Path:
    """cfg.paths.out, relative to the repo root unless absolute."""
    out = OmegaConf.select(cfg, "paths.out")
    if not out:
        raise ConfigError("paths.out is missing; expected the run's output directory")
    path = Path(str(out))
    return path if path.is_absolute() else REPO_ROOT / path


def save_config(cfg: DictConfig, overrides: list[str], run_dir: Path) -> Path:
    """Write run_dir/config.yaml and overrides.txt; an older, different config.yaml is kept, not lost."""
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / "config.yaml"
    text = OmegaConf.to_yaml(cfg, resolve=True)
    if path.exists() and path.read_text() != text:
        stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(path.stat().st_mtime))
        old = run_dir / f"config.{stamp}.yaml"
        n = 1
        while old.exists():
            old, n = run_dir / f"config.{stamp}-{n}.yaml", n + 1
        path.rename(old)
        print(f"config changed: previous config.yaml kept as {old}", flush=True)
    path.write_text(text)
    (run_dir / "overrides.txt").write_text("".join(f"{o}\n" for o in overrides))
    return path


def select_notebooks(notebooks_dir: Path, names=None) -> list[Path]:
    """All notebooks/NN_*.ipynb in order, or the named subset ("01_data_pool" or "01_data_pool.ipynb")."""
    found = sorted(p for p in notebooks_dir.glob("[0-9][0-9]_*.ipynb"))
    if not names:
        if not found:
            raise ConfigError(f"no notebooks matching NN_*.ipynb in {notebooks_dir}")
        return found
    by_name = {p.name: p for p in found} | {p.stem: p for p in found}
    missing = [str(n) for n in names if str(n) not in by_name]
    if missing:
        raise ConfigError(
            f"reproduce.notebooks names {missing}; expected some of {[p.stem for p in found]}"
        )
    chosen = {by_name[str(n)] for n in names}
    return sorted(chosen)


def select_pages(book_dir: Path, names=None) -> list[str]:
    """Markdown pages for the toc besides intro.md: those named in the config, else every book/*.md."""
    if names:
        pages = [str(n).removesuffix(".md") for n in names]
        missing = [p for p in pages if not (book_dir / f"{p}.md").exists()]
        if missing:
            raise ConfigError(f"reproduce.pages names {missing}; expected .md files in {book_dir}")
        return [p for p in pages if p != "intro"]
    return sorted(p.stem for p in book_dir.glob("*.md") if p.stem != "intro")


def write_toc(book_dir: Path, executed: list[Path], pages: list[str]) -> Path:
    """Write book/_toc.yml listing intro, the executed notebooks, then the extra pages: only files that exist."""
    lines = [
        "# Written by causalmix.experiments.reproduce from the notebooks it executed; the toc never lists a missing file.",
        "format: jb-book",
        "root: intro",
    ]
    entries = [p.relative_to(book_dir).with_suffix("").as_posix() for p in executed] + pages
    if entries:
        lines.append("chapters:")
        lines += [f"  - file: {e}" for e in entries]
    path = book_dir / "_toc.yml"
    path.write_text("\n".join(lines) + "\n")
    return path


def build_book(book_dir: Path) -> Path:
    """Build the HTML book with the venv's jupyter-book, strictly; return _build/html/index.html."""
    exe = Path(sys.executable).parent / "jupyter-book"
    cmd = [str(exe) if exe.exists() else "jupyter-book", "build", str(book_dir), *BOOK_FLAGS]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        log = re.sub(r"\x1b\[[0-9;]*m", "", proc.stdout + proc.stderr)  # drop colour codes
        warnings = [ln for ln in log.splitlines() if "WARNING" in ln or "ERROR" in ln]
        sys.stderr.write("\n".join(warnings) + "\n" if warnings else log[-8000:])
        raise ReproduceError(f"strict book build of {book_dir} failed (exit {proc.returncode}); see the warnings above")
    return book_dir / "_build" / "html" / "index.html"
