#!/usr/bin/env bash
# The prepared GRL GPU check: benchmarks/grl_scaling.py on the GPU (forward of 3D GRL-T, its token-per-voxel form,
# Restormer and SwinUNETR; forward+backward of all but the token-per-voxel form) and benchmarks/restore_precision.py
# (the shipped denoising model's PSNR under bfloat16 autocast against float32). Sized for a 10-minute device run.
# The clean volume travels with the working tree: copy one into runs/ (ignored) and carry it, e.g.
#   cp ../shared/data/chaos_t2_mri/image_3.nii.gz runs/   then, on the device (carry: runs/image_3.nii.gz):
#   CLEAN=runs/image_3.nii.gz OUT_DIR=$OUT benchmarks/grl_gpu_check.sh
# On a CPU it runs the same code, so the slow suite tests it with a tiny budget:
#   OUT_DIR=/tmp/check SIZES=16 CLEAN=crop.nii.gz benchmarks/grl_gpu_check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-.venv/bin/python}
out=${OUT_DIR:-benchmarks/results}
clean=${CLEAN:?CLEAN must name a clean 3D NIfTI volume}
# shellcheck disable=SC2086  # SIZES is a list of sizes
"$python" benchmarks/grl_scaling.py --sizes ${SIZES:-32 64 96} --repeats 2 \
    --train-models grl_tiny grl_tiny_ckpt swin_unetr restormer --out "$out/grl_scaling_gpu.json"
"$python" benchmarks/restore_precision.py --clean "$clean" --out "$out/restore_precision_gpu.json"
echo "wrote $out/grl_scaling_gpu.json and $out/restore_precision_gpu.json"
