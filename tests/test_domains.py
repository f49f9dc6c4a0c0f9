"""domains.py: sample formats, windows, math, JSONL, splits, errors; real corpora when the cache has them."""

import bz2
import json
import random
import re
from pathlib import Path

import pytest

from causalmix.data import domains
from causalmix.data.corpus import SOURCES
from causalmix.data.domains import (KINDS, Sample, code_samples, describe, load_domain, load_domains, math_response,
                               parse_math, split_by_doc, text_samples, text_windows, to_ascii)
from causalmix.errors import ConfigError

REPO_CACHE = Path(__file__).resolve().parents[1] / ".cache"
PRINTABLE = re.compile(r"[ -~\n]*")

LOREM = ("The quick brown fox jumps over the lazy dog while the farmer, who had risen early, counted sheep in "
         "the misty field beyond the river. Nobody expected the storm that arrived at noon, nor the long "
         "silence that followed it across the valley and the hills. ") * 3


# ------------------------------------------------------------------------------------------- math

def test_math_response_exact_format():
    assert math_response(47, 38) == "7+8=15;4+3+1=8;85"
    assert math_response(4, 2) == "4+2=6;6"
    assert math_response(99, 1) == "9+1=10;9+0+1=10;100"
    assert math_response(5, 123) == "5+3=8;0+2=2;0+1=1;128"


def test_parse_math_round_trip_and_rejects_other_text():
    rng = random.Random(0)
    for _ in range(500):
        a, b = rng.randint(0, 999), rng.randint(0, 999)
        steps, answer = parse_math(math_response(a, b))
        assert answer == a + b
        assert len(steps) == max(len(str(a)), len(str(b)))
        carry = 0
        for x, y, c, s in steps:
            assert c == carry and s == x + y + c
            carry = s // 10
    assert parse_math("7+8=15;4+3+1=9;95") == ([(7, 8, 0, 15), (4, 3, 1, 9)], 95)   # wrong but well formed
    for bad in ["85", "7+8=15;", "7+8=15;x", "7*8=15;85", "", "7+8=15;4+3+2=9;95"]:
        with pytest.raises(ValueError):
            parse_math(bad)


def test_math_domain(tmp_path):
    ss = load_domain("math", {"kind": "math", "n": 600}, tmp_path, seed=3)
    # a problem is its own document (repeats of 5+5 share one), so no problem is in two splits
    assert len(ss) == 600 and all(s.doc == s.prompt.removeprefix("math: ").removesuffix("=") for s in ss)
    assert len({s.doc for s in ss}) > 500
    digits = set()
    for s in ss:
        m = re.fullmatch(r"math: (\d{1,3})\+(\d{1,3})=", s.prompt)
        a, b = int(m[1]), int(m[2])
        assert s.response == math_response(a, b) and 0 <= s.difficulty <= 1
        digits.add(len(m[1]))
    assert digits == {1, 2, 3}
    hard = [s for s in ss if s.difficulty > 0.9]
    easy = [s for s in ss if s.difficulty < 0.1]
    assert min(len(s.response) for s in hard) > max(len(s.response) for s in easy)
    assert load_domain("math", {"kind": "math", "n": 600}, tmp_path / "other", seed=3) == ss
    assert load_domain("math", {"kind": "math", "n": 600}, tmp_path, seed=4) != ss


# ------------------------------------------------------------------------------------------- text / code

def test_to_ascii():
    assert to_ascii("caf\u00e9 \u201cquoted\u201d \u2014 it\u2019s \u00a3600m\tx\r\n\x07") == \
        'cafe "quoted" -- it\'s 600m x\n'


def test_text_windows_cover_the_body_in_order():
    body = " ".join(LOREM.split())
    ws = text_windows(body, 60)
    assert all(len(w) <= 60 for w in ws) and " ".join(ws) == body


def test_text_samples_shape():
    rows = text_samples("news: ", "d1", " ".join(LOREM.split()), 128)
    assert len(rows) >= 5
    for doc, prompt, resp in rows:
        text = prompt + resp
        assert doc == "d1" and prompt.startswith("news: ") and len(text) <= 128
        assert len(resp) >= 24 and prompt[-1] == " " and not resp[0].isspace()
        assert 0.3 <= len(resp) / len(text) <= 0.5
    assert text_samples("news: ", "d", "too short to be a sample", 128) == []


def test_code_samples_cut_at_lines():
    lines = [f"    x{i} = compute(x{i - 1}, {i})" for i in range(1, 30)]
    rows = code_samples("py: ", "f.py", lines, 128)
    assert rows
    for _, prompt, resp in rows:
        assert len(prompt + resp) <= 128 and prompt.endswith("\n") and prompt.startswith("py: ")
        assert all(l in lines for l in (prompt[4:].rstrip("\n") + "\n" + resp).split("\n"))


# ------------------------------------------------------------------------------------------- jsonl

def _write(path, lines):
    path.write_text("\n".join(l if isinstance(l, str) else json.dumps(l) for l in lines) + "\n")
    return path


def test_jsonl_domain(tmp_path):
    f = _write(tmp_path / "mine.jsonl", [{"q": "What is 2+2?", "a": "Four, obviously.", "id": "x"},
                                         "",
                                         {"q": "Long " * 60, "a": "word " * 60, "id": 7}])
    spec = {"kind": "jsonl", "path": str(f), "prompt_key": "q", "response_key": "a", "doc_key": "id"}
    ss = load_domain("faq", spec, tmp_path / "c", sample_chars=100)
    assert [s.doc for s in ss] == ["x", "7"]
    assert ss[0].prompt == "faq: What is 2+2?" and ss[0].response == "Four, obviously."
    assert all(len(s.text) <= 100 and s.response.strip() for s in ss)
    g = _write(tmp_path / "g.jsonl", [{"prompt": "p", "response": "r"}])
    ss2 = load_domain("mine", {"kind": "jsonl", "path": str(tmp_path / "g*.jsonl"), "tag": ""}, tmp_path / "c")
    assert ss2 == [Sample("mine", "g.jsonl:1", "p", "r", 0.5)] and g.exists()


@pytest.mark.parametrize("line,err", [
    ("{not json", r"bad\.jsonl:2: expected a JSON object with string fields 'prompt' and 'response' \(got \{not"),
    ("[1, 2]", r"bad\.jsonl:2: expected a JSON object"),
    ('{"prompt": "p"}', r"bad\.jsonl:2: expected a JSON object"),
    ('{"prompt": "p", "response": 3}', r"bad\.jsonl:2: expected a JSON object"),
])
def test_jsonl_malformed_line(tmp_path, line, err):
    f = _write(tmp_path / "bad.jsonl", [{"prompt": "a", "response": "b"}, line])
    with pytest.raises(ConfigError, match=err) as e:
        load_domain("u", {"kind": "jsonl", "path": str(f)}, tmp_path)
    assert "\n" not in str(e.value)


def test_jsonl_path_errors(tmp_path):
    with pytest.raises(ConfigError, match="matches no file"):
        load_domain("u", {"kind": "jsonl", "path": str(tmp_path / "nope.jsonl")}, tmp_path)
    with pytest.raises(ConfigError, match="matches no file"):
        load_domain("u", {"kind": "jsonl", "path": str(tmp_path / "*.jsonl")}, tmp_path)
    with pytest.raises(ConfigError, match="needs `path`"):
        load_domain("u", {"kind": "jsonl"}, tmp_path)
    f = _write(tmp_path / "d.jsonl", [{"prompt": "a", "response": "b"}])
    with pytest.raises(ConfigError, match=r"d\.jsonl:1: expected a string or integer doc field 'id'"):
        load_domain("u", {"kind": "jsonl", "path": str(f), "doc_key": "id"}, tmp_path)


# ------------------------------------------------------------------------------------------- errors

def test_spec_errors(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown kind 'poetry'.*bbc, kjv, shakespeare"):
        load_domain("x", {"kind": "poetry"}, tmp_path)
    for sc in (0, -5, 1.5):
        with pytest.raises(ConfigError, match="sample_chars must be a positive integer"):
            load_domain("m", {"kind": "math"}, tmp_path, sample_chars=sc)
    for bad in (0, -1, "10"):
        with pytest.raises(ConfigError, match="max_samples must be a positive integer"):
            load_domain("m", {"kind": "math", "max_samples": bad}, tmp_path)
    with pytest.raises(ConfigError, match=r"unknown keys \['nn'\]"):
        load_domain("m", {"kind": "math", "nn": 5}, tmp_path)
    with pytest.raises(ConfigError, match="domain 'm' is empty"):
        load_domain("m", {"kind": "math", "n": 50}, tmp_path, sample_chars=12)
    # load_domains validates every spec before parsing any corpus
    with pytest.raises(ConfigError, match="unknown kind"):
        load_domains({"news": {"kind": "bbc"}, "x": {"kind": "nope"}}, tmp_path / "never")
    assert not (tmp_path / "never").exists()


def test_missing_or_corrupt_corpus_files(tmp_path, monkeypatch):
    root = tmp_path / "corp"
    root.mkdir()
    monkeypatch.setattr(domains, "ensure_corpus", lambda name, cache: root)
    (root / SOURCES["wiki"].key_files[0]).write_bytes(b"BZh9 this is not bzip2")
    with pytest.raises(ConfigError, match="corrupt Wikipedia dump"):
        load_domain("wiki", {"kind": "wiki"}, tmp_path)
    (root / "kjv.jsonl").write_text('{"book": "Gen", "chapter": 1, "text": "x"}\n{oops\n')
    with pytest.raises(ConfigError, match=r"kjv\.jsonl:1: corrupt verse record|kjv\.jsonl:2: corrupt"):
        load_domain("bible", {"kind": "kjv"}, tmp_path)
    (root / "fortunes").write_text("short\n%\ntiny\n%\n")
    with pytest.raises(ConfigError, match="domain 'quips' is empty"):
        load_domain("quips", {"kind": "fortunes"}, tmp_path)


def test_wiki_parsing_on_a_tiny_dump(tmp_path, monkeypatch):
    root = tmp_path / "corp"
    root.mkdir()
    monkeypatch.setattr(domains, "ensure_corpus", lambda name, cache: root)
    wikitext = ("{{Infobox thing|name=X {{nested}}}}\n'''Anarchism''' is a [[political philosophy|philosophy]] "
                "that rejects [[hierarchy]] and calls for its abolition.<ref>Cite {{x}}</ref> It is "
                "usually described alongside [[libertarian socialism]] as the libertarian wing of the "
                "socialist movement, as shown in [[File:A.png|thumb|a [[b]] c]] many texts.\n"
                "== History ==\n* a list item that is long enough to be kept otherwise\n"
                "{| class=wikitable\n| cell || cell\n|}\n[[Category:Things]]")
    xml = ('<mediawiki xmlns="http://www.mediawiki.org/xml/export-0.10/"><page><title>Anarchism</title><ns>0</ns>'
           f'<revision><text>{wikitext.replace("&", "&amp;").replace("<", "&lt;")}</text></revision></page>'
           '<page><title>Redirect</title><ns>0</ns><redirect title="x"/><revision><text>#REDIRECT [[x]]'
           '</text></revision></page></mediawiki>')
    (root / SOURCES["wiki"].key_files[0]).write_bytes(bz2.compress(xml.encode()))
    ss = load_domain("wiki", {"kind": "wiki"}, tmp_path)
    text = " ".join(s.text[len("wiki: "):] for s in ss)
    assert {s.doc for s in ss} == {"Anarchism"}
    assert text.startswith("Anarchism is a philosophy that rejects hierarchy and calls for its abolition. It is")
    for junk in ("{{", "[[", "<ref", "Infobox", "==", "'''", "thumb", "cell", "list item", "Category"):
        assert junk not in text


# ------------------------------------------------------------------------------------------- subsample / cache

def test_max_samples_is_deterministic_and_cached(tmp_path):
    spec = {"kind": "math", "n": 400, "max_samples": 100}
    a = load_domain("math", spec, tmp_path)
    full = [(f.doc, f.prompt, f.response) for f in load_domain("math", {"kind": "math", "n": 400}, tmp_path / "f")]
    it = iter(full)
    assert len(a) == 100 and all((s.doc, s.prompt, s.response) in it for s in a)   # an order-keeping subsample
    files = list((tmp_path / "samples").glob("math-*.jsonl"))
    assert len(files) == 1
    assert load_domain("math", spec, tmp_path) == a            # from the cache file
    files[0].write_text(json.dumps(dict(domain="math", doc="m0", prompt="math: 1+1=", response="1+1=2;2",
                                        difficulty=0.0)) + "\n")
    assert len(load_domain("math", spec, tmp_path)) == 1        # proves the second load read the cache
    d = [s.difficulty for s in a]                                # percentiles (ties share a mean rank)
    assert 0 <= min(d) < 0.2 and 0.8 < max(d) <= 1


# ------------------------------------------------------------------------------------------- splits / describe

def _toy(n_docs=200):
    rng = random.Random(1)
    return [Sample(dom, f"d{i}", "p", "r", 0.5) for dom in ("a", "b") for i in range(n_docs)
            for _ in range(rng.randint(1, 6))]


def test_split_by_doc_disjoint_deterministic_and_proportional():
    ss = _toy()
    fr = {"pretrain": 0.3, "pool": 0.5, "bench": 0.2}
    sp = split_by_doc(ss, fr, seed=0)
    assert list(sp) == list(fr) and sum(map(len, sp.values())) == len(ss)
    docs = {k: {(s.domain, s.doc) for s in v} for k, v in sp.items()}
    assert not (docs["pretrain"] & docs["pool"]) and not (docs["pool"] & docs["bench"]) \
        and not (docs["pretrain"] & docs["bench"])
    for k, f in fr.items():
        assert abs(len(sp[k]) / len(ss) - f) < 0.02
    assert split_by_doc(ss, fr, seed=0) == sp
    assert split_by_doc(ss, fr, seed=1) != sp


@pytest.mark.parametrize("fr", [{"a": 0.5, "b": 0.6}, {"a": 1.0, "b": 0.0}, {"a": -0.2, "b": 1.2}, {}])
def test_split_rejects_bad_fractions(fr):
    with pytest.raises(ConfigError, match="fractions must all be > 0 and sum to 1"):
        split_by_doc(_toy(5), fr)


def test_describe(tmp_path):
    doms = load_domains({"math": {"kind": "math", "n": 50}}, tmp_path)
    df = describe(doms)
    assert list(df.columns) == ["n_samples", "n_docs", "chars", "source", "licence"]
    assert df.loc["math", "n_samples"] == 50 and df.loc["math", "chars"] == sum(len(s.text) for s in doms["math"])


# ------------------------------------------------------------------------------------------- real corpora

REAL = {"news": {"kind": "bbc"}, "bible": {"kind": "kjv"}, "drama": {"kind": "shakespeare"},
        "wiki": {"kind": "wiki"}, "quips": {"kind": "fortunes"}, "code": {"kind": "stdlib", "max_samples": 30000}}


@pytest.mark.parametrize("name", list(REAL))
def test_real_domain(name):
    """Uses the repo's cache (make setup); parsed samples are cached there too, so reruns are fast."""
    kind = REAL[name]["kind"]
    corpus = KINDS[kind][1]
    if corpus != "stdlib" and not (REPO_CACHE / "corpora" / corpus / ".ok").exists():
        pytest.skip(f"corpus {corpus} not fetched into {REPO_CACHE}")
    ss = load_domain(name, REAL[name], REPO_CACHE)
    assert len(ss) > 5000 and len({s.doc for s in ss}) > 100
    tag = KINDS[kind][0]
    for s in ss:
        assert s.domain == name and s.prompt.startswith(tag) and len(s.text) <= 128
        assert PRINTABLE.fullmatch(s.text) and 0 <= s.difficulty <= 1
        if kind == "stdlib":
            assert s.prompt.endswith("\n") and s.response.strip()
        else:
            assert len(s.response) >= 24 and s.prompt[-1].isspace() and not s.response[0].isspace()
    fracs = sorted(len(s.response) / len(s.text) for s in ss)
    assert 0.35 <= fracs[len(fracs) // 2] <= 0.45
    seen, last = set(), None                 # windows of a document are consecutive
    for s in ss:
        if s.doc != last:
            assert s.doc not in seen
            seen.add(s.doc)
            last = s.doc
