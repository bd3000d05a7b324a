"""PNG of a whole-organ result: axial slices across the organ with the truth and the prediction outlined."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from monai_fewshot.visualize.overlay import save_figure

__all__ = ["save_whole_organ_overlay"]


def save_whole_organ_overlay(
    path: str | os.PathLike,
    image: np.ndarray,
    prediction: np.ndarray,
    truth: np.ndarray,
    painted: int,
    panels: int = 6,
    title: str = "",
) -> Path:
    """Write a row of ``panels`` axial slices spread over the union of the organ's and the prediction's extents,
    the painted one included: truth in blue, prediction in red, the painted slice marked. Written atomically.

    Args:
        path: the PNG to write.
        image, prediction, truth: (X, Y, Z) volume and boolean masks.
        painted: index of the painted slice.
        panels: slices shown. Defaults to 6.
        title: the figure's title.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    prediction, truth = np.asarray(prediction, bool), np.asarray(truth, bool)
    filled = np.flatnonzero((prediction | truth).any((0, 1)))
    chosen = sorted(set(np.linspace(filled[0], filled[-1], panels).round().astype(int).tolist()) | {painted})
    figure, axes = plt.subplots(1, len(chosen), figsize=(2.2 * len(chosen), 2.6), squeeze=False)
    for axis, k in zip(axes[0], chosen):
        axis.imshow(np.asarray(image[..., k], np.float32).T, cmap="gray", origin="lower")
        for mask, colour in ((truth[..., k], "#1f77b4"), (prediction[..., k], "#d62728")):
            if mask.any():
                axis.contour(mask.T, levels=[0.5], colors=[colour], linewidths=1.0, origin="lower")
        axis.set_title(f"slice {k}" + (" (painted)" if k == painted else ""), fontsize=8)
        axis.axis("off")
    figure.suptitle((title + "\n" if title else "") + "blue: reference, red: prediction", fontsize=8)
    return save_figure(figure, path, dpi=90)
