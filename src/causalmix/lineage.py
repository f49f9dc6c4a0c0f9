"""What made a cached result: its config and the code that computed it.

A cached base model, parsed corpus, proxy run or target run is reused only when both are unchanged.
The code part is a fingerprint per module of this package: the module's syntax tree without
docstrings, so a comment, docstring or formatting edit keeps the caches, while any change to what
the code does (a constant, an expression, a new argument) retires them. A producer's fingerprint
covers the modules it imports at module level, transitively (lazy imports inside functions are
where a module reaches for tools that do not shape the result, such as the estimator in target.py),
single functions where a module also holds unrelated code, and the versions of the numeric libraries
that did the arithmetic.

What the key leaves out: the machine. The CPU, the thread count and the kernels torch picks for them decide
how a number is rounded, not what is computed, and so does `lm/kernels.py` (bf16 matmuls through fp32 on CPUs
without bf16 instructions; `lm/__init__.py` installs it, no producer module imports it). Where they matter, the shipped bases record them
(`made_with`) and `experiments/shipped.py` checks the shipped results against them.

Each cached artifact carries a manifest (config + code fingerprint), so `--dry-run` can say not only
*that* something will be recomputed but *why*: which modules changed since the cached copy.
"""
from __future__ import annotations

import ast
import hashlib
import json
import os
from functools import lru_cache
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
PACKAGE = "causalmix"


def _strip_docstrings(tree: ast.AST) -> ast.AST:
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and body
                and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)):
            node.body = body[1:] or [ast.Pass()]
    return tree


def _file(module: str) -> Path:
    """A module id is its dotted path inside the package: "lm.train" is src/causalmix/lm/train.py."""
    return PACKAGE_DIR.joinpath(*module.split(".")).with_suffix(".py")


def label(module: str) -> str:
    """How a module is named in fingerprints and dry-run messages: its path inside the package."""
    return "/".join(module.split(".")) + ".py"


@lru_cache(maxsize=None)
def _tree(module: str) -> ast.Module:
    return ast.parse(_file(module).read_text(encoding="utf-8"))


def source_hash(source: str) -> str:
    """Hash of behaviour-bearing source: its AST without docstrings (comments and layout never reach it)."""
    tree = _strip_docstrings(ast.parse(source))
    return hashlib.sha256(ast.dump(tree, annotate_fields=False).encode()).hexdigest()[:12]


@lru_cache(maxsize=None)
def module_hash(module: str) -> str:
    return source_hash(_file(module).read_text(encoding="utf-8"))


def _local_imports(module: str) -> set[str]:
    """Package modules imported at module level by `module` (absolute `causalmix.` imports, or relative ones)."""
    here = module.split(".")[:-1]
    out = set()
    for node in _tree(module).body:
        names = []
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[:len(here) - node.level + 1] if node.level > 1 else here
                parts = base + (node.module.split(".") if node.module else [])
            elif node.module and node.module.split(".")[0] == PACKAGE:
                parts = node.module.split(".")[1:]
            else:
                continue
            prefix = ".".join(parts)
            # `from pkg import mod` names modules; `from pkg.mod import f` names one module
            names = [f"{prefix}.{a.name}" if prefix else a.name for a in node.names] + [prefix]
        elif isinstance(node, ast.Import):
            names = [a.name.split(".", 1)[1] for a in node.names if a.name.startswith(PACKAGE + ".")]
        out |= {n for n in names if n and _file(n).is_file()}
    return out


# Plumbing that cannot change a computed number: error classes, config composition and validation
# (config *values* are keyed separately), and this module (its output is the key itself).
NEUTRAL = {"errors", "config", "lineage"}


def closure(*modules: str) -> list[str]:
    """The modules and everything they import from this package at module level, sorted (less NEUTRAL)."""
    seen, todo = set(NEUTRAL), list(modules)
    while todo:
        m = todo.pop()
        if m not in seen:
            seen.add(m)
            todo += sorted(_local_imports(m) - seen)
    return sorted(seen - NEUTRAL)


def libraries() -> dict[str, str]:
    import numpy
    import torch
    return {"torch": torch.__version__, "numpy": numpy.__version__}


def function_hash(module: str, name: str) -> str:
    """Hash of one top-level function (or class) of a module (same normalisation as module_hash)."""
    for node in _tree(module).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.name == name:
            return source_hash(ast.unparse(node))
    raise KeyError(f"{module}.{name}")


# What computes each kind of cached artifact: root modules (taken with their module-level imports) and
# single functions of modules that also hold unrelated code (so that, e.g., a new dry-run message in
# sweep.py or a policy change in target.py does not retire finished runs).
PRODUCERS = {
    "samples": (("data.domains",), ()),
    "base": (("lm.model", "lm.train", "data.domains"),
             ("experiments.world:base_model", "experiments.world:neutral_texts", "experiments.world:gpt_config")),
    "runs": (("experiments.proxy",), ()),
    "habit": (("experiments.habit",), ()),      # sweep.design=habit: its own mixtures, the same proxies
    "target": (("experiments.proxy",), ("experiments.target:target_pool", "experiments.target:run_targets")),
    "longcot": (("experiments.longcot",), ()),
    "knobs": (("experiments.proxy",), ("experiments.analysis:knob_sweep",)),
    "floor": (("experiments.proxy",), ("experiments.power:noise_floor",)),      # chapter 2's noise-floor runs
    "retest": (("experiments.proxy",), ("experiments.power:retest",)),          # ... and its retrained sweep runs
    "pool_retest": (("experiments.proxy",), ("experiments.power:pool_retest",)),  # ... and on fresh pools
    "grid": (("experiments.proxy",), ("experiments.target:target_pool", "experiments.target:tilted_grid",
                                      "experiments.grid:points", "experiments.grid:trials")),   # Grid's proxy trials
    # what the methods see of a target pool: its measured covariates (target.measured_state)
    "states": (("experiments.proxy",), ("experiments.target:target_pool", "experiments.target:state_id",
                                        "experiments.target:measured_state",
                                        "experiments.target:stored_state")),
    # the methods' proposed mixtures (experiments/proposals.py): the fits and policies, imported lazily by target.py
    "proposals": (("causal.estimator", "causal.policy", "causal.baselines", "causal.dmo"),
                  tuple(f"experiments.target:{f}" for f in ("covariate_columns", "fit_effect_model", "fit_methods",
                                                            "per_domain_prefix", "fit_dmo", "reference_mixture",
                                                            "propose"))
                  + tuple(f"experiments.ablations:{f}" for f in ("check", "n_runs", "variant_cfg", "_RawForest",
                                                               "fitted_proposals"))
                  + tuple(f"experiments.proposals:{f}" for f in ("to_record", "from_record", "kept"))),
}


def fingerprint(kind: str) -> dict[str, str]:
    """{module or module:function: hash} for everything that computes `kind`, plus library versions."""
    roots, functions = PRODUCERS[kind]
    out = {label(m): module_hash(m) for m in closure(*roots)}
    for f in functions:
        m, name = f.split(":")
        out[f"{label(m)}:{name}"] = function_hash(m, name)
    return {**out, **libraries()}


def code_key(kind: str) -> str:
    return digest(fingerprint(kind))


def digest(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:12]


def store_key(man: dict) -> str:
    """A store's name: the digest of a manifest's config key and code fingerprint (not of the whole manifest,
    whose `config` may hold values, like paths, that the key leaves out)."""
    return digest({"config": man["config_key"], "code": digest(man["code"])})


def manifest(config, kind: str) -> dict:
    return {"kind": kind, "config": config, "config_key": digest(config), "code": fingerprint(kind)}


def write_manifest(file: Path, man: dict) -> None:
    """Atomically; an existing manifest is never overwritten with different content."""
    file = Path(file)
    if file.is_file():
        return
    file.parent.mkdir(parents=True, exist_ok=True)
    tmp = file.with_name(f"{file.name}.tmp{os.getpid()}")
    tmp.write_text(json.dumps(man, indent=1, sort_keys=True, default=str))
    tmp.replace(file)


def read_manifest(file: Path) -> dict | None:
    try:
        return json.loads(Path(file).read_text())
    except (OSError, ValueError):
        return None


def changed(old: dict, new: dict) -> list[str]:
    """Names whose fingerprint differs between two `code` dicts (added or removed ones included)."""
    return sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))


def why_not_reused(candidates: list[Path], man: dict) -> str:
    """Explain, from the manifests of other cached copies, why none matches `man`."""
    same_cfg = [(f, m) for f in candidates if (m := read_manifest(f)) and m.get("config_key") == man["config_key"]]
    if not same_cfg:
        return "no cached copy for this config"
    f, m = max(same_cfg, key=lambda fm: fm[0].stat().st_mtime)
    diff = changed(m.get("code", {}), man["code"])
    return f"a copy for this config was made by other code ({', '.join(diff) or 'unknown'} changed): {f.parent.name}/{f.name}"
