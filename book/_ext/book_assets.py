"""A local Sphinx extension for this book (loaded through `sphinx: local_extensions` in _config.yml).

jupyter-book 1.0.4 with sphinx-thebe 0.3.1 and sphinx-togglebutton emits some inline scripts twice on every
page; thebe's declares `const THEBE_JS_URL`, so the second copy throws "Identifier 'THEBE_JS_URL' has already
been declared" in the browser console. Each page keeps one copy of each script (same file or inline body,
same attributes; an inline script's filename may be None or ''); the order Sphinx gives them (by priority) is kept. tests/test_browser.py checks the console.
"""
from __future__ import annotations


def _key(js) -> tuple:
    attrs = getattr(js, "attributes", {}) or {}
    return (str(getattr(js, "filename", js) or ""), tuple(sorted((k, str(v)) for k, v in attrs.items())))


def dedupe_scripts(app, pagename, templatename, context, doctree) -> None:
    files = context.get("script_files")
    if not isinstance(files, list):
        return
    seen, keep = set(), []
    for js in files:
        k = _key(js)
        if k not in seen:
            seen.add(k)
            keep.append(js)
    files[:] = keep          # in place: handlers that add scripts to the builder's list still reach the page


def setup(app):
    app.connect("html-page-context", dedupe_scripts, priority=900)   # after the handlers that add scripts
    return {"parallel_read_safe": True, "parallel_write_safe": True}

