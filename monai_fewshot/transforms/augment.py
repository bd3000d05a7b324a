"""The lineage's episode augmentations (gamma, affine, elastic) as MONAI dictionary transforms.

SSL-ALPNet's training augmentation: rotation up to 5 degrees, shift up to 5 px, shear up to 5 degrees, scale
0.9-1.2, a dense elastic field (Gaussian-smoothed uniform noise, sigma 5 px, alpha 10 px) and gamma 0.5-1.5.
Affine and gamma are MONAI's ``RandAffined`` and ``RandAdjustContrastd``. MONAI's ``Rand2DElasticd`` deforms
on a coarse control grid and ``Rand3DElasticd`` works in 3D only, so the dense (Simard) field in 2D and 3D
alike is ``RandDenseElasticd`` here. Geometric transforms move the image and the label with the same field;
labels are resampled with nearest neighbour, so they stay binary and aligned.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from monai.config import KeysCollection
from monai.transforms import Compose, MapTransform, RandAdjustContrastd, RandAffined, RandomizableTransform
from scipy.ndimage import gaussian_filter

__all__ = ["RandDenseElasticd", "lineage_augmentations"]


class RandDenseElasticd(RandomizableTransform, MapTransform):
    """Dense elastic deformation (Simard et al. 2003) of channel-first 2D or 3D arrays, one field for all keys.

    The displacement along each axis is uniform noise in [-1, 1] smoothed by a Gaussian of ``sigma`` voxels and
    scaled by ``alpha`` voxels.

    Args:
        keys: keys to deform with the same field.
        sigma: smoothing of the field in voxels (default 5, the lineage's).
        alpha: displacement scale in voxels (default 10, the lineage's).
        mode: interpolation per key, ``"bilinear"`` or ``"nearest"`` (default ``"bilinear"``; use nearest for labels).
        prob: probability of deforming (default 1.0).
        in_plane: in 3D, displace within the axial plane only (default True: the slice axis is coarse).
    """

    def __init__(
        self,
        keys: KeysCollection,
        sigma: float = 5.0,
        alpha: float = 10.0,
        mode: str | Sequence[str] = "bilinear",
        prob: float = 1.0,
        in_plane: bool = True,
        allow_missing_keys: bool = False,
    ) -> None:
        MapTransform.__init__(self, keys, allow_missing_keys)
        RandomizableTransform.__init__(self, prob)
        if sigma <= 0 or alpha < 0:
            raise ValueError(f"need sigma > 0 and alpha >= 0, got sigma={sigma}, alpha={alpha}.")
        modes = [mode] * len(self.keys) if isinstance(mode, str) else list(mode)
        if len(modes) != len(self.keys) or any(m not in ("bilinear", "nearest") for m in modes):
            raise ValueError(f"mode must be 'bilinear'/'nearest' or one of them per key, got {mode!r}.")
        self.modes = dict(zip(self.keys, modes))
        self.sigma, self.alpha, self.in_plane = sigma, alpha, in_plane
        self._field: np.ndarray | None = None

    def randomize(self, spatial_shape: Sequence[int]) -> None:  # type: ignore[override]
        super().randomize(None)
        if self._do_transform:
            noise = self.R.uniform(-1.0, 1.0, size=(len(spatial_shape), *spatial_shape))
            self._field = np.stack([gaussian_filter(n, self.sigma, mode="constant") * self.alpha for n in noise])
            if len(spatial_shape) == 3 and self.in_plane:
                self._field[2] = 0.0

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> dict[Hashable, torch.Tensor]:
        d = dict(data)
        first = next(iter(self.key_iterator(d)), None)
        if first is None:
            return d
        spatial_shape = tuple(d[first].shape[1:])
        if len(spatial_shape) not in (2, 3):
            raise ValueError(f"RandDenseElasticd takes (C, H, W) or (C, H, W, D) arrays, got shape {tuple(d[first].shape)}.")
        self.randomize(spatial_shape)
        if not self._do_transform:
            return d
        # sampling grid in grid_sample's normalised (x = last axis first) convention, align_corners=True
        axes = [torch.arange(s, dtype=torch.float32) for s in spatial_shape]
        coords = torch.stack(torch.meshgrid(*axes, indexing="ij"))
        coords = coords + torch.from_numpy(self._field.astype(np.float32))
        scale = torch.tensor([max(s - 1, 1) for s in spatial_shape], dtype=torch.float32).view(-1, *[1] * len(spatial_shape))
        grid = (2 * coords / scale - 1).flip(0).movedim(0, -1)[None]
        for key in self.key_iterator(d):
            value = d[key]
            if tuple(value.shape[1:]) != spatial_shape:
                raise ValueError(f"key {key!r} has spatial shape {tuple(value.shape[1:])}, expected {spatial_shape} like {first!r}.")
            tensor = torch.as_tensor(value)
            out = F.grid_sample(
                tensor[None].float(), grid, mode=self.modes[key], padding_mode="zeros", align_corners=True
            )[0].to(tensor.dtype)
            d[key] = out
        return d


def lineage_augmentations(
    spatial_dims: int = 2,
    image_key: str = "image",
    label_key: str = "label",
    rotate_degrees: float = 5.0,
    shift: float = 5.0,
    shear_degrees: float = 5.0,
    scale: tuple[float, float] = (0.9, 1.2),
    elastic_sigma: float = 5.0,
    elastic_alpha: float = 10.0,
    gamma: tuple[float, float] = (0.5, 1.5),
    image_mode: str = "bilinear",
    prob: float = 1.0,
) -> Compose:
    """The lineage's augmentation as one ``Compose``: affine, dense elastic, gamma (image only).

    Args:
        spatial_dims: 2 or 3.
        image_key / label_key: the keys of the image and the binary mask (default ``"image"`` / ``"label"``).
        rotate_degrees, shift, shear_degrees, scale: affine ranges (rotation about the slice axis in 3D).
        elastic_sigma, elastic_alpha: dense elastic field (voxels).
        gamma: gamma range of ``RandAdjustContrastd``.
        image_mode: image interpolation (default ``"bilinear"``; ``"nearest"`` for exact alignment checks).
        prob: probability of each transform (default 1.0).

    Call ``set_random_state(seed)`` on the result for reproducible draws.
    """
    if spatial_dims not in (2, 3):
        raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims}.")
    rotate = math.radians(rotate_degrees)
    shear = math.radians(shear_degrees)
    keys = [image_key, label_key]
    modes = [image_mode, "nearest"]
    rotate_range = (rotate,) if spatial_dims == 2 else (0.0, 0.0, rotate)
    return Compose(
        [
            RandAffined(
                keys=keys,
                prob=prob,
                rotate_range=rotate_range,
                shear_range=[shear] * (2 if spatial_dims == 2 else 6),
                translate_range=[shift] * 2 + ([0.0] if spatial_dims == 3 else []),
                scale_range=[(scale[0] - 1, scale[1] - 1)] * 2 + ([0.0] if spatial_dims == 3 else []),
                mode=modes,
                padding_mode="zeros",
            ),
            RandDenseElasticd(keys=keys, sigma=elastic_sigma, alpha=elastic_alpha, mode=modes, prob=prob),
            RandAdjustContrastd(keys=image_key, prob=prob, gamma=gamma),
        ]
    )
