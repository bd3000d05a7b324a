"""The GRL scaling benchmark measures every case under the allocator settings it names."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from monai_fewshot.bundle_runner import ALLOCATOR_TUNABLES

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("allocator, expected", [("product", ALLOCATOR_TUNABLES), ("system", "glibc defaults")])
def test_cases_run_under_the_named_allocator(tmp_path, allocator, expected):
    out = tmp_path / "scaling.json"
    command = [sys.executable, str(REPO / "benchmarks" / "grl_scaling.py"), "--sizes", "16", "--models", "restormer",
               "--passes", "forward", "--threads", "1", "--repeats", "0", "--allocator", allocator, "--out", str(out)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    record = json.loads(out.read_text())
    assert record["complete"] and record["machine"]["allocator"] == expected
    (row,) = record["rows"]
    assert row["model"] == "restormer" and row["size"] == 16 and row["seconds"] > 0 and row["allocator"] == expected
