"""Fixtures of the registration tests: a real CHAOS volume, its liver slice, and a known warp to recover."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from monai_fewshot.data import CHAOS_CLASSES
from monai_fewshot.data.layout import VolumeStore, read_folder
from monai_fewshot.registration.pairwise import numpy_array, sitk_image


@pytest.fixture(scope="module")
def chaos_volume(chaos_dir):
    records = [r for r in read_folder(chaos_dir) if r.id == "2"]
    return VolumeStore(records, CHAOS_CLASSES)["2"]


@pytest.fixture(scope="module")
def liver_slice(chaos_volume):
    z = int(np.flatnonzero((chaos_volume.label == 1).any(axis=(0, 1))).mean())
    return chaos_volume.image[0, ..., z].astype(np.float32), chaos_volume.label[..., z] == 1


def _known_warp(array: np.ndarray, spacing, linear: bool, seed: int = 3) -> np.ndarray:
    """An affine (rotation, scaling, shift) plus a smooth random displacement, applied to ``array``."""
    image = sitk_image(array, spacing)
    dims = array.ndim
    affine = sitk.AffineTransform(dims)
    angle = np.deg2rad(10.0)
    matrix = np.eye(dims)
    matrix[:2, :2] = [[np.cos(angle) * 1.08, -np.sin(angle)], [np.sin(angle), np.cos(angle) * 0.94]]
    affine.SetMatrix(matrix.ravel().tolist())
    affine.SetTranslation([12.0, -10.0] + [0.0] * (dims - 2))
    affine.SetCenter(image.TransformContinuousIndexToPhysicalPoint([(s - 1) / 2 for s in image.GetSize()]))
    rng = np.random.default_rng(seed)
    field = np.stack([rng.normal(0, 40.0, array.shape) for _ in range(dims)], axis=-1)
    field_image = sitk.GetImageFromArray(np.ascontiguousarray(field.transpose(*reversed(range(dims)), dims)), isVector=True)
    field_image.CopyInformation(image)
    field_image = sitk.SmoothingRecursiveGaussian(field_image, 6.0 * float(min(spacing)))
    displacement = sitk.DisplacementFieldTransform(sitk.Cast(field_image, sitk.sitkVectorFloat64))
    transform = sitk.CompositeTransform([affine, displacement])
    interpolator = sitk.sitkLinear if linear else sitk.sitkNearestNeighbor
    return numpy_array(sitk.Resample(image, image, transform, interpolator, 0.0))


@pytest.fixture(scope="session")
def known_warp():
    return _known_warp
