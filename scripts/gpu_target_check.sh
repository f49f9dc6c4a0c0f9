#!/usr/bin/env bash
# Device run of the `cpu`-scale main table's target runs (see scripts/target_runs.py): the lent GPU
# machine cannot reach PyPI, so pure-python deps come unpacked in .devcarry/pylib and parsed samples in
# .devcarry/samples.tgz and .devcarry/code.jsonl.gz. Usage: scripts/gpu_target_check.sh MIXTURES.json
set -euo pipefail
out=${OUT:-/tmp/out}
export PYTHONPATH=$PWD/src:$PWD/.devcarry/pylib
mkdir -p .cache && tar xzf .devcarry/samples.tgz -C .cache
gunzip -c .devcarry/code.jsonl.gz > /tmp/code.jsonl
CODE_SAMPLES=/tmp/code.jsonl python3 scripts/target_runs.py "$1" device=cuda paths.out="$out/cpu" 2>&1 \
  | tr '\r' '\n' | grep -v "run/s\]" | tail -n 20
cd "$out/cpu/target/runs" && tar czf "$out/target_runs.tgz" . && cp "$OLDPWD"/.cache/base/target-*.pt "$out/"
