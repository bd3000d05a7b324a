"""The prepared GRL GPU check runs end to end on the CPU with a tiny budget and writes both records."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_grl_gpu_check_script_times_the_models_and_compares_precisions(chaos_dir, tmp_path):
    clean = tmp_path / "crop.nii.gz"
    nib.save(nib.load(chaos_dir / "image_3.nii.gz").slicer[96:160, 96:160, :8], clean)
    env = {**os.environ, "OUT_DIR": str(tmp_path), "PYTHON": sys.executable, "SIZES": "16", "CLEAN": str(clean)}
    result = subprocess.run(["bash", str(REPO / "benchmarks" / "grl_gpu_check.sh")], capture_output=True, text=True,
                            timeout=1200, env=env)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    scaling = json.loads((tmp_path / "grl_scaling_gpu.json").read_text())
    timed = {(r["model"], r["pass"]) for r in scaling["rows"] if "seconds" in r}
    assert {("grl_tiny", "forward"), ("grl_tiny_voxel", "forward"), ("restormer", "forward_backward")} <= timed
    assert ("grl_tiny_voxel", "forward_backward") not in {(r["model"], r["pass"]) for r in scaling["rows"]}
    precision = json.loads((tmp_path / "restore_precision_gpu.json").read_text())
    assert [r["method"] for r in precision["rows"]] == ["noisy input", "float32", "bfloat16 autocast"]
    assert precision["rows"][1]["psnr"] > precision["rows"][0]["psnr"] + 1.0  # the shipped model denoises
    assert abs(precision["bf16_minus_fp32_db"]) < 0.05
    assert f"wrote {tmp_path}/grl_scaling_gpu.json and {tmp_path}/restore_precision_gpu.json" in result.stdout


def test_restore_precision_names_a_missing_volume(tmp_path):
    absent = tmp_path / "absent.nii.gz"
    command = [sys.executable, str(REPO / "benchmarks" / "restore_precision.py"), "--clean", str(absent),
               "--out", str(tmp_path / "out.json")]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1 and result.stderr.strip() == f"error: clean volume {absent} does not exist."
    assert not (tmp_path / "out.json").exists()
