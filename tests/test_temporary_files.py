"""The suite writes its temporary files inside the clone (tests/conftest.py), never beside it."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.conftest import REPO, TEMPORARY


def test_tmp_path_and_tempfile_stay_inside_the_repository(tmp_path, request):
    if Path(request.config.option.basetemp) != TEMPORARY / "base":
        pytest.skip("--basetemp was given: tmp_path goes where it names")
    assert tmp_path.is_relative_to(REPO)
    assert Path(tempfile.gettempdir()) == TEMPORARY / "tmp"
    child = subprocess.run([sys.executable, "-c", "import tempfile; print(tempfile.gettempdir())"],
                           capture_output=True, text=True, check=True, timeout=60)
    assert Path(child.stdout.strip()) == TEMPORARY / "tmp"  # the tests' commands inherit the folder
