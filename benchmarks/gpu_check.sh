#!/usr/bin/env bash
# The prepared GPU check: CAT-Net's paper configuration trained for a fixed number of steps under AMP, plain and
# registration-guided, each writing its step time, peak GPU memory and validation Dice as JSON (gpu_check.py).
# Sized for a 10-minute device run; on a CPU it runs the same code, so the slow suite tests it with a tiny budget:
#   OUT_DIR=/tmp/check benchmarks/gpu_check.sh --steps 2 --batch 2 --size 64 --val-slices 4 --data DIR
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-.venv/bin/python}
out=${OUT_DIR:-benchmarks/results}
"$python" benchmarks/gpu_check.py --steps 300 --out "$out/gpu_check.json" "$@"
"$python" benchmarks/gpu_check.py --steps 300 --guided --out "$out/gpu_check_guided.json" "$@"
echo "wrote $out/gpu_check.json and $out/gpu_check_guided.json"
