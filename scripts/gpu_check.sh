#!/usr/bin/env bash
# The GPU check of issue 14, on a machine with a CUDA GPU (see README, "GPU check").
# Usage: scripts/gpu_check.sh [OUT_DIR] [--budget SECONDS] [--cpu]
#   OUT_DIR: where gpu_check.json and every step's log go (also benchmarks/results/gpu_check.json).
# Uses .venv when there is one, else the machine's python3 with the repository on PYTHONPATH
# (the GPU image's preinstalled packages are enough; nothing is installed or downloaded).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-${OUT:-gpu_check_out}}
[ $# -gt 0 ] && shift
if [ -x .venv/bin/python ]; then
  python=.venv/bin/python
else
  python=${PYTHON:-python3}
  export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONUNBUFFERED=1
exec "$python" scripts/gpu_check.py --out "$out" "$@"
