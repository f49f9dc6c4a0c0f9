"""Run the notebooks with papermill, then build the book strictly from their executed copies.

The book never executes anything itself: what it shows is exactly what this run produced, and the
run's config sits next to its results (run_dir/config.yaml) so the pages can be traced to a config.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from causalmix.book import glance, notebook, reproducibility
from causalmix.book.notebook import path_roots, scrub
from causalmix.config import REPO_ROOT
from causalmix.errors import ConfigError

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
    """Execute the notebooks into book/executed/, write the generated pages and the toc, build the book;
    return the run dir. The terminal says which notebook and stage is running, runs done with an ETA, and at
    the end the book's path and the total time."""
    notebooks_dir = Path(notebooks_dir) if notebooks_dir is not None else REPO_ROOT / "notebooks"
    book_dir = Path(book_dir) if book_dir is not None else REPO_ROOT / "book"
    chosen = select_notebooks(notebooks_dir, notebooks or OmegaConf.select(cfg, "reproduce.notebooks"))
    pages = select_pages(book_dir, OmegaConf.select(cfg, "reproduce.pages"))
    every = select_notebooks(notebooks_dir)

    start = time.time()
    run_dir = run_dir_of(cfg)
    earlier = _earlier_timings(run_dir)
    save_config(cfg, overrides, run_dir)
    roots = path_roots(run_dir, OmegaConf.select(cfg, "paths.cache"), book_dir)
    executed = book_dir / "executed"
    executed.mkdir(parents=True, exist_ok=True)
    key = config_key(cfg)
    sources, kept = chapters_to_run(every, chosen, executed, key)

    print(f"causalmix reproduce: scale={OmegaConf.select(cfg, 'scale.name') or OmegaConf.select(cfg, 'scale')}, "
          f"{len(sources)} of {len(every)} notebooks to execute, results in {run_dir}", flush=True)
    # the planner's closing line says every notebook runs; which do is printed above and on the page
    plan_lines = [ln for ln in _plan(cfg) if not ln.startswith("notebooks:")]
    for line in plan_lines[1:]:
        print(f"  {line}", flush=True)

    import papermill  # slow import; only needed here

    params = {"overrides": list(overrides), "run_dir": str(run_dir.resolve())}
    jobs = int(OmegaConf.select(cfg, "reproduce.jobs") or 1)
    threads = int(OmegaConf.select(cfg, "threads") or 1)

    def execute(k: int, src: Path) -> float:
        dst = executed / src.name
        label = f"[{k}/{len(sources)}] {src.name}"
        before = earlier.get(src.stem)
        print(f"{label} ..." + (f" (took {_dur(before)} last time)" if before else ""), flush=True)
        # the kernel's environment: its progress label and, beside other notebooks, its share of the threads
        env = {notebook.ENV_PROGRESS: label, **({"CAUSALMIX_THREADS": str(max(1, threads // jobs))} if jobs > 1 else {})}
        t0 = time.time()
        try:
            with _kernel_env(env) as started:
                papermill.execute_notebook(
                    str(src), str(dst), parameters=params, kernel_name="python3",
                    cwd=str(notebooks_dir), progress_bar=False,
                    # ipykernel 7 logs a TCP-transport warning per kernel start; keep the run's output to one line each
                    extra_arguments=["--IPKernelApp.log_level=ERROR",
                                     # fd 2 stays the terminal: progress lines (book.notebook) reach the user,
                                     # never the page (ipykernel would otherwise copy fd output into the cell)
                                     "--IPKernelApp.capture_fd_output=False"],
                    # nbclient's hooks: the kernel is up (its environment is no longer needed); each section
                    # heading the notebook reaches is the stage now running
                    on_notebook_start=started, on_cell_start=_stage_printer(label),
                )
        except Exception as e:  # a cell error, a dead kernel, a bad parameters cell: all stop the run
            if isinstance(e, papermill.PapermillExecutionError):
                what = f"{e.ename}: {_first_line(e.evalue)}"
            else:
                what = f"{type(e).__name__}: {_first_line(str(e))}"
            raise ReproduceError(f"notebook {src.name} failed ({what}); see the executed copy {dst}") from None
        seconds = round(time.time() - t0, 1)
        finish_notebook(dst, roots, {"config_key": key, "executed": time.strftime("%Y-%m-%d %H:%M"),
                                     "seconds": seconds})
        print(f"{label}: done in {_dur(seconds)} ({_dur(time.time() - start)} since start)", flush=True)
        return seconds

    t_notebooks = time.time()
    timings = run_in_order(sources, prerequisites(every, sources), execute, jobs)
    side_by_side = {"jobs": jobs, "seconds": round(time.time() - t_notebooks, 1)} if sources else None

    chapters, stages = [], []
    for src in every:
        if src.stem in timings:
            chapters.append({"name": src.stem, "status": "executed in this build"})
            stages.append({"stage": src.stem, "seconds": timings[src.stem], "when": "this build"})
        elif src in kept:
            meta = kept[src]
            chapters.append({"name": src.stem, "status": f"kept from the build of {meta.get('executed', '?')} "
                                                         "(same config; not executed again)"})
            stages.append({"stage": src.stem, "seconds": meta.get("seconds"), "when": f"build of {meta.get('executed', '?')}"})
    glance.write(run_dir, book_dir)
    info = reproducibility.collect(cfg, overrides, run_dir, plan_lines, chapters, stages, side_by_side)
    reproducibility.write(book_dir, info)
    write_toc(book_dir, [executed / s.name for s in every if (executed / s.name).exists()],
              [*pages, reproducibility.PAGE])
    if build:
        print("book: building the HTML (jupyter-book, strict) ...", flush=True)
        t0 = time.time()
        index = build_book(book_dir)
        timings["book_build"] = round(time.time() - t0, 1)
        print(f"book: {index}", flush=True)
        print(f"book: open it in a browser: file://{index.resolve()}  ({_dur(time.time() - start)} in all)", flush=True)
    else:
        print(f"notebooks done ({_dur(time.time() - start)} in all)", flush=True)
    write_timings(run_dir, cfg, timings, time.time() - start)
    return run_dir


def _dur(s) -> str:
    s = float(s)
    return f"{s:.1f} s" if s < 90 else (f"{s / 60:.1f} min" if s < 5400 else f"{s / 3600:.2f} h")


_KERNEL_START = threading.Lock()


@contextlib.contextmanager
def _kernel_env(env: dict):
    """Set `env` for the kernel this thread is about to start; yield the hook that restores the environment
    once the kernel is up (nbclient's on_notebook_start). Kernels start one at a time, so two notebooks run
    side by side each start with their own environment."""
    _KERNEL_START.acquire()
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    held = [True]

    def started(**_):
        if held[0]:
            held[0] = False
            for k, v in old.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
            _KERNEL_START.release()
    try:
        yield started
    finally:
        started()


def prerequisites(every: list[Path], sources: list[Path]) -> dict[str, set[str]]:
    """For each notebook to run, the notebooks to run that must finish before it starts. A notebook states
    them in its metadata (`causalmix: {after: [...]}`, names of earlier notebooks: what it needs done first);
    one that states nothing waits for every earlier notebook. Chapters kept from an earlier build are done."""
    import json
    names, running = [s.stem for s in every], {s.stem for s in sources}
    out = {}
    for src in sources:
        after = json.loads(src.read_text()).get("metadata", {}).get("causalmix", {}).get("after")
        earlier = names[:names.index(src.stem)]
        if after is None:
            after = earlier
        bad = [a for a in after if a not in earlier]
        if bad:
            raise ReproduceError(f"{src.name}: metadata causalmix.after names {bad}; expected earlier notebooks "
                                 f"of {names}")
        out[src.stem] = {a for a in after if a in running}
    return out


def run_in_order(sources: list[Path], needs: dict[str, set[str]], execute, jobs: int) -> dict[str, float]:
    """Run execute(k, source) for every source, at most `jobs` at once, each once its prerequisites are done,
    in the given order where there is a choice. The first failure stops new starts; the running ones finish,
    then it is raised. Returns {notebook: seconds}."""
    from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
    todo, done, timings, running, error = list(enumerate(sources, 1)), set(), {}, {}, None
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        while todo or running:
            while error is None and len(running) < jobs:
                ready = next(((k, s) for k, s in todo if needs[s.stem] <= done), None)
                if ready is None:
                    break
                todo.remove(ready)
                running[pool.submit(execute, *ready)] = ready[1]
            if not running:
                break
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for f in finished:
                src = running.pop(f)
                try:
                    timings[src.stem] = f.result()
                    done.add(src.stem)
                except Exception as e:  # noqa: BLE001  kept, raised once the running notebooks end
                    error = error or e
    if error is not None:
        raise error
    return timings


def _stage_printer(label: str):
    """An nbclient on_cell_start hook: print each section heading (##, ###) as the notebook reaches it."""
    def hook(cell=None, cell_index=None, **_):
        if cell is None or cell.get("cell_type") != "markdown":
            return
        for line in str(cell.get("source", "")).splitlines():
            m = re.match(r"^(#{2,3})\s+(.*\S)", line)
            if m:
                print(f"{label}: {m.group(2)}", flush=True)
                return
    return hook


def _plan(cfg: DictConfig) -> list[str]:
    """The dry-run planner's lines (what is reused, what recomputed), taken before anything runs."""
    try:
        from causalmix.experiments.dryrun import plan
        return plan(cfg, "reproduce")
    except Exception as e:  # noqa: BLE001  a partial config (tests) cannot be planned; the build goes on
        return ["dry run", f"no plan: {type(e).__name__}: {_first_line(str(e))}"]


def _earlier_timings(run_dir: Path) -> dict:
    import json
    try:
        return json.loads((run_dir / "timings.json").read_text()).get("stages_s", {})
    except (OSError, ValueError, AttributeError):
        return {}


def config_key(cfg: DictConfig) -> str:
    """What an executed notebook was made with: the resolved config, less `reproduce` (which chapters ran)."""
    import hashlib
    c = OmegaConf.to_container(cfg, resolve=True)
    c.pop("reproduce", None)
    return hashlib.sha256(OmegaConf.to_yaml(OmegaConf.create(c)).encode()).hexdigest()[:16]


def chapters_to_run(every: list[Path], chosen: list[Path], executed: Path, key: str):
    """The chosen notebooks, plus any other chapter whose executed copy is missing or was made with another
    config (so the book is whole and of one config). Returns (to run, {kept notebook: its metadata})."""
    import nbformat
    run, kept = [], {}
    for src in every:
        if src in chosen:
            run.append(src)
            continue
        dst = executed / src.name
        why = None
        if not dst.exists():
            why = "it has no executed copy yet"
        else:
            try:
                meta = nbformat.read(dst, as_version=4).metadata.get("causalmix", {})
            except Exception:  # noqa: BLE001  unreadable: execute again
                meta = {}
            if meta.get("config_key") != key:
                why = "its executed copy was made with another config"
            else:
                kept[src] = dict(meta)
        if why:
            print(f"{src.stem}: executed too, since {why}", flush=True)
            run.append(src)
    return run, kept


def _scrub_obj(x, roots):
    if isinstance(x, str):
        return scrub(x, roots)
    if isinstance(x, list):
        return [_scrub_obj(v, roots) for v in x]
    if isinstance(x, dict):
        return {k: (v if str(k).startswith("image/") else _scrub_obj(v, roots)) for k, v in x.items()}
    return x


def finish_notebook(path: Path, roots, meta: dict) -> None:
    """Make an executed notebook fit to publish: no absolute path of this machine in any text (images are
    left alone), papermill's parameter cells removed from the page (tag remove-cell), and a record of the
    config it was made with (metadata.causalmix) so a later one-chapter rebuild knows whether to keep it."""
    import nbformat
    nb = nbformat.read(path, as_version=4)
    nb = nbformat.from_dict(_scrub_obj(nb, roots))
    for cell in nb.cells:
        tags = cell.metadata.get("tags", [])
        if ("parameters" in tags or "injected-parameters" in tags) and "remove-cell" not in tags:
            cell.metadata["tags"] = [*tags, "remove-cell"]
    nb.metadata["causalmix"] = meta
    nbformat.write(nb, path)


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
    if path.exists() and path.read_text() != text and not _same_but_chapters(path, cfg):
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


def _same_but_chapters(path: Path, cfg: DictConfig) -> bool:
    """The saved config differs from cfg only in `reproduce` (which chapters run): not a config change."""
    try:
        return config_key(OmegaConf.load(path)) == config_key(cfg)
    except Exception:  # noqa: BLE001  unreadable: treat as changed, and keep it
        return False


def select_notebooks(notebooks_dir: Path, names=None) -> list[Path]:
    """All notebooks/NN_*.ipynb in order, or the named subset ("01_data_pool" or "01_data_pool.ipynb")."""
    found = sorted(p for p in notebooks_dir.glob("[0-9][0-9]_*.ipynb"))
    if isinstance(names, str):       # reproduce.notebooks=03_causal_fit (one name, or a comma list)
        names = [n.strip() for n in names.split(",") if n.strip()]
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
