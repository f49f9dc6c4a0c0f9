"""What every chapter does before its science, in one call: `cfg = setup(overrides, run_dir)`.

setup composes the config, sets quiet display defaults, and remembers the config so that `show(fig)` stamps
each figure with it. Three things keep the rendered pages for readers:

- `scrub(text)` replaces the machine's absolute paths (the repo, the run's output and cache directories, the
  home directory) with short names; `log(msg)` prints a scrubbed line (pass it as `log=` to stages that
  report where they read and write);
- `found(lines)` prints a chapter's closing findings as Markdown (with a plain-text copy for text readers);
- under `causalmix reproduce` (which sets CAUSALMIX_PROGRESS to the running notebook's label), progress bars
  go to the terminal the user is waiting at, as plain lines with runs done, N and an ETA, instead of into
  the page.
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from causalmix.config import REPO_ROOT

ENV_PROGRESS = "CAUSALMIX_PROGRESS"     # the running notebook's label, e.g. "[2/4] 02_proxy_sweep"

_state: dict = {"cfg": None, "overrides": [], "roots": []}


# ---------------------------------------------------------------------------------------------- paths

def path_roots(run_dir: str | Path | None = None, cache: str | Path | None = None,
               book: str | Path | None = None) -> list[tuple[str, str]]:
    """(absolute prefix, replacement) pairs, longest prefix first: what `scrub` hides.

    The run's output and cache directories (and the book's) read as their names when they lie outside the
    repo (inside it, as paths relative to the repo root); the repo root itself reads as `.`; home as `~`."""
    repo = str(Path(REPO_ROOT).resolve())
    pairs = []
    for value, name in ((run_dir, "<paths.out>"), (cache, "<paths.cache>"), (book, "<book>")):
        if value:
            p = Path(value)
            p = (p if p.is_absolute() else Path(repo) / p).resolve()
            if not str(p).startswith(repo + os.sep) and str(p) != repo:
                pairs.append((str(p), name))
    pairs.append((repo + os.sep, ""))
    pairs.append((repo, "."))
    home = os.path.expanduser("~")
    if home not in ("", "/"):
        pairs.append((home, "~"))
    return sorted(set(pairs), key=lambda kv: -len(kv[0]))


def scrub(text: str, roots: list[tuple[str, str]] | None = None) -> str:
    """`text` with every known absolute path of this machine replaced (see path_roots)."""
    for prefix, name in (roots if roots is not None else _state["roots"] or path_roots()):
        text = text.replace(prefix, name)
    return text


def log(*parts) -> None:
    """print, scrubbed, to the page; under reproduce the line also reaches the terminal (unscrubbed)."""
    line = " ".join(str(p) for p in parts)
    print(scrub(line), flush=True)
    label = os.environ.get(ENV_PROGRESS)
    if label:                      # the terminal is the user's own machine: real paths help there
        _terminal(f"{label}: {line}")


def display_overrides(overrides) -> list[str]:
    return [scrub(str(o)) for o in overrides]


# ---------------------------------------------------------------------------------------------- setup

def setup(overrides=(), run_dir: str = ""):
    """Compose the chapter's config from papermill's parameters; quiet warnings; pandas display defaults."""
    import warnings
    warnings.filterwarnings("ignore")
    import pandas as pd
    pd.set_option("display.precision", 3)
    pd.set_option("display.width", 160)
    from causalmix.config import compose
    overrides = list(overrides)
    cfg = compose(overrides)
    if run_dir:
        cfg.paths.out = run_dir
    from omegaconf import OmegaConf
    _state.update(cfg=cfg, overrides=overrides,
                  roots=path_roots(OmegaConf.select(cfg, "paths.out"), OmegaConf.select(cfg, "paths.cache")))
    if os.environ.get(ENV_PROGRESS):
        progress_to_terminal()
    # the setup cell is removed from the page; this line stays in the executed notebook as its record
    print(f"scale={cfg.scale.name} overrides={display_overrides(overrides)} out={scrub(str(cfg.paths.out))}")
    return cfg


def show(fig, extra: str = "") -> None:
    """Stamp the figure with the config (scale, overrides, seed), display it, close it."""
    import matplotlib.pyplot as plt
    from IPython.display import display

    from causalmix.book import figures
    if _state["cfg"] is None:
        raise RuntimeError("call causalmix.book.notebook.setup(overrides, run_dir) before show()")
    figures.stamp(fig, _state["cfg"], display_overrides(_state["overrides"]), scrub(extra))
    display(fig)
    plt.close(fig)


def found(lines, heading: str | None = None) -> None:
    """Display a chapter's findings as Markdown: one bullet per line (returns None, so a notebook's last
    line `found(lines)` shows the findings once, not again as the cell's value).

    The output carries text/plain beside text/markdown with the same words, so a text reader (and a test)
    sees the sentences, not `<IPython.core.display.Markdown object>`."""
    from IPython.display import display
    lines = [scrub(str(x)) for x in lines if x]
    md = "\n".join(f"- {x}" for x in lines)
    if heading:
        md = f"{heading}\n\n{md}"
    display({"text/markdown": md, "text/plain": md}, raw=True)


# ---------------------------------------------------------------------------------- progress in the terminal

def _terminal(line: str) -> None:
    """The kernel's own stderr is the terminal that started `causalmix reproduce` (the page never sees it)."""
    stream = sys.__stderr__
    if stream is not None:
        stream.write(line.rstrip() + "\n")
        stream.flush()


def _minutes(s: float) -> str:
    s = max(0.0, float(s))
    return f"{s:.0f} s" if s < 90 else (f"{s / 60:.1f} min" if s < 5400 else f"{s / 3600:.1f} h")


def progress_line(label: str, desc: str, n: int, total: int | None, elapsed: float) -> str:
    """'[2/4] 02_proxy_sweep: proxy runs 8/24 done, 1.0 min so far, ETA 2.0 min'."""
    head = f"{label}: {desc or 'progress'} {n}" + (f"/{total}" if total else "") + " done"
    tail = f", {_minutes(elapsed)} so far"
    if total and 0 < n < total:
        tail += f", ETA {_minutes(elapsed / n * (total - n))}"
    elif total and n >= total:
        tail = f" in {_minutes(elapsed)}"
    return head + tail


_BAR = None


def progress_to_terminal(min_interval: float = 10.0):
    """Make `tqdm.auto.tqdm` (imported by the sweep and the target runs) print plain progress lines to the
    terminal instead of drawing a bar (or a widget) into the notebook. Returns the class installed."""
    global _BAR
    import tqdm.auto
    from tqdm.std import tqdm as std_tqdm

    if _BAR is not None:
        tqdm.auto.tqdm = _BAR
        return _BAR

    class _Devnull:
        def write(self, s):
            return len(s)

        def flush(self):
            pass

    class TerminalProgress(std_tqdm):
        def __init__(self, *args, **kwargs):
            kwargs["file"] = _Devnull()
            kwargs["mininterval"] = min(float(kwargs.get("mininterval", min_interval)), min_interval)
            kwargs["dynamic_ncols"] = False
            self._said = None
            self._t_said = 0.0
            super().__init__(*args, **kwargs)

        def display(self, msg=None, pos=None):
            d = self.format_dict
            n, total = int(d.get("n") or 0), d.get("total")
            now = time.monotonic()
            if self._said == n or (0 < n < (total or n + 1) and now - self._t_said < min_interval):
                return True
            self._said, self._t_said = n, now
            label = os.environ.get(ENV_PROGRESS, "")
            _terminal(progress_line(label, d.get("prefix") or self.desc, n, total, d.get("elapsed", 0.0)))
            return True

    tqdm.auto.tqdm = TerminalProgress
    _BAR = TerminalProgress
    return TerminalProgress
