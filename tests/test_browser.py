"""The built smoke book, read as a reader would: served on localhost, every page opened in headless Chromium.

Per page: no console error or uncaught exception; no request that fails, answers >= 400, or leaves
localhost, and no tag in its HTML that would load from another site (the book works offline: MathJax,
fonts and scripts come from the book itself); every image loaded (naturalWidth > 0); every same-origin
link answers 200 and its #anchor exists on the target page; where the page has math, MathJax typeset all of it (one `mjx-container` per math element, no TeX error).
At least one page must have math. Screenshots of the landing and main-results pages are saved in
`<book>/_build/screenshots/` (the path is printed at the end of the pytest run).

Chromium is Debian's `chromium` package, driven through the `playwright` package (in the lock) with
executable_path; `.ci/run` installs it when it is missing. Without it this test fails and says how to
install it. CAUSALMIX_BOOK_HTML=<dir> checks an already built book (e.g. book/_build/html) instead of
building the smoke book."""
from __future__ import annotations

import functools
import html.parser
import http.server
import os
import re
import shutil
import threading
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

CHROMIUM_CANDIDATES = ("chromium", "chromium-browser", "/usr/bin/chromium", "/usr/lib/chromium/chromium")
INSTALL_HINT = ("Chromium is needed for the browser test and was not found. Install Debian's package: "
                "`sudo apt-get update && sudo apt-get install -y chromium` (.ci/run does this when it is "
                "missing), or set CHROMIUM=/path/to/chromium.")
SKIP_DIRS = {"_static", "_sources", "_images", "mathjax", "screenshots"}
MAIN_RESULTS = "executed/04_main_results.html"
# A tag that would load something from another site: a script, stylesheet, image, frame or font by URL.
REMOTE_ASSET = re.compile(r"<(?:script|link|img|iframe|source|embed)\b[^>]*\b(?:src|href)=[\"'](?:https?:)?//", re.I)


def chromium_path() -> str | None:
    env = os.environ.get("CHROMIUM")
    if env:
        return env if Path(env).is_file() else None
    for c in CHROMIUM_CANDIDATES:
        found = shutil.which(c) or (c if Path(c).is_file() else None)
        if found:
            return found
    return None


@pytest.fixture(scope="module")
def book_html(request) -> Path:
    given = os.environ.get("CAUSALMIX_BOOK_HTML")
    if given:
        return Path(given).resolve()
    book, _ = request.getfixturevalue("smoke_book")
    return book / "_build" / "html"


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        """A page closed while a file was still being sent is no error of the book: say nothing."""
        import sys
        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)


@pytest.fixture(scope="module")
def server(book_html):
    """http.server on a free localhost port, serving the built HTML in a thread; yields its base URL."""
    httpd = _Server(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(book_html)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture(scope="module")
def browser():
    exe = chromium_path()
    if exe is None:
        pytest.fail(INSTALL_HINT, pytrace=False)
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("the `playwright` package is missing: `make setup` installs requirements.lock", pytrace=False)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=exe, headless=True, args=["--no-sandbox"])
        try:
            yield b
        finally:
            b.close()


def pages_of(html_dir: Path) -> list[str]:
    """Every HTML page of the book, as paths relative to its root (theme assets and MathJax excluded)."""
    out = []
    for f in sorted(html_dir.rglob("*.html")):
        rel = f.relative_to(html_dir)
        if not SKIP_DIRS.intersection(rel.parts[:-1]):
            out.append(rel.as_posix())
    return out


class _Ids(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids: set[str] = set()

    def handle_starttag(self, tag, attrs):
        for k, v in attrs:
            if k == "id" or (k == "name" and tag == "a"):
                self.ids.add(v or "")


class Links:
    """Same-origin URLs checked once each: their status, and the element ids of the HTML ones."""

    def __init__(self):
        self.status: dict[str, int] = {}
        self.ids: dict[str, set[str]] = {}

    def fetch(self, url: str) -> int:
        if url not in self.status:
            try:
                with urllib.request.urlopen(url, timeout=10) as r:
                    self.status[url] = r.status
                    if r.headers.get_content_type() == "text/html":
                        p = _Ids()
                        p.feed(r.read().decode("utf-8", "replace"))
                        self.ids[url] = p.ids
            except urllib.error.HTTPError as e:
                self.status[url] = e.code
        return self.status[url]


# After load: make lazy images load, wait for every image, then (where there is math) for MathJax.
PAGE_STATE_JS = """async () => {
  const imgs = Array.from(document.images);
  imgs.forEach(i => { if (i.loading === 'lazy') i.loading = 'eager'; });
  await Promise.all(imgs.map(i => i.complete ? null : new Promise(r => { i.onload = i.onerror = r; })));
  const math = document.querySelectorAll('.math').length;
  if (math && window.MathJax && MathJax.startup && MathJax.startup.promise) await MathJax.startup.promise;
  return {
    images: imgs.map(i => ({src: i.currentSrc || i.src, w: i.naturalWidth})),
    math: math,
    mathjax: !!(window.MathJax && MathJax.version),
    typeset: document.querySelectorAll('mjx-container').length,
    texErrors: Array.from(document.querySelectorAll('mjx-merror')).map(e => e.textContent),
    links: Array.from(document.querySelectorAll('a[href]')).map(a => a.href),
  };
}"""


def redirect_of(page: Path) -> str | None:
    """Where a meta-refresh stub (jupyter-book's index.html) sends the reader, else None."""
    m = re.search(r'http-equiv="Refresh"\s+content="\d+;\s*url=([^"]+)"', page.read_text(), re.I)
    return m.group(1) if m else None


def check_page(browser, base: str, rel: str, links: Links, shot: Path | None = None) -> tuple[list[str], int]:
    """Open one page; return (problems found, math elements on it)."""
    problems: list[str] = []
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    def on_console(m):
        where = m.location.get("url") or ""
        # Chromium asks for /favicon.ico on its own when a site names no icon; the book never links it.
        if m.type == "error" and not where.endswith("/favicon.ico"):
            problems.append(f"console error: {m.text} (at {where or 'the page'})")
    page.on("console", on_console)
    page.on("pageerror", lambda e: problems.append(f"uncaught exception: {e}"))
    page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url} ({r.failure})"))

    def on_response(r):
        if r.status >= 400:
            problems.append(f"HTTP {r.status}: {r.url}")
    page.on("response", on_response)

    def on_request(r):
        if not r.url.startswith(base) and not r.url.startswith(("data:", "blob:", "about:")):
            problems.append(f"request leaves the book (not offline): {r.url}")
    page.on("request", on_request)
    try:
        page.goto(base + rel, wait_until="load")
        page.wait_for_load_state("networkidle")
        state = page.evaluate(PAGE_STATE_JS)
        if shot is not None:
            shot.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(shot), full_page=False)
    finally:
        page.close()

    for img in state["images"]:
        if img["w"] <= 0:
            problems.append(f"image did not load: {img['src']}")
    if state["math"]:
        if not state["mathjax"]:
            problems.append(f"{state['math']} math elements but MathJax did not load")
        elif state["typeset"] < state["math"]:
            problems.append(f"MathJax typeset {state['typeset']} of {state['math']} math elements")
        problems += [f"TeX error: {e}" for e in state["texErrors"]]

    for href in sorted(set(state["links"])):
        if not href.startswith(base):
            continue                                    # other sites: not fetched (the test runs offline)
        url, _, frag = href.partition("#")
        status = links.fetch(url)
        if status != 200:
            problems.append(f"broken link: {href} -> HTTP {status}")
        elif frag and url in links.ids and urllib.parse.unquote(frag) not in links.ids[url]:
            problems.append(f"broken anchor: {href} (no id {frag!r} on {url[len(base):] or 'index'})")
    return [f"{rel}: {p}" for p in problems], state["math"]


def test_every_page_in_chromium(book_html, server, browser, screenshot_log):
    pages = pages_of(book_html)
    assert "index.html" in pages and MAIN_RESULTS in pages, pages
    shots = book_html.parent / "screenshots"
    links, problems, math_pages = Links(), [], []
    landing = "index.html"
    target = redirect_of(book_html / "index.html")
    if target:                                      # the stub itself has nothing to show: its target must exist
        landing = urllib.parse.urljoin("index.html", target)
        if links.fetch(server + landing) != 200:
            problems.append(f"index.html: redirects to a missing page: {target}")
        pages.remove("index.html")
    for rel in pages:
        for line in (book_html / rel).read_text().splitlines():
            if REMOTE_ASSET.search(line):               # also what would load only later (the requests below
                problems.append(f"{rel}: loads from another site: {line.strip()[:160]}")   # see the rest)
        shot = {landing: shots / "landing.png", MAIN_RESULTS: shots / "main_results.png"}.get(rel)
        found, n_math = check_page(browser, server, rel, links, shot)
        problems += found
        if n_math:
            math_pages.append(rel)
    print(f"{len(pages)} pages, {len(links.status)} internal URLs checked, math on {math_pages}; "
          f"screenshots in {shots}")
    assert not problems, f"{len(problems)} problems in the built book:\n" + "\n".join(problems)
    assert math_pages, "no page has math: the MathJax check would pass vacuously (the method page should have some)"
    for name in ("landing.png", "main_results.png"):
        assert (shots / name).stat().st_size > 10_000, f"{shots / name} looks empty"
        screenshot_log.append(shots / name)


def test_without_chromium_the_browser_test_fails_and_says_how_to_install(tmp_path):
    """Run the page test in a child pytest with no Chromium to be found: it must fail (not pass, not skip)
    with the install command in its message."""
    import subprocess
    import sys
    (tmp_path / "index.html").write_text("<p>a page</p>")
    env = {**os.environ, "CHROMIUM": str(tmp_path / "no-chromium-here"), "CAUSALMIX_BOOK_HTML": str(tmp_path)}
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rfEs",
                        f"{__file__}::test_every_page_in_chromium"],
                       capture_output=True, text=True, env=env, cwd=Path(__file__).parent, timeout=300)
    assert r.returncode == 1, r.stdout[-2000:]
    assert "apt-get install -y chromium" in r.stdout and "1 error" in r.stdout, r.stdout[-2000:]
    assert "skipped" not in r.stdout and "passed" not in r.stdout, r.stdout[-2000:]
