"""The organ's intensity, learned from painted or support slices: a log-likelihood ratio of organ against its
surroundings, which tells where a registered mask's boundary should sit on the target image."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import torch
from scipy import ndimage

__all__ = [
    "IntensityLikelihood",
    "SupportIntensity",
    "corrected_region",
    "intensity_corrected_logits",
    "is_solid",
    "support_likelihood_ratio",
]


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


def is_solid(masks: Sequence[np.ndarray]) -> bool:
    """Whether no (H, W) mask has a hole. Where one has (a myocardium's blood pool, a vessel left out of a
    liver), the corrected region keeps its holes (:func:`corrected_region`'s ``fill``): a ring stays a ring."""
    masks = [np.asarray(mask, dtype=bool) for mask in masks]
    return all(np.array_equal(ndimage.binary_fill_holes(mask), mask) for mask in masks)


def corrected_region(soft: np.ndarray, ratio: np.ndarray, weight: float, fill: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """A carried or registered soft mask moved to where the organ's intensities end.

    The smoothed mask's logit plus ``weight`` x ``ratio``, smoothed again, is positive on the region (holes filled
    unless ``fill`` is False: a ring such as a myocardium stays a ring); of its connected parts only those that
    overlap the mask (>= 0.5) are kept, so organ-like intensities elsewhere add nothing.

    Args:
        soft: (*S) mask in [0, 1].
        ratio: (*S) intensity log-likelihood ratios (:class:`IntensityLikelihood`).
        weight: weight of the ratio against the mask's logit.
        fill: fill the region's holes. Defaults to True.

    Returns:
        the (*S) combined logit and the (*S) boolean region.
    """
    prior = np.clip(ndimage.gaussian_filter(np.clip(soft, 0, 1), 1.5), 1e-3, 1 - 1e-3)
    logit = ndimage.gaussian_filter(np.log(prior / (1 - prior)) + weight * ratio, 1.0)
    region = ndimage.binary_fill_holes(logit > 0) if fill else logit > 0
    components, count = ndimage.label(region)
    if count > 1:
        overlapping = np.unique(components[(soft >= 0.5) & region])
        region = np.isin(components, overlapping[overlapping > 0])
    return logit, region


class SupportIntensity(NamedTuple):
    """Result of :func:`support_likelihood_ratio`."""

    ratio: torch.Tensor  # (B, 1, *S) the query's log-likelihood ratios
    reference: torch.Tensor  # (B,) mean ratio inside the support's own organ (0 where there is none)
    solid: torch.Tensor  # (B,) bool: the support organ has no holes (:func:`is_solid`), so the correction fills them


def support_likelihood_ratio(
    query: torch.Tensor, support: torch.Tensor, support_mask: torch.Tensor, ring: float = 0.05
) -> SupportIntensity:
    """Each query pixel's intensity log-likelihood ratio under its episode's support organ (all shots pooled)
    against the organ's surroundings: positive on organ-like intensities, negative on its neighbours'.

    Intensities are binned over the 0.5-99.5 percentile range of the query and its shots (first channel).

    Args:
        query: (B, C, *S) query images.
        support: (B, K, C, *S) support images.
        support_mask: (B, K, 1, *S) support masks (foreground > 0).
        ring: width of the surroundings as a fraction of the images' mean side length (default 0.05: 13
            pixels of a 256 x 256 slice), so that a resized episode sees the same surroundings.

    Returns:
        :class:`SupportIntensity` on the query's device and dtype; zeros for an episode whose shots have no
        foreground or whose images are blank.
    """
    ring_pixels = max(1, round(ring * float(np.mean(query.shape[2:]))))
    ratios, references, solid = [], [], []
    queries, supports = query[:, 0].detach().cpu().numpy(), support[:, :, 0].detach().cpu().numpy()
    for q, shots, masks in zip(queries, supports, support_mask[:, :, 0].detach().cpu().numpy() > 0):
        painted = [k for k in range(len(shots)) if masks[k].any()]
        low, high = np.percentile(np.concatenate([q.ravel(), shots.ravel()]), [0.5, 99.5])
        if not painted or high <= low:  # no organ, or blank images: no intensity tells organ from surroundings
            ratios.append(np.zeros_like(q))
            references.append(0.0)
            solid.append(True)
            continue
        model = IntensityLikelihood(shots[painted], masks[painted], np.linspace(low, high, 49), ring_pixels)
        ratios.append(model(q))
        references.append(model.reference)
        solid.append(is_solid(masks[painted]))
    return SupportIntensity(
        torch.as_tensor(np.stack(ratios)[:, None], dtype=query.dtype, device=query.device),
        torch.as_tensor(references, dtype=query.dtype, device=query.device),
        torch.as_tensor(solid, dtype=torch.bool, device=query.device),
    )


def intensity_corrected_logits(prior: torch.Tensor, intensity: SupportIntensity, weight: float) -> torch.Tensor:
    """The registered mask moved to where the organ's intensities end (:func:`corrected_region`, holes filled
    only where the support organ has none), as logits.

    The weight is scaled per episode by how much the query under the registered mask looks like the support's
    organ (its mean ratio there over the support's own, clipped to [0, 1]): where another patient's organ has
    other intensities the ratio is not trusted and the registration stands.

    Args:
        prior: (B, 1, *S) warped soft mask in [0, 1] (the shots' mean).
        intensity: the query's :func:`support_likelihood_ratio`.
        weight: weight of the ratio against the prior's logit.

    Returns:
        (B, 1, *S) logits: positive exactly on the kept regions, their size the combined evidence's (at least 0.1).
    """
    out = []
    ratios, references = intensity.ratio[:, 0].detach().cpu().numpy(), intensity.reference.detach().cpu().numpy()
    solid = intensity.solid.detach().cpu().numpy()
    for soft, ratio, reference, fill in zip(prior[:, 0].detach().cpu().numpy(), ratios, references, solid):
        registered = soft >= 0.5
        trust = float(np.clip(ratio[registered].mean() / reference, 0.0, 1.0)) if registered.any() and reference > 0 else 0.0
        logit, region = corrected_region(soft, ratio, weight * trust, bool(fill))
        out.append(np.where(region, 1, -1) * (np.abs(logit) + 0.1))
    return torch.as_tensor(np.stack(out)[:, None], dtype=prior.dtype, device=prior.device)
