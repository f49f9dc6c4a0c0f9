"""Every notebook, end to end at the smoke scale through papermill, then the strict book build.

This is the test `make test` exists for: it runs the same code path as `make book`, on a copy of the
book sources in a temp dir so the repo's own book is untouched."""
import nbformat
import pytest

from causalmix.config import REPO_ROOT

NOTEBOOKS = sorted(p.stem for p in (REPO_ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


# smoke_book (book dir, run dir): the session fixture in conftest.py, shared with test_browser.py.


def outputs(nb_path):
    nb = nbformat.read(nb_path, as_version=4)
    text, images = [], 0
    for c in nb.cells:
        for o in c.get("outputs", []):
            if o.get("output_type") == "error":
                raise AssertionError(f"{nb_path.name}: {o['ename']}: {o['evalue']}")
            text.append(o.get("text", "") + o.get("data", {}).get("text/plain", ""))
            images += "image/png" in o.get("data", {})
    return "\n".join(text), images


def test_all_four_notebooks_exist():
    assert NOTEBOOKS[:4] == ["01_data_pool", "02_proxy_sweep", "03_causal_fit", "04_main_results"]


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_ran_with_the_given_parameters_and_drew_figures(smoke_book, name):
    book, run_dir = smoke_book
    text, images = outputs(book / "executed" / f"{name}.ipynb")
    assert "scale=smoke" in text and "out=<paths.out>" in text   # papermill's parameters reached it (paths scrubbed)
    assert str(run_dir) not in text                               # no machine path in a published notebook
    assert images >= 1


def test_main_table_has_every_method_with_intervals(smoke_book):
    book, _ = smoke_book
    text, _ = outputs(book / "executed" / "04_main_results.ipynb")
    for m in ("Equal", "Natural", "RegMix", "DMO", "Grid", "CausalMix-A", "CausalMix-S"):
        assert m in text
    assert "picked: drawn: " in text                               # Grid's proxy trials on each target pool
    assert "rank transfer on noisy_text: Spearman" in text         # proxies against targets on the grid's points
    assert "vs Equal" in text and "[" in text                     # paired mean [lo, hi] cells
    for state in ("drawn", "noisy_text"):                          # the smoke scale's target states
        assert state in text
    assert "minimum detectable paired difference" in text
    assert "CausalMix-A is " in text and "regret against the best mixture found" in text


def test_headline_numbers_land_in_results_json(smoke_book):
    import json
    _, run_dir = smoke_book
    doc = json.loads((run_dir / "results.json").read_text())
    assert set(doc["heldout_spearman"]) == {"avg_dev", "avg_margin"}
    assert set(doc["heldout_spearman"]["avg_dev"]) == {"causalmix", "regmix"}
    assert doc["target_states"] == ["drawn", "noisy_text"] and doc["mde_pooled"] > 0
    assert set(doc["pooled_vs_equal"]) == {"Natural", "RegMix", "DMO", "Grid", "CausalMix-A", "CausalMix-S"}
    assert all(len(v) == 3 for v in doc["pooled_vs_equal"].values())
    assert 0 <= doc["math_accuracy_best"] <= 100 and doc["scale"] == "smoke"
    assert set(doc["ablations"]) == {"no_covariates", "no_dml", "small_radius", "half_runs"}   # smoke's ablations.run
    assert all(len(v) == 4 for v in doc["ablations"].values())
    assert set(doc["retest"]) == {"avg_dev", "avg_margin"} and doc["retest"]["avg_dev"]["runs"] == 8   # smoke's power.retest
    assert all(0 <= r["ceiling"] <= 1 and r["seed_sd"] >= 0 for r in doc["retest"].values())
    assert set(doc["pool_retest"]) == {"avg_dev", "avg_margin"} and doc["pool_retest"]["avg_dev"]["runs"] == 8   # smoke's
    assert all(r["ceiling_ci"][0] <= r["ceiling"] <= r["ceiling_ci"][1] and r["pool_sd"] >= 0 for r in doc["pool_retest"].values())
    assert all(-1 <= r["covariates_r"] <= 1 and 0 <= r["covariates_p"] <= 1 for r in doc["pool_retest"].values())
    timings = json.loads((run_dir / "timings.json").read_text())
    assert set(timings["stages_s"]) >= {"02_proxy_sweep", "04_main_results", "book_build"}


def test_book_built_strictly_with_every_page(smoke_book):
    book, run_dir = smoke_book
    html = book / "_build" / "html"
    assert (html / "index.html").exists()
    for name in NOTEBOOKS:
        page = html / "executed" / f"{name}.html"
        assert page.exists() and "<img" in page.read_text()
    assert (html / "method.html").exists()
    assert (run_dir / "config.yaml").exists()


def test_long_cot_chapter_puts_causalmix_beside_grid_regmix_and_equal(smoke_book):
    import json
    book, run_dir = smoke_book
    text, _ = outputs(book / "executed" / "07_long_cot.ipynb")
    for m in ("Equal", "RegMix", "Grid", "CausalMix-A", "CausalMix-S", "vs Grid", "noisy_chain"):
        assert m in text
    assert "#" in text and "chain: " in text                      # worked solutions with final answers shown
    doc = json.loads((run_dir / "results.json").read_text())
    assert set(doc["long_cot"]) == {"Equal", "RegMix", "Grid", "CausalMix-A", "CausalMix-S"}
    assert all(len(v) == 3 for v in doc["long_cot"].values())
