"""The prepared GPU check runs end to end on the CPU with a tiny budget and writes its figures."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_gpu_check_script_trains_validates_and_writes_both_records(chaos_dir, tmp_path):
    env = {**os.environ, "OUT_DIR": str(tmp_path), "PYTHON": sys.executable, "OMP_NUM_THREADS": "2"}
    command = ["bash", str(REPO / "benchmarks" / "gpu_check.sh"), "--steps", "2", "--batch", "2", "--size", "64",
               "--val-slices", "4", "--workers", "2", "--data", str(chaos_dir), "--cache", str(tmp_path / "supervoxels")]
    result = subprocess.run(command, capture_output=True, text=True, timeout=1800, env=env)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    for name, network in (("gpu_check.json", "catnet_paper"), ("gpu_check_guided.json", "catnet_paper (registration-guided)")):
        record = json.loads((tmp_path / name).read_text())
        assert record["network"] == network and record["steps"] == 2 and record["validation_slices"] == 4
        assert record["median_step_s"] > 0 and 0.0 <= record["validation_mean_dice"] <= 100.0
    assert f"wrote {tmp_path}/gpu_check.json" in result.stdout
