"""The training-free registration method: the support mask, registered onto the query, is the prediction."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from monai_fewshot.registration.episode_alignment import align_episode_batch

__all__ = ["SupportRegistration"]


class SupportRegistration(nn.Module):
    """Register each support shot onto the query (affine, then demons) and predict the warped masks' mean.

    No weights: it is scored beside the copy-the-support floor, through the same evaluator and episodes,
    as the strongest method that needs no training.

    Args:
        workers: worker processes for the batch's registrations. Defaults to 1.
        spacing: millimetres per spatial axis (default 1 per axis: the in-plane grid of a slice episode).
        deformable: ``"demons"`` (default), ``"bspline"`` or None (affine only).
        options: further keyword arguments of :func:`~monai_fewshot.registration.register_support`.

    Shapes:
        query (B, C, *S), support (B, K, C, *S), support_mask (B, K, 1, *S) -> logits (B, 1, *S): the logit
        of the warped soft mask averaged over the K shots (positive where more than half is foreground).
    """

    def __init__(
        self, workers: int = 1, spacing: Sequence[float] | None = None, deformable: str | None = "demons", **options: Any
    ) -> None:
        super().__init__()
        self.workers, self.spacing = int(workers), spacing
        self.options = {"deformable": deformable, **options}

    def forward(self, query: torch.Tensor, support: torch.Tensor, support_mask: torch.Tensor) -> torch.Tensor:
        prior = align_episode_batch(query, support, support_mask, self.workers, self.spacing, **self.options).prior
        return torch.logit(prior.mean(1).clamp(1e-4, 1 - 1e-4))
