#!/usr/bin/env bash
# Trains the shipped model and the two baselines with the same budget (config/train.yaml).
# With CUDA (the config's `device: auto` picks it) the three run one after the other, each with the
# whole GPU, its batches cut from the decoded pool on the GPU; on a CPU, two jobs run side by side
# on one thread each (a 2-core machine).
# Usage: scripts/train_models.sh [RUNS_DIR]   (default runs/); resumable: re-run to continue.
# PYTHON names the interpreter (default .venv/bin/python; e.g. PYTHON=python3 on a GPU machine),
# CONFIG the training config (default config/train.yaml).
set -euo pipefail
runs=${1:-runs}
python=${PYTHON:-.venv/bin/python}
config=${CONFIG:-config/train.yaml}
train() {  # METHOD: train it into $runs/METHOD, appending to $runs/METHOD.log
  "$python" -m unimrseg_core.cli train --config "$config" --method "$1" --out-dir "$runs/$1" \
    --quiet >> "$runs/$1.log" 2>&1
}
mkdir -p "$runs"
failed=""
if "$python" -c 'import sys, torch; sys.exit(not torch.cuda.is_available())'; then
  for method in unimrseg complete-only modality-dropout; do
    train "$method" || failed="$failed $method"
  done
else
  export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
  train unimrseg &
  main=$!
  (train complete-only && train modality-dropout) &
  baselines=$!
  wait "$main" || failed="$failed unimrseg"
  wait "$baselines" || failed="$failed baselines"
fi
if [[ -n $failed ]]; then
  echo "failed:$failed (see $runs/*.log)" >&2
  exit 1
fi
echo "trained: $runs/{unimrseg,complete-only,modality-dropout}/model.pt"
