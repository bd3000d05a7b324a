"""A SimpleITK image reader for MONAI ``LoadImage``.

MONAI's ``ITKReader`` needs the ``itk`` package; this reader uses ``SimpleITK`` (a declared dependency). It
returns the array in the file's (x, y, z) index order and a RAS affine, as ``NibabelReader`` does, so both
readers give the same arrays and affines for the same NIfTI file.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from monai.data import ImageReader
from monai.data.utils import is_supported_format
from monai.utils import MetaKeys, SpaceKeys

__all__ = ["SimpleITKReader"]

_SUFFIXES = ("nii", "nii.gz", "nrrd", "mha", "mhd")


class SimpleITKReader(ImageReader):
    """Read single-channel NIfTI/NRRD/MHA files with SimpleITK (``LoadImaged(reader=SimpleITKReader())``)."""

    def verify_suffix(self, filename: Sequence[str] | str) -> bool:
        return is_supported_format(filename, _SUFFIXES)

    def read(self, data: Sequence[str] | str, **kwargs):
        import SimpleITK as sitk

        names = [data] if isinstance(data, (str,)) or not isinstance(data, Sequence) else list(data)
        images = [sitk.ReadImage(str(name)) for name in names]
        return images if len(images) > 1 else images[0]

    def get_data(self, img) -> tuple[np.ndarray, dict]:
        import SimpleITK as sitk

        images = img if isinstance(img, list) else [img]
        arrays, meta = [], {}
        for image in images:
            if image.GetNumberOfComponentsPerPixel() != 1 or image.GetDimension() != 3:
                raise ValueError(f"SimpleITKReader reads single-channel 3D images, got {image.GetDimension()}D "
                                 f"with {image.GetNumberOfComponentsPerPixel()} components.")
            array = sitk.GetArrayFromImage(image).transpose(2, 1, 0)  # (z, y, x) -> (x, y, z)
            direction = np.asarray(image.GetDirection(), dtype=np.float64).reshape(3, 3)
            affine = np.eye(4)
            affine[:3, :3] = direction * np.asarray(image.GetSpacing(), dtype=np.float64)[None]
            affine[:3, 3] = image.GetOrigin()
            affine = np.diag([-1.0, -1.0, 1.0, 1.0]) @ affine  # ITK's LPS -> RAS
            arrays.append(array)
            meta = {
                MetaKeys.AFFINE: affine,
                MetaKeys.ORIGINAL_AFFINE: affine.copy(),
                MetaKeys.SPATIAL_SHAPE: np.asarray(array.shape),
                MetaKeys.SPACE: SpaceKeys.RAS,
                MetaKeys.ORIGINAL_CHANNEL_DIM: float("nan") if len(images) == 1 else 0,
                "spacing": np.asarray(image.GetSpacing()),
            }
        return (arrays[0] if len(arrays) == 1 else np.stack(arrays)), meta
