"""The project as a user installs it: a wheel built from the repository, in a fresh virtual environment of its own,
runs the command's help, the demo and both segment cases with what the wheel ships (bundles, weights, examples)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]


def _run(command: list, cwd: Path, timeout: float = 900) -> str:
    result = subprocess.run([str(c) for c in command], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                            env={**os.environ, "PYTHONPATH": ""})
    assert result.returncode == 0, f"{command}:\n{(result.stdout + result.stderr)[-3000:]}"
    return result.stdout + result.stderr


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> dict[str, Path]:
    wheels, venv = tmp_path_factory.mktemp("wheels"), tmp_path_factory.mktemp("venv")
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", wheels, REPO], cwd=wheels)
    (wheel,) = wheels.glob("monai_fewshot-*.whl")
    _run([sys.executable, "-m", "venv", venv], cwd=venv)
    pip = [venv / "bin" / "python", "-m", "pip", "install", "--quiet"]
    _run([*pip, "torch==2.13.0"], cwd=venv)  # the CPU wheel first, as .ci/run does
    _run([*pip, wheel], cwd=venv)
    return {"command": venv / "bin" / "monai-fewshot", "python": venv / "bin" / "python", "work": tmp_path_factory.mktemp("work")}


def test_the_installed_package_is_not_the_checkout(installed):
    printed = _run([installed["python"], "-c", "import monai_fewshot; print(monai_fewshot.__file__)"], installed["work"])
    where = Path(printed.splitlines()[0])  # stdout comes first in what _run returns
    # the test's virtual environment lies under tmp_path, inside the clone (tests/conftest.py): the package must come
    # from that environment's site-packages, not from the checkout's monai_fewshot/
    venv = installed["python"].parent.parent
    assert where.is_relative_to(venv) and "site-packages" in where.parts
    assert not where.is_relative_to(REPO / "monai_fewshot")


def test_help_and_the_demo(installed):
    assert "segment" in _run([installed["command"], "--help"], installed["work"])
    out = _run([installed["command"], "demo", "--volumes", "mr", "--output", "demo"], installed["work"])
    assert "| **all** | **mean of 7** |" in out and (installed["work"] / "demo" / "whole_organ_dice.csv").is_file()


def test_segment_a_painted_slice_and_from_a_support_volume(installed):
    """Painted-slice propagation, and the bundle path with the wheel's bundled CAT-Net weights."""
    work = installed["work"]
    paint = (
        "import nibabel as nib, numpy as np\n"
        "from monai_fewshot.data.example_volumes import example_volume\n"
        "image, label = example_volume('mr')\n"
        "labels = nib.load(str(label)); liver = np.asanyarray(labels.dataobj) == 5\n"
        "painted = np.zeros(liver.shape, np.uint8); z = int(np.flatnonzero(liver.any((0, 1))).mean())\n"
        "painted[..., z] = liver[..., z]\n"
        "nib.save(nib.Nifti1Image(painted, labels.affine), 'painted.nii.gz')\n"
        "nib.save(nib.Nifti1Image(liver.astype(np.uint8), labels.affine), 'liver.nii.gz')\n"
        "print(image)\n"
    )
    image = _run([installed["python"], "-c", paint], work).strip().splitlines()[-1]
    out = _run([installed["command"], "segment", "--image", image, "--annotation", "painted.nii.gz", "--output", "mask.nii.gz",
                "--suggest"], work)
    assert "paint next: slice" in out and (work / "mask.nii.gz").is_file()
    out = _run([installed["command"], "segment", "--support", image, "--support-label", "liver.nii.gz", "--class-value",
                "1", "--query", image, "--output", "masks"], work)
    assert "wrote " in out and (work / "masks" / "example_mr_sm_seg.nii.gz").is_file()
