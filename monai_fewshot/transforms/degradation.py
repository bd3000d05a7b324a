"""Degradations for restoration training and evaluation, as MONAI dictionary transforms.

Each transform reads a clean channel-first image under a key and writes a degraded copy under another key,
so that the clean reference stays in the dictionary: Gaussian or Rician noise (MONAI's ``RandGaussianNoise`` /
``RandRicianNoise`` underneath, at a fixed sigma) and through-plane down-sampling along the slice axis
(MONAI's ``Resize`` with area averaging: each low-resolution slice is the mean of ``factor`` thin slices, a
thick slice, and the affine's slice spacing grows by ``factor``, so the low-resolution volume covers the same
field of view and can be resampled back onto the full grid with ``ResampleToMatchd``).
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping

import numpy as np
import torch
from monai.config import KeysCollection
from monai.transforms import (
    Compose,
    CopyItemsd,
    MapTransform,
    Randomizable,
    RandGaussianNoise,
    RandRicianNoise,
    ResampleToMatchd,
    Resize,
)
from monai.utils import ensure_tuple

__all__ = ["NOISES", "RESTORATION_TASKS", "RandNoiseCopyd", "SliceDownsampleCopyd", "restoration_degradation"]

NOISES = ("gaussian", "rician")
RESTORATION_TASKS = ("denoise", "sr")


def _checked(data: Mapping, key: Hashable, transform: str) -> torch.Tensor:
    """The array under ``key``, refused when it holds NaN or infinite values."""
    image = data[key]
    if not torch.isfinite(torch.as_tensor(image)).all():
        raise ValueError(f"{transform}: the image under key {key!r} holds NaN or infinite values.")
    return image


def _output_names(keys: tuple[Hashable, ...], names: KeysCollection) -> tuple[Hashable, ...]:
    """One output key per key."""
    names = ensure_tuple(names)
    if len(names) != len(keys):
        raise ValueError(f"names must give one output key per key: keys {keys}, names {names}.")
    return names


class RandNoiseCopyd(Randomizable, MapTransform):
    """Write a noisy copy of ``keys`` into ``names``: Gaussian or Rician noise of standard deviation ``sigma``.

    ``sigma`` is absolute, in the units of the image intensity: on images normalised to [0, 1] (what the
    restoration builders give) it is relative to the intensity range, e.g. 0.05 = 5 % of the range. Gaussian
    noise adds N(0, sigma^2); Rician noise returns the magnitude ``|x + n1 + i n2|`` with n1, n2 ~ N(0, sigma^2),
    the noise of magnitude MR images. The noise is always applied (a degradation, not an augmentation) and is
    reproducible through ``set_random_state``.

    Args:
        keys: keys of the clean images, channel-first (C, *spatial).
        names: keys to write the noisy copies to, one per key.
        noise: ``"gaussian"`` or ``"rician"``. Defaults to ``"gaussian"``.
        sigma: noise standard deviation (> 0). Defaults to 0.05.
        allow_missing_keys: don't raise when a key is missing.

    Example::

        noisy = RandNoiseCopyd("label", "image", noise="rician", sigma=0.05).set_random_state(0)
        noisy({"label": torch.full((1, 32, 32, 16), 0.5)})["image"].std()  # about 0.05
    """

    def __init__(
        self,
        keys: KeysCollection,
        names: KeysCollection,
        noise: str = "gaussian",
        sigma: float = 0.05,
        allow_missing_keys: bool = False,
    ) -> None:
        MapTransform.__init__(self, keys, allow_missing_keys)
        self.names = _output_names(self.keys, names)
        if noise not in NOISES:
            raise ValueError(f"noise must be one of {NOISES}, got {noise!r}.")
        if not sigma > 0:
            raise ValueError(f"sigma must be > 0, got {sigma}.")
        self.noise, self.sigma = noise, float(sigma)
        if noise == "gaussian":
            self.add_noise: RandGaussianNoise | RandRicianNoise = RandGaussianNoise(1.0, 0.0, sigma, sample_std=False)
        else:
            self.add_noise = RandRicianNoise(1.0, 0.0, sigma, sample_std=False)

    def set_random_state(self, seed: int | None = None, state: np.random.RandomState | None = None) -> RandNoiseCopyd:
        super().set_random_state(seed, state)
        self.add_noise.set_random_state(seed, state)
        return self

    def randomize(self, data=None) -> None:
        """The noise is drawn by the MONAI transform underneath, per image."""

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> dict[Hashable, torch.Tensor]:
        d = dict(data)
        for key, name in self.key_iterator(d, self.names):
            d[name] = self.add_noise(_checked(d, key, type(self).__name__))
        return d


class SliceDownsampleCopyd(MapTransform):
    """Write a through-plane down-sampled copy of ``keys`` into ``names``: thick slices from thin ones.

    Along ``axis`` (the slice axis, the last spatial axis of the NIfTI files here) the image is resized by
    area averaging (MONAI ``Resize(mode="area")``) to ``ceil(n / factor)`` slices; the other axes are kept.
    On a ``MetaTensor`` the affine is updated (slice spacing times ``factor``, same field of view), so
    ``ResampleToMatchd(keys=name, key_dst=key)`` puts the copy back on the full grid for the network or an
    interpolation baseline.

    Args:
        keys: keys of the images, channel-first (C, *spatial) with at least 2 spatial axes.
        names: keys to write the low-resolution copies to, one per key.
        factor: down-sampling factor (an integer >= 2, e.g. 2 or 4).
        axis: spatial axis of the slices (0-based, negative counts from the end). Defaults to -1.
        allow_missing_keys: don't raise when a key is missing.
    """

    def __init__(
        self, keys: KeysCollection, names: KeysCollection, factor: int = 2, axis: int = -1, allow_missing_keys: bool = False
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.names = _output_names(self.keys, names)
        if isinstance(factor, bool) or not isinstance(factor, (int, np.integer)) or factor < 2:
            raise ValueError(f"factor must be an integer >= 2 (e.g. 2 or 4), got {factor!r}.")
        self.factor, self.axis = int(factor), axis

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> dict[Hashable, torch.Tensor]:
        d = dict(data)
        for key, name in self.key_iterator(d, self.names):
            image = _checked(d, key, type(self).__name__)
            spatial = list(image.shape[1:])
            if len(spatial) < 2 or not -len(spatial) <= self.axis < len(spatial):
                raise ValueError(
                    f"{type(self).__name__}: axis {self.axis} is not a spatial axis of the image under key {key!r} "
                    f"(channel-first shape {tuple(image.shape)})."
                )
            size = [-1] * len(spatial)
            size[self.axis] = -(-spatial[self.axis] // self.factor)
            d[name] = Resize(size, mode="area")(image)
        return d


def restoration_degradation(
    task: str = "denoise",
    noise: str = "gaussian",
    sigma: float = 0.05,
    factor: int = 2,
    clean_key: str = "label",
    degraded_key: str = "image",
    low_res_key: str = "low_res",
) -> Compose:
    """The degradation of a restoration task: the network input under ``degraded_key`` from ``clean_key``.

    ``"denoise"``: a noisy copy (:class:`RandNoiseCopyd`). ``"sr"``: through-plane super-resolution; the
    thick-slice copy (:class:`SliceDownsampleCopyd`) under ``low_res_key`` and, under ``degraded_key``, that
    copy resampled trilinearly onto the clean image's grid (MONAI ``ResampleToMatchd``): the network refines
    the interpolated volume (its output has the clean grid, so the GRL head is the residual one).

    The keys default to MONAI's engine keys: the network input is ``"image"`` and the clean reference ``"label"``.
    Seed the returned ``Compose`` with ``set_random_state``.

    Args:
        task: ``"denoise"`` or ``"sr"``.
        noise, sigma: noise type and standard deviation (``"denoise"``).
        factor: through-plane down-sampling factor (``"sr"``).
        clean_key, degraded_key, low_res_key: the dictionary keys.
    """
    if task not in RESTORATION_TASKS:
        raise ValueError(f"task must be one of {RESTORATION_TASKS}, got {task!r}.")
    if task == "denoise":
        return Compose([RandNoiseCopyd(clean_key, degraded_key, noise=noise, sigma=sigma)])
    return Compose(
        [
            SliceDownsampleCopyd(clean_key, low_res_key, factor=factor),
            CopyItemsd(low_res_key, names=degraded_key),
            ResampleToMatchd(degraded_key, key_dst=clean_key, mode="bilinear", padding_mode="border"),
        ]
    )
