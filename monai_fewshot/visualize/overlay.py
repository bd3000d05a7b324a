"""PNG overlays of a few-shot episode: support with its mask, query with prediction and with truth."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from monai_fewshot.utils import atomic_path

__all__ = ["save_episode_overlay", "save_figure"]


def _as_2d(array) -> np.ndarray:
    array = np.asarray(array.detach().cpu() if hasattr(array, "detach") else array, dtype=np.float32)
    array = np.squeeze(array)
    if array.ndim != 2:
        raise ValueError(f"overlay panels take 2D slices, got shape {array.shape}.")
    return array


def save_episode_overlay(
    path: str | os.PathLike,
    support_image,
    support_mask,
    query_image,
    prediction,
    truth=None,
    title: str = "",
) -> Path:
    """Write a PNG with three panels: support + mask, query + prediction, query + truth (if given).

    Slices are 2D arrays or tensors (singleton axes are squeezed); masks are drawn as translucent fills with
    contours. The file is written atomically.

    Args:
        path: the PNG to write.
        support_image, support_mask: the support slice and its mask.
        query_image, prediction: the query slice and the predicted mask.
        truth: the query's true mask, or None.
        title: the figure's title (e.g. class, volumes, slice and Dice).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [("support + mask", support_image, support_mask, "#2ca02c"), ("query + prediction", query_image, prediction, "#d62728")]
    if truth is not None:
        panels.append(("query + truth", query_image, truth, "#1f77b4"))
    figure, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 3.6), squeeze=False)
    for axis, (name, image, mask, colour) in zip(axes[0], panels):
        image, mask = _as_2d(image).T, _as_2d(mask).T > 0.5  # NIfTI (x, y) -> rows are y
        axis.imshow(image, cmap="gray", origin="lower")
        if mask.any():
            axis.imshow(np.ma.masked_where(~mask, mask), cmap=matplotlib.colors.ListedColormap([colour]), alpha=0.35, origin="lower")
            axis.contour(mask, levels=[0.5], colors=[colour], linewidths=1.0, origin="lower")
        axis.set_title(name, fontsize=9)
        axis.axis("off")
    if title:
        figure.suptitle(title, fontsize=9)
    return save_figure(figure, path, dpi=100)


def save_figure(figure, path: str | os.PathLike, dpi: int) -> Path:
    """Lay out a matplotlib ``figure``, write it as a PNG atomically and close it."""
    import matplotlib.pyplot as plt

    figure.tight_layout()
    try:
        with atomic_path(path) as tmp:
            figure.savefig(tmp, dpi=dpi, format="png")
    finally:
        plt.close(figure)
    return Path(path)
