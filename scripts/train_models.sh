#!/usr/bin/env bash
# Trains the shipped model and the two baselines with the same budget (config/train.yaml),
# two jobs side by side on one thread each (a 2-core machine), then evaluates all three.
# Usage: scripts/train_models.sh [RUNS_DIR]   (default runs/); resumable: re-run to continue.
set -euo pipefail
runs=${1:-runs}
bin=.venv/bin
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
mkdir -p "$runs"
"$bin/unimrseg" train --config config/train.yaml --out-dir "$runs/unimrseg" --quiet \
  > "$runs/unimrseg.log" 2>&1 &
main=$!
(
  "$bin/unimrseg" train --config config/train.yaml --method complete-only --out-dir "$runs/complete-only" --quiet
  "$bin/unimrseg" train --config config/train.yaml --method modality-dropout --out-dir "$runs/modality-dropout" --quiet
) > "$runs/baselines.log" 2>&1 &
baselines=$!
wait "$main" "$baselines"
echo "trained: $runs/{unimrseg,complete-only,modality-dropout}/model.pt"
