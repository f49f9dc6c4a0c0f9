#!/usr/bin/env bash
# The `paper` scale on the lent GPU machine, timed (scripts/gpu_paper_check.py). That machine cannot reach
# PyPI, so scripts/gpu_bundle.sh first packs what it lacks into the git-ignored .devcarry/: the pure-python
# deps (hydra, omegaconf, antlr4) in pylib/, cp312 wheels of econml and its compiled deps in whl/, and the
# parsed samples this config keys in samples.tgz (the code domain's under the running Python's key).
# Usage, from the repo root there: scripts/gpu_paper_check.sh [gpu_paper_check.py options and overrides]
set -euo pipefail
out=/tmp/paper_check
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .devcarry/whl/*.whl
export PYTHONPATH=$PWD/src:$PWD/.devcarry/pylib:/tmp/site PYTHONUNBUFFERED=1
mkdir -p .cache && tar xzf .devcarry/samples.tgz -C .cache && tar xzf .devcarry/corpora.tgz -C .cache
python3 scripts/gpu_bundle.py --relink
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
python3 scripts/gpu_paper_check.py "$out" "$@" device=cuda || true
# back through $OUT (at most 8 files): the figures, the runs, and every log with the base models in one tarball
if [ -n "${OUT:-}" ]; then
  cp "$out"/paper_check.json "$out"/paper_runs.csv "$out"/paper_targets.csv "$OUT"/ 2>/dev/null || true
  tar czf "$OUT/logs.tgz" -C "$out" $(cd "$out" && ls *.log) 2>/dev/null || true
fi
