"""Restoration data from a folder of ``image_N`` NIfTI volumes: a fixed split, training patches, degraded volumes.

Every volume is read with MONAI ``LoadImaged``, made channel-first and min-max normalised to [0, 1] per volume
(``ScaleIntensityd``), so noise sigmas are fractions of the intensity range and PSNR/SSIM use a data range of
1. Dictionaries hold the clean volume under ``"label"`` and the degraded network input under ``"image"`` (the
keys MONAI's ``SupervisedTrainer`` / ``SupervisedEvaluator`` read), ``"low_res"`` for super-resolution and
``"id"`` (the ``N`` of ``image_N``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import nibabel as nib
import numpy as np
from monai.data import CacheDataset, Dataset
from monai.transforms import (
    CenterSpatialCropd,
    Compose,
    EnsureTyped,
    LoadImaged,
    RandSpatialCropSamplesd,
    ScaleIntensityd,
)

from monai_fewshot.data.layout import VolumeRecord, read_folder
from monai_fewshot.transforms import restoration_degradation

__all__ = ["RESTORATION_SPLITS", "restoration_patches", "restoration_split", "restoration_volumes"]

RESTORATION_SPLITS = ("train", "validation", "test")


def restoration_split(volume_ids: Sequence[str], n_test: int = 4, n_val: int = 2, seed: int = 0) -> dict[str, list[str]]:
    """A fixed split of volumes: a permutation of the ids drawn from ``seed``; the first ``n_test`` are the
    held-out test volumes, the next ``n_val`` the validation volumes (checkpoint choice), the rest train.

    The ids are sorted (numerically where they are numbers) before the permutation, so the split depends on
    the set of ids and the seed only. Each list is returned sorted.

    Raises:
        ValueError: fewer than ``n_test + n_val + 1`` volumes, or repeated ids.
    """
    ids = sorted(volume_ids, key=lambda i: (int(i), i) if i.isdigit() else (1 << 62, i))
    if len(set(ids)) != len(ids):
        raise ValueError(f"volume ids must be unique, got {ids}.")
    if n_test < 1 or n_val < 0 or len(ids) < n_test + n_val + 1:
        raise ValueError(
            f"a split of {n_test} test and {n_val} validation volumes (n_test >= 1, n_val >= 0) needs at least "
            f"{n_test + n_val + 1} volumes, got {len(ids)}."
        )
    order = np.random.default_rng(seed).permutation(len(ids))
    parts = {"test": order[:n_test], "validation": order[n_test : n_test + n_val], "train": order[n_test + n_val :]}
    return {split: [ids[i] for i in sorted(part)] for split, part in parts.items()}


def _split_records(
    dataset_dir: str | Path, split: str, seed: int, n_test: int, n_val: int, min_size: Sequence[int] | None = None
) -> list[VolumeRecord]:
    """The records of one split, each checked from its header to be a 3D volume (at least ``min_size``)."""
    if split not in RESTORATION_SPLITS:
        raise ValueError(f"split must be one of {RESTORATION_SPLITS}, got {split!r}.")
    records = read_folder(dataset_dir, require_labels=False)
    chosen = set(restoration_split([r.id for r in records], n_test, n_val, seed)[split])
    records = [r for r in records if r.id in chosen]
    for record in records:
        shape = nib.load(str(record.image)).shape
        if len(shape) != 3:
            raise ValueError(f"{record.image} has shape {shape}: restoration takes 3D volumes (H, W, slices).")
        if min_size is not None and any(s < p for s, p in zip(shape, min_size)):
            raise ValueError(f"{record.image} has shape {shape}, smaller than the patch size {tuple(min_size)}.")
    return records


def _load() -> Compose:
    """Read, channel-first, float32, min-max to [0, 1] per volume: the clean volume under ``"label"``."""
    return Compose(
        [
            LoadImaged("label", image_only=True, ensure_channel_first=True),
            EnsureTyped("label", dtype=np.float32),
            ScaleIntensityd("label", minv=0.0, maxv=1.0),
        ]
    )


def restoration_patches(
    dataset_dir: str | Path,
    patch_size: Sequence[int] = (64, 64, 16),
    patches_per_volume: int = 4,
    task: str = "denoise",
    noise: str = "gaussian",
    sigma: float = 0.05,
    factor: int = 2,
    seed: int = 0,
    n_test: int = 4,
    n_val: int = 2,
) -> CacheDataset:
    """Training patches of the training volumes, freshly cropped and degraded at every pass.

    Volumes are loaded and normalised once (``CacheDataset``); each pass draws ``patches_per_volume`` random
    crops of ``patch_size`` per volume (``RandSpatialCropSamplesd``; batch them with ``monai.data.DataLoader``,
    whose collate flattens the lists) and degrades them (:func:`~monai_fewshot.transforms.restoration_degradation`).
    The stream of crops and noise is reproducible from ``seed``; a MONAI ``DataLoader`` reseeds it from torch's
    generator when it is created, so seed torch too (``monai.utils.set_determinism``, as the bundle does).

    Args:
        dataset_dir: folder of ``image_N.nii(.gz)`` volumes (labels are not read).
        patch_size: crop size (H, W, slices); for ``"sr"`` the slice size should be a multiple of ``factor``.
        patches_per_volume: crops per volume per pass.
        task, noise, sigma, factor: the degradation.
        seed: seed of the split and of the crop and noise stream.
        n_test, n_val: volumes held out for testing and validation (:func:`restoration_split`).

    Returns:
        a dataset of lists of ``{"label": clean (1, *patch), "image": degraded, "id": N[, "low_res"]}``.

    Raises:
        FileNotFoundError: the folder does not exist. ValueError: no volume, a volume that is not 3D or is
        smaller than ``patch_size``, a bad degradation argument.
    """
    if patches_per_volume < 1:
        raise ValueError(f"patches_per_volume must be >= 1, got {patches_per_volume}.")
    records = _split_records(dataset_dir, "train", seed, n_test, n_val, min_size=patch_size)
    transform = Compose(
        [
            *_load().transforms,
            RandSpatialCropSamplesd("label", roi_size=patch_size, num_samples=patches_per_volume, random_size=False),
            *restoration_degradation(task, noise, sigma, factor).transforms,
        ]
    ).set_random_state(seed)
    data = [{"label": str(r.image), "id": r.id} for r in records]
    return CacheDataset(data, transform=transform, progress=False)


def restoration_volumes(
    dataset_dir: str | Path,
    split: str = "test",
    task: str = "denoise",
    noise: str = "gaussian",
    sigma: float = 0.05,
    factor: int = 2,
    seed: int = 0,
    n_test: int = 4,
    n_val: int = 2,
    roi_size: Sequence[int] | None = None,
) -> Dataset:
    """Whole volumes of the validation or test split, degraded once: every method and every run sees the same
    degraded inputs (the degradation's random state is ``seed``, applied in volume order).

    Args are those of :func:`restoration_patches`, with ``split`` one of ``"train"``, ``"validation"``, ``"test"``,
    and ``roi_size``: None for whole volumes, or the size (H, W, slices) of a centred crop of each normalised
    clean volume, taken before the degradation (MONAI ``CenterSpatialCropd``; -1 keeps an axis whole, a size
    above the volume's keeps it whole too), to score a cheaper central region.

    Returns:
        a dataset of ``{"label": clean (1, H, W, D), "image": degraded, "id": N[, "low_res"]}`` MetaTensors.
    """
    if roi_size is not None and (len(roi_size) != 3 or 0 in roi_size):
        raise ValueError(f"roi_size must give 3 sizes (H, W, slices; -1 keeps an axis whole), got {roi_size}.")
    records = _split_records(dataset_dir, split, seed, n_test, n_val)
    crop = [] if roi_size is None else [CenterSpatialCropd("label", roi_size=roi_size)]
    transform = Compose([*_load().transforms, *crop, *restoration_degradation(task, noise, sigma, factor).transforms])
    transform.set_random_state(seed)
    return Dataset([transform({"label": str(r.image), "id": r.id}) for r in records])
