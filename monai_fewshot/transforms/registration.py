"""Align an episode's support onto its query as a MONAI dictionary transform."""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import torch
from monai.config import KeysCollection
from monai.transforms import MapTransform

from monai_fewshot.registration import align_episode_batch

__all__ = ["AlignSupportd"]


class AlignSupportd(MapTransform):
    """Register the support shots of one episode onto its query; warp their images and masks together.

    The episode holds ``query`` (C, *S), ``support`` (K, C, *S) and ``support_mask`` (K, 1, *S), as
    :class:`~monai_fewshot.data.EpisodeDataset` and :class:`~monai_fewshot.data.ProtocolSliceDataset` give
    them. ``support`` is replaced by the warped images, ``support_mask`` by the warped mask binarised at 0.5
    (see :class:`~monai_fewshot.registration.AlignedEpisode`), and the soft warped mask is added under
    ``prior_key``; all on the query's dtype.

    Args:
        keys: the query, support and support-mask keys, in that order. Defaults to the episode's.
        prior_key: where the soft warped masks (K, 1, *S) go. Defaults to ``"support_prior"``.
        spacing: millimetres per spatial axis (default 1 per axis).
        registration: keyword arguments of :func:`~monai_fewshot.registration.register_support`.
    """

    def __init__(
        self,
        keys: KeysCollection = ("query", "support", "support_mask"),
        prior_key: str = "support_prior",
        spacing: Sequence[float] | None = None,
        registration: Mapping[str, Any] | None = None,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        if len(self.keys) != 3:
            raise ValueError(f"keys must name the query, the support and the support mask, got {self.keys}.")
        self.prior_key, self.spacing, self.registration = prior_key, spacing, dict(registration or {})

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        query_key, support_key, mask_key = self.keys
        query, support, mask = (torch.as_tensor(d[key]) for key in self.keys)
        episode = align_episode_batch(query[None], support[None], mask[None], 1, self.spacing, **self.registration)
        d[support_key], d[mask_key], d[self.prior_key] = (value[0] for value in episode)
        return d
