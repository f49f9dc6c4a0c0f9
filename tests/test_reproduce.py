"""reproduce: parameters reach the notebooks, configs are never silently lost, the strict book builds."""

import json
import shutil
from pathlib import Path

import nbformat
import pytest
from omegaconf import OmegaConf

from causalmix.errors import ConfigError
from causalmix.experiments.reproduce import (
    REPO_ROOT, ReproduceError, build_book, reproduce, save_config, select_notebooks, write_toc,
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
