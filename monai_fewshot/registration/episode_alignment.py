"""Align every support shot of an episode batch onto its query: the tensor form of the registration."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import SimpleITK as sitk
import torch

from monai_fewshot.registration.pairwise import numpy_array, sitk_image
from monai_fewshot.registration.parallel import register_pairs

__all__ = ["AlignedEpisode", "align_episode_batch"]

#: the registered prior's probabilities are clipped to this range before their logit (at most 4.6 in size), so that
#: other evidence added to it, such as the intensity ratio, can overturn it
PRIOR_RANGE = (0.01, 0.99)


class AlignedEpisode(NamedTuple):
    """Support shots on the query's grid. A shot whose warped mask lost all its foreground (registered out of
    view) keeps its original image and mask, and its prior is the (near-empty) warped soft mask. A blank
    (constant) query, such as an empty slice at a volume's edge, holds no organ: its shots stay as they are
    and their prior is empty. Registered with several seeds, a shot's image and mask are the first seed's and
    its prior the mean of every seed's warped soft mask."""

    support: torch.Tensor  # (B, K, C, *S) warped support images
    support_mask: torch.Tensor  # (B, K, 1, *S) warped masks binarised at 0.5
    prior: torch.Tensor  # (B, K, 1, *S) warped soft masks in [0, 1]

    def prior_logit(self) -> torch.Tensor:
        """(B, 1, *S) logit of the shots' mean warped soft mask, within :data:`PRIOR_RANGE`."""
        return torch.logit(self.prior.mean(1).clamp(*PRIOR_RANGE))


def _warp_channels(
    image: np.ndarray, reference: np.ndarray, transform: sitk.Transform, spacing: Sequence[float] | None
) -> np.ndarray:
    """(C, *S) support channels resampled onto the (*S) reference grid with ``transform``."""
    fixed = sitk_image(reference, spacing)
    channels = [sitk.Resample(sitk_image(c, spacing), fixed, transform, sitk.sitkLinear, 0.0) for c in image]
    return np.stack([numpy_array(c) for c in channels])


def align_episode_batch(
    query: torch.Tensor,
    support: torch.Tensor,
    support_mask: torch.Tensor,
    workers: int = 1,
    spacing: Sequence[float] | None = None,
    seeds: Sequence[int] | None = None,
    **options: Any,
) -> AlignedEpisode:
    """Register each support shot onto its query (first channels) and warp the shot's channels and mask.

    Args:
        query: (B, C, *S) query images.
        support: (B, K, C, *S) support images.
        support_mask: (B, K, 1, *S) support masks (foreground > 0).
        workers: worker processes for the B x K registrations (of each seed in turn).
        spacing: millimetres per spatial axis of query and support (default 1).
        seeds: register each shot once per seed of the affine stage's metric sampling and average the warped
            soft masks into the prior (the affine's optimum moves with its samples; the mean is steadier).
            Defaults to None: once, with ``options``' seed.
        options: further keyword arguments of :func:`~monai_fewshot.registration.register_support`.

    Returns:
        an :class:`AlignedEpisode` on the query's device and dtype.
    """
    if support.ndim != query.ndim + 1 or support_mask.shape[:2] != support.shape[:2]:
        raise ValueError(
            f"expected query (B, C, *S), support (B, K, C, *S) and support_mask (B, K, 1, *S); got "
            f"{tuple(query.shape)}, {tuple(support.shape)} and {tuple(support_mask.shape)}."
        )
    b, k = support.shape[:2]
    q = query.detach().float().cpu().numpy()
    s = support.detach().float().cpu().numpy()
    m = support_mask.detach().float().cpu().numpy()
    blank = [np.ptp(q[i, 0]) == 0 for i in range(b)]
    pairs = [(q[i, 0], s[i, j, 0], m[i, j, 0]) for i in range(b) for j in range(k) if not blank[i]]
    spacing = None if spacing is None else tuple(spacing)
    if seeds is not None and len(seeds) == 0:
        raise ValueError("seeds must name at least one seed, got none.")
    if seeds is not None and "seed" in options:
        raise ValueError(f"give seeds or seed, not both: got seeds={list(seeds)} and seed={options['seed']}.")
    seeds = [options.pop("seed", 0)] if seeds is None else list(seeds)
    by_seed = [
        register_pairs(pairs, workers, query_spacing=spacing, support_spacing=spacing, seed=seed, **options) for seed in seeds
    ]
    per_pair = iter(zip(*by_seed))
    images, masks, priors = [], [], []
    for index in range(b * k):
        i, j = divmod(index, k)
        if blank[i]:
            images.append(s[i, j])
            masks.append(np.zeros_like(m[i, j]))
            priors.append(masks[-1])
            continue
        results = next(per_pair)
        first = results[0]
        if s.shape[2] == 1:
            images.append(first.warped_image[None])
        else:
            images.append(_warp_channels(s[i, j], q[i, 0], first.transform, spacing))
        masks.append(first.warped_mask[None])
        priors.append(np.mean([r.warped_mask for r in results], axis=0)[None])
    aligned = torch.from_numpy(np.stack(images).reshape(b, k, *images[0].shape)).to(query)
    soft = torch.from_numpy(np.stack(masks).reshape(b, k, *masks[0].shape)).to(query)
    prior = torch.from_numpy(np.stack(priors).reshape(b, k, *priors[0].shape)).to(query)
    binary = (soft >= 0.5).to(query)
    kept = binary.flatten(2).any(2).view(b, k, *[1] * (binary.ndim - 2))
    return AlignedEpisode(
        torch.where(kept, aligned, support.to(query)), torch.where(kept, binary, (support_mask > 0).to(query)), prior
    )
