"""The one intensity normalisation: percentile clip, then z-score; outliers and scale do not move it."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
import torch

from monai_fewshot.data import VolumeRecord, load_volume
from monai_fewshot.data.example_volumes import example_volume
from monai_fewshot.transforms import robust_zscore


@pytest.fixture(scope="module")
def mr_volume() -> np.ndarray:
    return nib.load(str(example_volume("mr")[0])).get_fdata().astype(np.float32)


def test_one_extreme_voxel_moves_nothing_else(mr_volume):
    spiked = mr_volume.copy()
    spiked[0, 0, 0] = 3e38
    reference, result = robust_zscore(mr_volume), robust_zscore(spiked)
    others = np.ones(mr_volume.shape, bool)
    others[0, 0, 0] = False
    assert np.abs(result - reference)[others].max() < 0.05
    assert result.dtype == np.float32 and np.isfinite(result).all()


@pytest.mark.parametrize("scale, dtype", [(1e30, np.float32), (1e300, np.float64), (1e-30, np.float32)])
def test_scaled_intensities_normalise_alike(mr_volume, scale, dtype):
    scaled = mr_volume.astype(dtype) * dtype(scale)
    assert np.isfinite(scaled).all()
    np.testing.assert_allclose(robust_zscore(scaled), robust_zscore(mr_volume), atol=1e-4)


def test_zscore_of_the_clipped_volume():
    out = robust_zscore(torch.arange(1000.0))
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float32
    assert abs(out.mean().item()) < 1e-5 and abs(out.std(unbiased=False).item() - 1) < 1e-5
    assert out.max().item() < (999 - 499.5) / 288.675  # the top 0.5 % are clipped
    assert robust_zscore(torch.ones(4, 4)).abs().sum().item() == 0  # a flat image: zeros, not NaN


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_refused_naming_the_input(bad):
    image = np.zeros((4, 4, 2), np.float32)
    image[1, 1, 1] = bad
    with pytest.raises(ValueError, match="query.nii.gz holds NaN or infinite"):
        robust_zscore(image, name="query.nii.gz")


def test_load_volume_normalises_robustly_and_names_a_bad_file(tmp_path, mr_volume):
    affine = np.eye(4)
    clean, spiked = mr_volume, mr_volume.copy()
    spiked[5, 5, 5] = 3e38
    nib.save(nib.Nifti1Image(clean, affine), str(tmp_path / "image_1.nii.gz"))
    nib.save(nib.Nifti1Image(spiked, affine), str(tmp_path / "image_2.nii.gz"))
    first = load_volume(VolumeRecord("1", tmp_path / "image_1.nii.gz"), load_label=False).image
    second = load_volume(VolumeRecord("2", tmp_path / "image_2.nii.gz"), load_label=False).image
    assert np.abs(first - second).max() < 0.05 + np.abs(first[0, 5, 5, 5] - second[0, 5, 5, 5])
    assert np.median(np.abs(first - second)) < 1e-3
    nan = mr_volume.copy()
    nan[2, 2, 2] = np.nan
    nib.save(nib.Nifti1Image(nan, affine), str(tmp_path / "image_3.nii.gz"))
    with pytest.raises(ValueError, match=r"image_3\.nii\.gz holds NaN or infinite"):
        load_volume(VolumeRecord("3", tmp_path / "image_3.nii.gz"), load_label=False)
