"""Scoring the painted-slice case: the painted middle slice, the copy baseline and whole-volume Dice."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["copy_over_extent", "middle_slice", "paint_slices", "volume_dice"]


def volume_dice(prediction: np.ndarray, truth: np.ndarray) -> float:
    """3D Dice of two boolean volumes, every slice counted (1.0 when both are empty)."""
    prediction, truth = np.asarray(prediction, bool), np.asarray(truth, bool)
    total = prediction.sum() + truth.sum()
    return 1.0 if total == 0 else 2.0 * float((prediction & truth).sum()) / float(total)


def middle_slice(truth: np.ndarray) -> int:
    """The slice (last axis) in the middle of the organ's extent, or the nearest one that holds the organ.

    Raises:
        ValueError: an empty mask.
    """
    slices = np.flatnonzero(np.asarray(truth, bool).any((0, 1)))
    if slices.size == 0:
        raise ValueError("the mask is empty: there is no slice to paint.")
    middle = (slices[0] + slices[-1]) // 2
    return int(slices[np.abs(slices - middle).argmin()])


def paint_slices(truth: np.ndarray, slices: Sequence[int], value: int = 1) -> np.ndarray:
    """A uint8 label map holding ``value`` where ``truth`` is set on ``slices`` (last axis): what a user paints."""
    annotation = np.zeros(truth.shape, dtype=np.uint8)
    for k in slices:
        annotation[..., k] = np.asarray(truth[..., k], bool) * value
    return annotation


def copy_over_extent(truth: np.ndarray, painted: int) -> np.ndarray:
    """The baseline: slice ``painted`` of ``truth`` copied onto every slice of the organ's true extent (it needs
    the truth's extent, which no user has)."""
    truth = np.asarray(truth, bool)
    slices = np.flatnonzero(truth.any((0, 1)))
    copy = np.zeros_like(truth)
    copy[..., slices[0] : slices[-1] + 1] = truth[..., painted : painted + 1]
    return copy
