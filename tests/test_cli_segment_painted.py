"""``monai-fewshot segment --image --annotation``: files in, mask and confidence JSON out, clear errors."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest

from monai_fewshot.cli import main

AFFINE = np.diag([1.25, 1.25, 4.0, 1.0])


@pytest.fixture
def painted_case(tmp_path):
    """A synthetic organ (an ellipsoid on slices 3-12 of 16) with its middle slice painted as value 2."""
    x, y, z = np.meshgrid(np.arange(48), np.arange(48), np.arange(16), indexing="ij")
    organ = ((x - 24) / 10.0) ** 2 + ((y - 22) / 8.0) ** 2 + ((z - 7.5) / 5.0) ** 2 <= 1.0
    image = np.random.default_rng(1).normal(0, 0.05, organ.shape).astype(np.float32) + organ
    annotation = np.zeros(organ.shape, dtype=np.uint8)
    annotation[..., 8] = organ[..., 8] * 2
    nib.save(nib.Nifti1Image(image, AFFINE), tmp_path / "image.nii.gz")
    nib.save(nib.Nifti1Image(annotation, AFFINE), tmp_path / "painted.nii.gz")
    return tmp_path, organ


def run(case_dir, *extra):
    return main(["segment", "--image", str(case_dir / "image.nii.gz"), "--annotation", str(case_dir / "painted.nii.gz"),
                 "--output", str(case_dir / "out" / "organ.nii.gz"), *extra])


def test_writes_the_mask_with_the_image_affine_and_the_confidence_json(painted_case, capsys):
    case_dir, organ = painted_case
    assert run(case_dir, "--suggest") == 0
    out = capsys.readouterr().out
    mask = nib.load(case_dir / "out" / "organ.nii.gz")
    np.testing.assert_allclose(mask.affine, AFFINE)
    data = np.asanyarray(mask.dataobj)
    assert data.dtype == np.uint8 and data.shape == organ.shape
    assert 2 * (data.astype(bool) & organ).sum() / (data.astype(bool).sum() + organ.sum()) > 0.85
    report = json.loads((case_dir / "out" / "organ_confidence.json").read_text())
    assert report["label_value"] == 2 and report["support_slices"] == [8]
    assert [s["index"] for s in report["slices"]] == list(range(16))
    assert [s["foreground_voxels"] for s in report["slices"]] == data.sum((0, 1)).tolist()
    low, high = report["likely_extent"]
    assert low <= report["suggested_slice"] <= high and f"paint next: slice {report['suggested_slice']}" in out and "wrote " in out
    assert sorted(p.name for p in (case_dir / "out").iterdir()) == ["organ.nii.gz", "organ_confidence.json"]


def test_never_overwrites_without_being_asked(painted_case):
    case_dir, _ = painted_case
    assert run(case_dir) == 0
    before = (case_dir / "out" / "organ.nii.gz").stat().st_mtime_ns
    with pytest.raises(SystemExit, match="organ.nii.gz and .*organ_confidence.json already exist; .*--overwrite"):
        run(case_dir)
    assert (case_dir / "out" / "organ.nii.gz").stat().st_mtime_ns == before
    assert run(case_dir, "--overwrite") == 0


@pytest.mark.parametrize(
    "defect, message",
    [
        ("other affine", "another orientation or spacing"),
        ("other shape", "has shape .* they must share the grid"),
        ("truncated", "painted.nii.gz is not a readable NIfTI file"),
        ("absent value", "label value 5 is not painted"),
        ("nan", "image .*image.nii.gz holds NaN"),
    ],
)
def test_bad_input_gets_one_clear_line(painted_case, defect, message):
    case_dir, _ = painted_case
    painted = nib.load(case_dir / "painted.nii.gz")
    extra = []
    if defect == "other affine":
        nib.save(nib.Nifti1Image(np.asanyarray(painted.dataobj), np.diag([-1.25, 1.25, 4.0, 1.0])), case_dir / "painted.nii.gz")
    elif defect == "other shape":
        nib.save(nib.Nifti1Image(np.asanyarray(painted.dataobj)[..., :-1], AFFINE), case_dir / "painted.nii.gz")
    elif defect == "truncated":
        raw = (case_dir / "painted.nii.gz").read_bytes()
        (case_dir / "painted.nii.gz").write_bytes(raw[: len(raw) // 2])
    elif defect == "absent value":
        extra = ["--label-value", "5"]
    else:
        image = nib.load(case_dir / "image.nii.gz").get_fdata(dtype=np.float32)
        image[3, 3, 3] = np.nan
        nib.save(nib.Nifti1Image(image, AFFINE), case_dir / "image.nii.gz")
    with pytest.raises(SystemExit, match=f"^error: .*{message}"):
        run(case_dir, *extra)
    assert not (case_dir / "out").exists() or not any((case_dir / "out").iterdir())
