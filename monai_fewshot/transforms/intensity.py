"""The one intensity normalisation of images that segmentation reads: per-volume z-score after clipping to
percentiles (MONAI's ``ClipIntensityPercentiles`` and ``NormalizeIntensity``)."""

from __future__ import annotations

import numpy as np
import torch
from monai.transforms import ClipIntensityPercentiles, NormalizeIntensity
from monai.utils import convert_to_tensor

__all__ = ["CLIP_PERCENTILES", "robust_zscore"]

CLIP_PERCENTILES = (0.5, 99.5)


def robust_zscore(
    image: np.ndarray | torch.Tensor, name: str = "image", percentiles: tuple[float, float] = CLIP_PERCENTILES
) -> np.ndarray | torch.Tensor:
    """Clip ``image`` to its ``percentiles``, then z-score it over the whole volume, in float64.

    A few extreme voxels (a 3e38 spike, a saturated artefact) then move neither the mean nor the spread, and
    intensities scaled by any factor (x 1e30 included) normalise to the same values.

    Args:
        image: any shape, numpy or torch (the whole volume: the statistics are over every voxel).
        name: what to call the image in an error (its file).
        percentiles: lower and upper clipping percentiles. Defaults to (0.5, 99.5).

    Returns:
        float32 of ``image``'s shape and kind (numpy or torch, on its device).

    Raises:
        ValueError: ``image`` holds NaN or infinite values, or is empty.
    """
    values = torch.as_tensor(image).double()
    if values.numel() == 0:
        raise ValueError(f"{name} is empty.")
    if not torch.isfinite(values).all():
        raise ValueError(f"{name} holds NaN or infinite intensities: normalisation needs finite values.")
    values = values / values.abs().max().clamp_min(1e-300)  # 1e300-scale values: their squares stay finite
    clipped = ClipIntensityPercentiles(lower=percentiles[0], upper=percentiles[1])(values)
    normalised = convert_to_tensor(NormalizeIntensity()(clipped), dtype=torch.float32, track_meta=False)
    return normalised.numpy() if isinstance(image, np.ndarray) else normalised.to(image.device)
