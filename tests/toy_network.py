"""A toy few-shot network: what a user adds to serve their own model. One file and one registration, which an
entry point of the group ``monai_fewshot.networks`` (``toy = "tests.toy_network"``) declares, so that every
process finds it (tests/bundles/test_catnet_bundle.py::test_a_registered_toy_network_trains_evaluates_and_is_served)."""

from __future__ import annotations

import torch
from torch import nn

from monai_fewshot.registry import FewShotNetworkSpec, register_fewshot_network


class ToyFewShot(nn.Module):
    """One 3x3 convolution over the query, the mean support image and the mean support mask: (B, 1, H, W) logits."""

    def __init__(self, spatial_dims: int = 2, in_channels: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2 * in_channels + 1, 1, kernel_size=3, padding=1)

    def forward(self, query: torch.Tensor, support: torch.Tensor, support_mask: torch.Tensor) -> torch.Tensor:
        return self.conv(torch.cat([query, support.mean(1), support_mask.mean(1)], dim=1))


def toy_fewshot(spatial_dims: int = 2, in_channels: int = 1) -> ToyFewShot:
    return ToyFewShot(spatial_dims, in_channels)


register_fewshot_network("toy", FewShotNetworkSpec("tests.toy_network.toy_fewshot", description="a toy network"))
