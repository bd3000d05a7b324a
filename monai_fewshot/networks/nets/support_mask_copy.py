"""The training-free floor of the protocol: predict the support slice's mask on every query slice."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["SupportMaskCopy"]


class SupportMaskCopy(nn.Module):
    """Copy the (first) support mask onto the query: what a model must beat to have learned anything.

    Under the protocol the support slice of a chunk sits at the same relative position in the organ as the
    chunk's query slices, so the copied mask already overlaps much of the truth (about 45 mean Dice on CHAOS).

    Shapes:
        query (B, C, *S), support (B, K, C, *S), support_mask (B, K, 1, *S) -> logits (B, 1, *S), +10 inside
        the mask and -10 outside.
    """

    def forward(self, query: torch.Tensor, support: torch.Tensor, support_mask: torch.Tensor) -> torch.Tensor:
        return (support_mask[:, 0].to(query.dtype) * 2 - 1) * 10.0
