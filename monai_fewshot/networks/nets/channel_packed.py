"""A single-input view of a few-shot network, for tools that feed one image tensor."""

from __future__ import annotations

import torch
from torch import nn

from monai_fewshot.networks.nets.wrapper import FewShotWrapper
from monai_fewshot.networks.utils import final_logits

__all__ = ["ChannelPackedFewShot"]

class ChannelPackedFewShot(FewShotWrapper):
    """Wrap a ``network(query, support, support_mask)`` so that it takes one tensor and returns logits.

    The episode is packed along channels: ``[query (C), support_1 (C), mask_1 (1), ..., support_K (C),
    mask_K (1)]``, i.e. ``C + K * (C + 1)`` channels. Masks are binarised at 0.5. This is the form that
    ``monai.bundle verify_net_in_out``, ``ckpt_export`` and MONAI Label's single-image inferers call.

    The wrapper has no weights of its own and its state dict is the wrapped network's, under the same names,
    so a checkpoint of the network loads into the wrapper and the other way round.

    Args:
        network: the few-shot network; its output's ``logits`` (or the output itself) is returned.
        in_channels: image channels C. Defaults to 1.
        shots: number of support shots K. Defaults to 1.

    Shapes:
        input (B, C + K * (C + 1), *S) -> output (B, 1, *S) foreground logits.
    """

    def __init__(self, network: nn.Module, in_channels: int = 1, shots: int = 1) -> None:
        if in_channels < 1 or shots < 1:
            raise ValueError(f"in_channels and shots must be >= 1, got {in_channels} and {shots}.")
        super().__init__(network)
        self.in_channels = in_channels
        self.shots = shots

    @property
    def packed_channels(self) -> int:
        return self.in_channels + self.shots * (self.in_channels + 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim < 3 or x.shape[1] != self.packed_channels:
            raise ValueError(
                f"expected (B, {self.packed_channels}, *spatial): query ({self.in_channels} channels) then "
                f"{self.shots} x (support {self.in_channels} + mask 1); got shape {tuple(x.shape)}."
            )
        c = self.in_channels
        query = x[:, :c]
        episode = x[:, c:].reshape(x.shape[0], self.shots, c + 1, *x.shape[2:])
        support, mask = episode[:, :, :c], (episode[:, :, c:] > 0.5).to(x.dtype)
        output = self.network(query, support, mask)
        return final_logits(output)

    @staticmethod
    def pack(query: torch.Tensor, support: torch.Tensor, support_mask: torch.Tensor) -> torch.Tensor:
        """(B, C, *S), (B, K, C, *S), (B, K, 1, *S) -> (B, C + K * (C + 1), *S)."""
        episode = torch.cat([support, support_mask.to(support.dtype)], dim=2).flatten(1, 2)
        return torch.cat([query, episode], dim=1)
