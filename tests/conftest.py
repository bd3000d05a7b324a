"""Shared fixtures: the real volumes in ../shared/data.

Tests that need them skip where the folder is absent (a user's clone) and fail where ``CI=true``.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
#: where the suite's temporary files go, so that it writes nothing outside the clone (gitignored)
TEMPORARY = REPO / ".pytest_tmp"


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """Temporary files inside the repository: ``tmp_path`` under ``.pytest_tmp/base`` (unless ``--basetemp`` is
    given) and ``tempfile``'s folder, for this process and the commands the tests start, ``.pytest_tmp/tmp``."""
    if config.option.basetemp is None:
        config.option.basetemp = str(TEMPORARY / "base")
    scratch = TEMPORARY / "tmp"
    scratch.mkdir(parents=True, exist_ok=True)
    os.environ["TMPDIR"] = str(scratch)
    tempfile.tempdir = str(scratch)


def skip_or_fail(message: str) -> None:
    """Skip the test (a user's clone without ../shared) or fail it when running in CI."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


def require_shared(subfolder: str = "") -> Path:
    """Return ``../shared/data/<subfolder>``; skip when absent, fail when running in CI."""
    path = SHARED_DATA / subfolder
    if not path.is_dir():
        skip_or_fail(f"real data folder {path} is absent (it sits beside the repository in CI and development)")
    return path


@pytest.fixture(scope="session")
def chaos_dir() -> Path:
    return require_shared("chaos_t2_mri")


@pytest.fixture(scope="session")
def cmr_dir() -> Path:
    return require_shared("cmr_mscmrseg_bssfp")
