"""Whole-volume few-shot segmentation of a query volume, slice by slice, from support slices."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from monai.inferers import Inferer
from torch import nn

from monai_fewshot.data.protocol import query_chunks
from monai_fewshot.networks.utils import final_logits

__all__ = ["FewShotSliceInferer", "chunk_assignment", "nearest_assignment"]


def chunk_assignment(depth: int, query_slices: Sequence[int], n_supports: int) -> np.ndarray:
    """The protocol's assignment: ``query_slices`` cut into ``n_supports`` consecutive chunks
    (:func:`~monai_fewshot.data.query_chunks`), chunk j predicted from support j; other slices get -1."""
    assignment = np.full(depth, -1, dtype=int)
    for j, chunk in enumerate(query_chunks(np.asarray(query_slices, dtype=int), n_supports)):
        assignment[chunk] = j
    return assignment


def nearest_assignment(depth: int, support_positions: Sequence[int], query_slices: Sequence[int] | None = None) -> np.ndarray:
    """Each query slice (all by default) predicted from the support slice nearest to it along the axis,
    for supports taken from the query volume itself (slices a user annotated); -1 where not predicted."""
    positions = np.asarray(support_positions, dtype=int)
    if positions.size == 0:
        raise ValueError("support_positions is empty: at least one annotated slice is needed.")
    slices = np.arange(depth) if query_slices is None else np.asarray(query_slices, dtype=int)
    assignment = np.full(depth, -1, dtype=int)
    assignment[slices] = np.abs(slices[:, None] - positions[None, :]).argmin(1)
    return assignment


class FewShotSliceInferer(Inferer):
    """Segment the slices of a query volume along ``axis``, each with its assigned support slice.

    The slices that share a support are batched ``batch_size`` at a time. Slices assigned -1 are not
    predicted and get the logit ``fill_value``.

    Args:
        batch_size: query slices per forward pass. Defaults to 8.
        axis: slicing axis of the (C, *spatial) volume, counted over the spatial axes. Defaults to -1 (axial
            for NIfTI volumes in RAS-like orientation).
        fill_value: logit of slices that are not predicted. Defaults to -1e4.
    """

    def __init__(self, batch_size: int = 8, axis: int = -1, fill_value: float = -1e4) -> None:
        super().__init__()
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
        self.batch_size = batch_size
        self.axis = axis
        self.fill_value = fill_value

    @torch.no_grad()
    def __call__(  # type: ignore[override]
        self,
        inputs: torch.Tensor,
        network: nn.Module,
        support: torch.Tensor,
        support_mask: torch.Tensor,
        assignment: Sequence[int] | np.ndarray,
    ) -> torch.Tensor:
        """
        Args:
            inputs: query volume (C, X, Y, Z).
            network: ``network(query (B, C, H, W), support (B, 1, C, H, W), mask (B, 1, 1, H, W))`` returning
                logits or an output with ``.logits``.
            support: support slices (N, C, H, W), the in-plane size of the query's slices.
            support_mask: their masks (N, 1, H, W).
            assignment: for each query slice along ``axis``, the support index to use, or -1.

        Returns:
            logits (1, X, Y, Z).
        """
        if inputs.ndim != 4:
            raise ValueError(f"query volume must be (C, X, Y, Z), got shape {tuple(inputs.shape)}.")
        axis = self.axis % 3 + 1
        slices = inputs.movedim(axis, 0)  # (Z, C, H, W)
        assignment = np.asarray(assignment, dtype=int)
        if assignment.shape != (slices.shape[0],):
            raise ValueError(f"assignment needs one entry per slice along axis {self.axis} ({slices.shape[0]}), got {assignment.shape}.")
        if support.shape[1:] != slices.shape[1:] or support_mask.shape != (support.shape[0], 1, *support.shape[2:]):
            raise ValueError(
                f"support must be (N, {slices.shape[1]}, {', '.join(map(str, slices.shape[2:]))}) with masks (N, 1, ...); "
                f"got {tuple(support.shape)} and {tuple(support_mask.shape)}."
            )
        if assignment.max(initial=-1) >= support.shape[0]:
            raise ValueError(f"assignment refers to support {assignment.max()}, only {support.shape[0]} given.")
        logits = torch.full((slices.shape[0], 1, *slices.shape[2:]), self.fill_value, device=inputs.device)
        for index in np.unique(assignment[assignment >= 0]):
            targets = np.flatnonzero(assignment == index)
            for start in range(0, targets.size, self.batch_size):
                chosen = torch.as_tensor(targets[start : start + self.batch_size], device=inputs.device)
                query = slices[chosen]
                n = query.shape[0]
                shot = support[index][None, None].expand(n, 1, *support.shape[1:])
                mask = support_mask[index][None, None].expand(n, 1, *support_mask.shape[1:])
                output = network(query, shot, mask)
                logits[chosen] = final_logits(output).to(logits.dtype)
        return logits.movedim(0, axis)
