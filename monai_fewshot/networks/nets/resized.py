"""Run a few-shot network at a fixed working size, whatever the size of the episode."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from monai_fewshot.networks.nets.wrapper import FewShotWrapper
from monai_fewshot.networks.utils import resize_to

__all__ = ["ResizedFewShot"]


class ResizedFewShot(FewShotWrapper):
    """Resize query, support and masks to ``spatial_size``, run ``network`` there, resize its logits back.

    Images are resized (bi-/tri-)linearly, masks by area averaging and re-binarised at 0.5 (a mask that
    would vanish keeps the cells with any foreground), logits linearly. This is how the CPU configuration
    trains and predicts at 128 x 128 while the protocol scores at the data's 256 x 256.

    Args:
        network: ``network(query, support, support_mask)`` returning logits or an output with ``.logits``
            (a :class:`~monai_fewshot.networks.CATNetOutput` keeps its shape, every field resized).
        spatial_size: the working size, e.g. ``(128, 128)``.
    """

    def __init__(self, network: nn.Module, spatial_size: Sequence[int]) -> None:
        if any(int(s) < 1 for s in spatial_size):
            raise ValueError(f"spatial_size must be positive, got {tuple(spatial_size)}.")
        super().__init__(network)
        self.spatial_size = tuple(int(s) for s in spatial_size)

    def forward(self, query: torch.Tensor, support: torch.Tensor, support_mask: torch.Tensor):
        size = self.spatial_size
        if len(size) != query.ndim - 2:
            raise ValueError(f"spatial_size {size} has {len(size)} dims, the query (B, C, *S) {tuple(query.shape)} has {query.ndim - 2}.")
        original = query.shape[2:]
        b, k = support.shape[:2]
        fraction = resize_to(support_mask.flatten(0, 1).float(), size, mode="area")
        binary = fraction >= 0.5
        kept = binary.flatten(1).any(1).view(-1, *[1] * (binary.ndim - 1))
        binary = torch.where(kept, binary, fraction > 0)
        output = self.network(
            resize_to(query, size),
            resize_to(support.flatten(0, 1), size).view(b, k, *support.shape[2:3], *size),
            binary.to(query.dtype).view(b, k, 1, *size),
        )
        if isinstance(output, torch.Tensor):
            return resize_to(output, original)
        fields = [
            resize_to(f.flatten(0, 1), original).view(*f.shape[:3], *original) if f.ndim == query.ndim + 1
            else resize_to(f, original)
            for f in output
        ]
        return type(output)(*fields)
