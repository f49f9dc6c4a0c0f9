# Two entry points: `make test` and `make book ARGS="<hydra overrides>"`. `make verify` recomputes a sample of
# the shipped results (tests marked `verify`: a shipped block trained again, the shipped proxy base pretrained
# again); CI (.ci/run) runs `make test`, then `make verify`.
# Set-up is stamped: a second run reinstalls nothing unless requirements.lock or pyproject.toml changed.

SHELL := bash
.SHELLFLAGS := -euo pipefail -c

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.causalmix-installed
PIP    := $(BIN)/python -m pip --disable-pip-version-check -q
ARGS   ?=
# pytest-xdist workers for `make test` (one torch thread each; see tests/conftest.py).
TEST_WORKERS ?= auto
# This machine's pip config names index folders that do not exist; pip warns once per package. Drop just
# that harmless line (pipefail keeps pip's exit status; errors and other warnings still show).
QUIET  := 2>&1 | { grep -v "is ignored: it is neither a file nor a directory" || true; }

.PHONY: setup test verify book bench lock clean-book lab mathjax

setup: $(STAMP)
	$(BIN)/python -m causalmix.data.corpus fetch

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): requirements.lock pyproject.toml | $(BIN)/python
	$(PIP) install -r requirements.lock $(QUIET)
	$(PIP) install --no-deps -e . $(QUIET)
	$(BIN)/python -m ipykernel install --sys-prefix --name python3
	touch $@

test: setup
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) -m "not verify" --durations=12 tests

verify: setup
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) -m verify --durations=3 tests

book: setup
	$(BIN)/causalmix reproduce $(ARGS)

bench: setup
	$(BIN)/causalmix bench $(ARGS)

# JupyterLab on notebooks/ (a notebook run by hand uses its defaults; `make book` runs them through papermill).
lab: setup
	$(BIN)/jupyter lab --notebook-dir=notebooks

# Re-vendor MathJax 3 (npm, Apache-2.0) into book/_mathjax/mathjax/: the tex-chtml component, its woff fonts,
# the TeX extensions it may autoload, and its LICENSE. The files are committed; set-up never runs this.
MATHJAX_VERSION ?= 3.2.2
MATHJAX_DIR := book/_mathjax/mathjax
mathjax:
	tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	(cd "$$tmp" && npm pack --silent mathjax@$(MATHJAX_VERSION) >/dev/null && tar xzf mathjax-*.tgz); \
	es5="$$tmp/package/es5"; \
	rm -rf $(MATHJAX_DIR) && mkdir -p $(MATHJAX_DIR)/output/chtml/fonts $(MATHJAX_DIR)/input/tex; \
	cp "$$tmp/package/LICENSE" "$$es5/tex-chtml.js" $(MATHJAX_DIR)/; \
	cp -r "$$es5/output/chtml/fonts/woff-v2" $(MATHJAX_DIR)/output/chtml/fonts/; \
	cp -r "$$es5/input/tex/extensions" $(MATHJAX_DIR)/input/tex/; \
	echo "MathJax $(MATHJAX_VERSION) (npm mathjax, es5 build), Apache-2.0: see LICENSE" > $(MATHJAX_DIR)/VERSION

# Re-pin from the current venv: exact versions, minus the project itself; torch pinned to the local CPU wheel.
lock:
	$(BIN)/python -m pip freeze --exclude-editable --exclude causalmix > requirements.lock.tmp
	sed -e 's/^torch==.*/torch==2.13.0/' requirements.lock.tmp > requirements.lock
	rm requirements.lock.tmp

clean-book:
	rm -rf book/_build book/executed
