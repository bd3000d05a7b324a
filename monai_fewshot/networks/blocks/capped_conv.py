"""A convolution whose kernel is cropped, per input, to the taps that can reach the input."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from monai.networks.layers import Conv
from torch import nn

__all__ = ["CappedConv"]


class CappedConv(nn.Module):
    """An odd-sized, zero-padded ("same") convolution that caps its kernel to the map it sees.

    With padding ``k // 2``, a tap at offset ``o`` from the centre only ever multiplies zero padding when
    ``|o| >= n`` on an axis of size ``n``. On small maps (the deep stages of a 3D encoder: a 9x9x9 kernel on a
    3x3x3 map) the kernel is therefore cropped to ``2n - 1`` taps per axis with the padding reduced to
    match: the output is identical to the full kernel's, for a fraction of the work. The parameters keep the
    configured size, so checkpoints do not depend on the input size.

    Args:
        spatial_dims: 1, 2 or 3.
        in_channels: input channels.
        out_channels: output channels.
        kernel_size: odd kernel size.
        stride: stride. Defaults to 1.
        groups: convolution groups (``in_channels`` for depthwise). Defaults to 1.
        bias: whether to learn a bias. Defaults to True.

    Shapes: (B, in_channels, *S) -> (B, out_channels, *ceil(S / stride)).
    """

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        groups: int = 1,
        bias: bool = True,
    ) -> None:
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f"kernel_size must be odd, got {kernel_size}.")
        self.conv = Conv[Conv.CONV, spatial_dims](
            in_channels, out_channels, kernel_size, stride=stride, padding=kernel_size // 2, groups=groups, bias=bias
        )
        self._functional = (F.conv1d, F.conv2d, F.conv3d)[spatial_dims - 1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        conv = self.conv
        half = conv.kernel_size[0] // 2
        reach = [min(half, int(n) - 1) for n in x.shape[2:]]
        if all(r == half for r in reach):
            return conv(x)
        crop = tuple(slice(half - r, half + r + 1) for r in reach)
        weight = conv.weight[(slice(None), slice(None), *crop)]
        return self._functional(x, weight, conv.bias, conv.stride, reach, 1, conv.groups)
