"""The organ's intensity, learned from the painted slices: a log-likelihood ratio of organ against its surroundings."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage

__all__ = ["IntensityLikelihood"]


class IntensityLikelihood:
    """Histograms of the painted organ and of a ring around it; ``log p(x | organ) - log p(x | ring)``.

    The ring is what the organ's boundary must separate it from, so the ratio is positive on organ-like
    intensities near the organ and negative on its neighbours. Counts get one pseudo-count per bin.

    Args:
        images: (H, W) painted slices.
        masks: (H, W) their boolean organ masks, one per image, each with some foreground.
        edges: histogram bin edges (e.g. the volume's 0.5-99.5 percentile range in 48 bins).
        ring: width of the surrounding ring, in pixels. Defaults to 15.
    """

    def __init__(self, images: Sequence[np.ndarray], masks: Sequence[np.ndarray], edges: np.ndarray, ring: int = 15):
        if len(images) == 0 or len(images) != len(masks):
            raise ValueError(f"expected as many masks as images (at least one), got {len(images)} and {len(masks)}.")
        self.edges = np.asarray(edges, dtype=np.float64)
        organ, around = np.ones(len(self.edges) - 1), np.ones(len(self.edges) - 1)
        for image, mask in zip(images, masks):
            mask = np.asarray(mask, dtype=bool)
            ring_mask = ndimage.binary_dilation(mask, iterations=ring) & ~mask
            organ += np.histogram(image[mask], self.edges)[0]
            around += np.histogram(image[ring_mask], self.edges)[0]
        self.log_ratio = np.log(organ / organ.sum()) - np.log(around / around.sum())
        self.reference = float(np.mean([self(image)[np.asarray(mask, bool)].mean() for image, mask in zip(images, masks)]))

    def __call__(self, image: np.ndarray) -> np.ndarray:
        """(H, W) intensities -> (H, W) log-likelihood ratios (values outside the edges take the end bins)."""
        index = np.clip(np.digitize(image, self.edges) - 1, 0, len(self.log_ratio) - 1)
        return self.log_ratio[index]
