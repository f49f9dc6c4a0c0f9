"""The repo stands alone: no file points at a `shared/` folder beside the clone, which a user's clone lacks.

What the suite once read from there is now inside the repo: the paper's known facts on the book's method
page (citing arXiv 2607.01104), the RegMix authors' runs in tests/data/regmix/ with their licence."""
import re
import subprocess
from pathlib import Path

from causalmix.config import REPO_ROOT

# `../shared`, `shared/PAPER.md`, `"shared" / "regmix"`; not the word in prose ("a shared clone", "shared seeds").
PATTERN = re.compile(r"\.\./shared\b|(?<![\w./-])shared/|[\"']shared[\"']\s*/")


def repo_files() -> list[Path]:
    """Tracked files plus new ones git does not ignore (so an uncommitted file is checked too)."""
    out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                         cwd=REPO_ROOT, capture_output=True, text=True, check=True).stdout
    return sorted({REPO_ROOT / p for p in out.split("\0") if p})


def test_pattern_catches_what_it_should():
    for bad in ("see ../shared/PAPER.md", "(`shared/PILOT.md`)", 'ROOT / "shared" / "regmix"', "shared/regmix"):
        assert PATTERN.search(bad), bad
    for fine in ("inside a shared clone", "fits shared by states", "a seed's luck, shared by every method",
                 "/dev/shared_mem", "tests/data/regmix/"):
        assert not PATTERN.search(fine), fine


def test_no_file_refers_to_a_shared_folder_outside_the_repo():
    me = Path(__file__).resolve()
    hits = []
    for f in repo_files():
        if f.resolve() == me or not f.is_file():
            continue
        try:
            text = f.read_text(encoding="utf-8")
        except UnicodeDecodeError:          # binary files (fonts, images) carry no references
            continue
        for n, line in enumerate(text.splitlines(), 1):
            if PATTERN.search(line):
                hits.append(f"{f.relative_to(REPO_ROOT)}:{n}: {line.strip()[:120]}")
    assert not hits, "references to a shared/ folder outside the repo (a user's clone has none):\n" + "\n".join(hits)
