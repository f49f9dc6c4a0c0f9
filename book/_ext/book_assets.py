"""A local Sphinx extension for this book (loaded through `sphinx: local_extensions` in _config.yml).

- Each page gets each script once. jupyter-book 1.0.4 with sphinx-thebe 0.3.1 and sphinx-togglebutton emits
  some inline scripts twice on every page; thebe's declares `const THEBE_JS_URL`, so the second copy throws
  "Identifier 'THEBE_JS_URL' has already been declared" in the browser console. Scripts with the same file or
  inline body and the same attributes are one (an inline script's filename may be None or ''); Sphinx still
  orders them by priority.
- With thebe off (`launch_buttons.thebe: false`, no `thebe_config.always_load`), its scripts are dropped: they
  only name a CDN address (unpkg) that nothing on the page would ever load, and the book serves everything
  from itself.

tests/test_browser.py checks the console and that nothing loads from another site.
"""
from __future__ import annotations


def _key(js) -> tuple:
    attrs = getattr(js, "attributes", {}) or {}
    return (str(getattr(js, "filename", js) or ""), tuple(sorted((k, str(v)) for k, v in attrs.items())))


def _thebe_on(app) -> bool:
    launch = (getattr(app.config, "html_theme_options", None) or {}).get("launch_buttons") or {}
    thebe_cfg = getattr(app.config, "thebe_config", None) or {}
    return bool(launch.get("thebe")) or bool(thebe_cfg.get("always_load"))


def _is_thebe(js) -> bool:
    name = str(getattr(js, "filename", "") or "")
    body = str((getattr(js, "attributes", {}) or {}).get("body", ""))
    return name.endswith("sphinx-thebe.js") or "THEBE_JS_URL" in body


def tidy_scripts(app, pagename, templatename, context, doctree) -> None:
    files = context.get("script_files")
    if not isinstance(files, list):
        return
    drop_thebe = not _thebe_on(app)
    seen, keep = set(), []
    for js in files:
        k = _key(js)
        if k in seen or (drop_thebe and _is_thebe(js)):
            continue
        seen.add(k)
        keep.append(js)
    files[:] = keep          # in place: handlers that add scripts to the builder's list still reach the page


def setup(app):
    app.connect("html-page-context", tidy_scripts, priority=900)   # after the handlers that add scripts
    return {"parallel_read_safe": True, "parallel_write_safe": True}
