"""reproduce: parameters reach the notebooks, configs are never silently lost, the strict book builds."""

import json
import os
import shutil
from pathlib import Path

import nbformat
import pytest
from omegaconf import OmegaConf

from causalmix.errors import ConfigError
from causalmix.experiments.reproduce import (
    REPO_ROOT, ReproduceError, build_book, prerequisites, reproduce, run_in_order, save_config, select_notebooks,
    write_toc,
)


def make_notebook(path: Path, body: str, title: str) -> None:
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell('overrides = []\nrun_dir = ""')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [nbformat.v4.new_markdown_cell(f"# {title}"), params, nbformat.v4.new_code_cell(body)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


@pytest.fixture
def fake_repo(tmp_path):
    """A notebooks dir with one notebook and a book dir with the project's real (strict) config."""
    nbs, book = tmp_path / "notebooks", tmp_path / "book"
    nbs.mkdir()
    book.mkdir()
    shutil.copy(REPO_ROOT / "book" / "_config.yml", book / "_config.yml")
    for extra in ("_ext", "_mathjax"):          # what _config.yml names: its local Sphinx extension, vendored MathJax
        if (REPO_ROOT / "book" / extra).is_dir():
            shutil.copytree(REPO_ROOT / "book" / extra, book / extra)
    # the real intro links to the real notebooks; this fake book has only its own
    (book / "intro.md").write_text("# A test book\n\nOne fake notebook follows.\n")
    make_notebook(
        nbs / "01_hello.ipynb",
        "import json, os, pathlib\n"
        "pathlib.Path(run_dir, 'params.json').write_text(json.dumps({'overrides': overrides, 'run_dir': run_dir, 'cwd': os.getcwd()}))\n"
        "print('hello')",
        "Hello",
    )
    return tmp_path, nbs, book


def cfg_for(run_dir: Path, **extra):
    return OmegaConf.create({"paths": {"out": str(run_dir)}, "scale": "smoke", **extra})


def test_reproduce_passes_parameters_and_keeps_old_configs(fake_repo, capsys):
    tmp, nbs, book = fake_repo
    run = tmp / "run"
    out = reproduce(cfg_for(run), ["scale=smoke"], build=False, notebooks_dir=nbs, book_dir=book)
    assert out == run
    got = json.loads((run / "params.json").read_text())
    assert got == {"overrides": ["scale=smoke"], "run_dir": str(run.resolve()), "cwd": str(nbs)}
    assert OmegaConf.load(run / "config.yaml").scale == "smoke"
    assert (run / "overrides.txt").read_text() == "scale=smoke\n"
    assert (book / "executed" / "01_hello.ipynb").exists()
    assert (book / "_toc.yml").read_text().count("- file: executed/") == 1
    assert (book / "generated" / "reproducibility.md").exists()      # the generated page is listed and present
    assert "01_hello.ipynb:" in capsys.readouterr().out
    assert not (book / "_build").exists()

    # A different config into the same run dir: the old config.yaml is kept, and said so.
    reproduce(cfg_for(run, scale="paper"), ["scale=paper"], build=False, notebooks_dir=nbs, book_dir=book)
    kept = list(run.glob("config.*.yaml"))
    assert len(kept) == 1 and OmegaConf.load(kept[0]).scale == "smoke"
    assert OmegaConf.load(run / "config.yaml").scale == "paper"
    assert "previous config.yaml kept as" in capsys.readouterr().out
    assert json.loads((run / "params.json").read_text())["overrides"] == ["scale=paper"]

    # The same config again: nothing new is kept.
    save_config(cfg_for(run, scale="paper"), ["scale=paper"], run)
    assert len(list(run.glob("config.*.yaml"))) == 1


def test_strict_book_build(fake_repo, capsys):
    tmp, nbs, book = fake_repo
    reproduce(cfg_for(tmp / "run"), [], notebooks_dir=nbs, book_dir=book)
    index = book / "_build" / "html" / "index.html"
    assert index.exists() and str(index) in capsys.readouterr().out
    assert "Hello" in (book / "_build" / "html" / "executed" / "01_hello.html").read_text()


def test_strict_book_build_fails_on_a_bad_reference(fake_repo, capsys):
    _, _, book = fake_repo
    (book / "intro.md").write_text("# Intro\n\nSee {ref}`no-such-label` and ![a figure](missing.png).\n")
    write_toc(book, [], [])
    with pytest.raises(ReproduceError, match="strict book build"):
        build_book(book)
    err = capsys.readouterr().err
    assert "no-such-label" in err and "missing.png" in err


def test_failing_notebook_stops_with_one_line(fake_repo):
    tmp, nbs, book = fake_repo
    make_notebook(nbs / "02_broken.ipynb", "raise ValueError('pool is empty')", "Broken")
    (nbs / "01_hello.ipynb").unlink()
    with pytest.raises(ReproduceError) as e:
        reproduce(cfg_for(tmp / "run"), [], notebooks_dir=nbs, book_dir=book)
    msg = str(e.value)
    assert "\n" not in msg
    assert "02_broken.ipynb" in msg and "pool is empty" in msg
    assert str(book / "executed" / "02_broken.ipynb") in msg
    assert not (book / "_build").exists()


def test_select_notebooks_subset_and_bad_name(tmp_path):
    for name in ("02_b.ipynb", "01_a.ipynb", "notes.ipynb"):
        (tmp_path / name).write_text("{}")
    assert [p.name for p in select_notebooks(tmp_path)] == ["01_a.ipynb", "02_b.ipynb"]
    assert [p.name for p in select_notebooks(tmp_path, ["02_b", "01_a.ipynb"])] == ["01_a.ipynb", "02_b.ipynb"]
    with pytest.raises(ConfigError, match="03_c"):
        select_notebooks(tmp_path, ["03_c"])
    with pytest.raises(ConfigError, match="NN_"):
        select_notebooks(tmp_path / "nothing")


def test_missing_paths_out_is_a_config_error(fake_repo):
    _, nbs, book = fake_repo
    with pytest.raises(ConfigError, match="paths.out"):
        reproduce(OmegaConf.create({"scale": "smoke"}), [], notebooks_dir=nbs, book_dir=book)


def test_write_toc_lists_only_given_files(tmp_path):
    (tmp_path / "executed").mkdir()
    toc = write_toc(tmp_path, [tmp_path / "executed" / "01_a.ipynb"], ["references"])
    assert OmegaConf.load(toc).chapters == [{"file": "executed/01_a"}, {"file": "references"}]
    assert OmegaConf.load(write_toc(tmp_path, [], [])).root == "intro"


# ---- notebooks side by side (reproduce.jobs) --------------------------------------------------------------

def _stamped(path: Path, after=None) -> Path:
    """A notebook that records when it ran, in which kernel environment, and sleeps a moment."""
    make_notebook(path, "import json, os, pathlib, time\n"
                        "t0 = time.time(); time.sleep(2)\n"
                        "pathlib.Path(run_dir, pathlib.Path(os.getcwd()).name + '-' + %r + '.json').write_text(json.dumps("
                        "{'start': t0, 'end': time.time(), 'label': os.environ.get('CAUSALMIX_PROGRESS'), "
                        "'threads': os.environ.get('CAUSALMIX_THREADS')}))" % path.stem, path.stem)
    if after is not None:
        nb = nbformat.read(path, as_version=4)
        nb.metadata["causalmix"] = {"after": after}
        nbformat.write(nb, path)
    return path


def test_notebooks_run_side_by_side_once_what_they_need_is_done(fake_repo, capsys):
    """01 first; 02 and 03 need only 01, so they run together, each kernel with its own label and one of the two
    threads; 04 states nothing, so it waits for every earlier notebook."""
    tmp, nbs, book = fake_repo
    (nbs / "01_hello.ipynb").unlink()
    _stamped(nbs / "01_a.ipynb", after=[])
    _stamped(nbs / "02_b.ipynb", after=["01_a"])
    _stamped(nbs / "03_c.ipynb", after=["01_a"])
    _stamped(nbs / "04_d.ipynb")
    run = tmp / "run"
    reproduce(cfg_for(run, threads=2, reproduce={"jobs": 2}), [], build=False, notebooks_dir=nbs, book_dir=book)
    got = {p.stem.split("-")[1]: json.loads(p.read_text()) for p in run.glob("notebooks-*.json")}
    assert set(got) == {"01_a", "02_b", "03_c", "04_d"}
    a, b, c, d = (got[k] for k in ("01_a", "02_b", "03_c", "04_d"))
    assert a["end"] <= min(b["start"], c["start"])                       # both waited for 01
    assert b["start"] < c["end"] and c["start"] < b["end"]                # and ran at the same time
    assert d["start"] >= max(b["end"], c["end"])                          # 04 waited for all three
    assert {g["threads"] for g in got.values()} == {"1"}                  # 2 threads shared by 2 jobs
    assert {k: g["label"] for k, g in got.items()} == {"01_a": "[1/4] 01_a.ipynb", "02_b": "[2/4] 02_b.ipynb",
                                                       "03_c": "[3/4] 03_c.ipynb", "04_d": "[4/4] 04_d.ipynb"}
    assert "CAUSALMIX_PROGRESS" not in os.environ                         # the parent's environment is restored
    timings = json.loads((run / "timings.json").read_text())["stages_s"]
    assert set(timings) == {"01_a", "02_b", "03_c", "04_d"}


def test_one_job_runs_in_order_with_the_configs_threads(fake_repo):
    tmp, nbs, book = fake_repo
    (nbs / "01_hello.ipynb").unlink()
    _stamped(nbs / "01_a.ipynb", after=[])
    _stamped(nbs / "02_b.ipynb", after=[])
    run = tmp / "run"
    reproduce(cfg_for(run, reproduce={"jobs": 1}), [], build=False, notebooks_dir=nbs, book_dir=book)
    a, b = (json.loads(next(run.glob(f"notebooks-{k}.json")).read_text()) for k in ("01_a", "02_b"))
    assert a["end"] <= b["start"]
    assert a["threads"] == b["threads"] == os.environ.get("CAUSALMIX_THREADS")   # the kernels inherit, no share


def test_prerequisites_default_to_every_earlier_notebook_and_skip_kept_ones(tmp_path):
    paths = [_stamped(tmp_path / "01_a.ipynb"), _stamped(tmp_path / "02_b.ipynb", after=["01_a"]),
             _stamped(tmp_path / "03_c.ipynb")]
    assert prerequisites(paths, paths) == {"01_a": set(), "02_b": {"01_a"}, "03_c": {"01_a", "02_b"}}
    assert prerequisites(paths, paths[1:]) == {"02_b": set(), "03_c": {"02_b"}}     # 01 kept from a build
    bad = _stamped(tmp_path / "04_d.ipynb", after=["05_e"])
    with pytest.raises(ReproduceError, match=r"04_d.ipynb: metadata causalmix.after names \['05_e'\]; expected "
                                             r"earlier notebooks"):
        prerequisites([*paths, bad], [bad])


def test_a_failure_stops_new_starts_and_lets_the_running_ones_finish():
    import threading
    import time
    srcs = [Path(f"0{i}_{n}.ipynb") for i, n in enumerate("abcd", 1)]
    needs = {"01_a": set(), "02_b": set(), "03_c": {"01_a"}, "04_d": set()}
    ran, lock = [], threading.Lock()

    def execute(k, src):
        with lock:
            ran.append(src.stem)
        if src.stem == "01_a":
            raise ReproduceError("notebook 01_a.ipynb failed (boom)")
        time.sleep(0.5)
        return 0.5
    with pytest.raises(ReproduceError, match="01_a.ipynb failed"):
        run_in_order(srcs, needs, execute, jobs=2)
    assert sorted(ran) == ["01_a", "02_b"]  # 02 was running and finished; 03 needs 01; 04 never started
    assert run_in_order(srcs, {**needs, "03_c": set()}, lambda k, s: float(k), jobs=3) == \
        {"01_a": 1.0, "02_b": 2.0, "03_c": 3.0, "04_d": 4.0}
