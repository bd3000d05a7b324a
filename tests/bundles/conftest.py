"""Fixtures for running the bundles for real on small CHAOS folders."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import require_shared, skip_or_fail

BUNDLES = Path(__file__).resolve().parents[2] / "bundles"
BUNDLE = BUNDLES / "catnet_fewshot"
SCHEMA = Path(__file__).resolve().parents[3] / "shared" / "schemas" / "meta_schema_20240725.json"
SMALL_CHAOS = ("1", "2", "3", "5", "8", "10", "13", "15", "19", "20")


def bundle_command(verb: str, *configs: str, bundle: Path = BUNDLE, **overrides) -> list[str]:
    """``python -m monai.bundle <verb>`` on the configs of ``bundle`` with ``--key value`` overrides."""
    files = [str(bundle / "configs" / c) for c in configs]
    command = [sys.executable, "-m", "monai.bundle", verb]
    if files:
        command += ["--config_file", files[0] if len(files) == 1 else repr(files)]
    command += ["--meta_file", str(bundle / "configs" / "metadata.json")]
    if verb == "run":
        command += ["--logging_file", str(bundle / "configs" / "logging.conf")]
    if verb != "verify_metadata":
        command += ["--bundle_root", str(bundle)]
    for key, value in overrides.items():
        command += [f"--{key}", str(value)]
    return command


def run_bundle(*args, timeout: float = 900, check: bool = True, **overrides) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2")}
    result = subprocess.run(bundle_command(*args, **overrides), capture_output=True, text=True, timeout=timeout, env=env)
    if check and result.returncode != 0:
        raise AssertionError(f"bundle {args} failed:\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}")
    return result


@pytest.fixture(scope="session")
def meta_schema() -> Path:
    """The bundle metadata schema in ../shared/schemas: verify_metadata would download it (and create the folder)
    when the file is absent, so tests skip without it (a user's clone) and fail in CI."""
    require_shared()
    if not SCHEMA.is_file():
        skip_or_fail(f"metadata schema {SCHEMA} is absent (it sits in ../shared/schemas beside the repository in CI)")
    return SCHEMA


@pytest.fixture(scope="session")
def small_chaos(tmp_path_factory, chaos_dir) -> Path:
    """Ten CHAOS subjects (symbolic links, nothing copied): 5 folds of 3, 4 training volumes per fold."""
    source = chaos_dir
    folder = tmp_path_factory.mktemp("small_chaos")
    for subject in SMALL_CHAOS:
        for kind in ("image", "label"):
            (folder / f"{kind}_{subject}.nii.gz").symlink_to(source / f"{kind}_{subject}.nii.gz")
    return folder


@pytest.fixture(scope="session")
def supervoxel_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("supervoxels")
