"""The package follows the data path: lm <- data <- experiments, causal stands alone on CSVs, book draws.

Checked on module-level imports (the ones `lineage` follows): no module imports itself through others,
and no subpackage reaches up the path.
"""
import pkgutil

import causalmix
from causalmix import lineage

# what each subpackage may import at module level, besides the top-level plumbing (config, errors, lineage)
ALLOWED = {
    "lm": {"lm"},
    "data": {"data", "lm"},
    "causal": {"causal"},
    "book": {"book"},
    "experiments": {"experiments", "data", "lm", "causal", "book"},
}
PLUMBING = {"config", "errors", "lineage"}


def modules():
    return [m.name.split(".", 1)[1] for m in pkgutil.walk_packages(causalmix.__path__, "causalmix.")
            if not m.ispkg]


def test_no_import_cycles():
    graph = {m: lineage._local_imports(m) for m in modules()}
    state = {}

    def visit(m, path):
        if state.get(m) == "open":
            raise AssertionError("import cycle: " + " -> ".join(path + [m]))
        if state.get(m) != "done":
            state[m] = "open"
            for n in sorted(graph.get(m, ())):
                visit(n, path + [m])
            state[m] = "done"
    for m in graph:
        visit(m, [])


def test_subpackages_only_import_down_the_data_path():
    bad = []
    for m in modules():
        pkg = m.split(".")[0]
        if pkg not in ALLOWED:
            continue
        for n in lineage._local_imports(m):
            if n not in PLUMBING and n.split(".")[0] not in ALLOWED[pkg]:
                bad.append(f"{m} imports {n}")
    assert not bad, bad


def test_top_level_holds_only_plumbing():
    top = {m for m in modules() if "." not in m}
    assert top <= PLUMBING | {"cli"}, top - PLUMBING
