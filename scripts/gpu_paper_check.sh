#!/usr/bin/env bash
# One prepared device check: a slice of the `paper`-scale sweep on one GPU, to measure seconds per
# proxy run before committing 512 of them. Run on the lent GPU machine from the repo root with the
# pure-python deps (hydra-core, omegaconf, antlr4) unpacked in .devcarry/pylib and the parsed samples in
# .devcarry/samples.tgz (that machine cannot reach PyPI). Usage: scripts/gpu_paper_check.sh [N_RUNS]
set -euo pipefail
n=${1:-12}
out=${OUT:-/tmp/out}
export PYTHONPATH=$PWD/src:$PWD/.devcarry/pylib
mkdir -p .cache && tar xzf .devcarry/samples.tgz -C .cache
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name(0))"
t0=$(date +%s)
python3 -m causalmix.cli sweep scale=paper sweep.n_runs="$n" paths.out="$out/paper" 2>&1 \
  | tr '\r' '\n' | grep -v "run/s\]" | tail -n 12
echo "wall for $n runs incl. world build and base pretraining: $(( $(date +%s) - t0 )) s"
python3 - "$out/paper" <<'PY'
import sys, glob, pandas as pd
df = pd.concat(pd.read_csv(f) for f in glob.glob(sys.argv[1] + "/runs/*/run_*.csv"))
df.to_csv(sys.argv[1] + "/../paper_runs.csv", index=False)
print(df[["wall_seconds", "steps", "tokens", "avg_dev", "avg_margin"]].describe().round(2).to_string())
PY
cp .cache/base/*.pt "$out/" 2>/dev/null || true
