"""CloFormerUNet: a CloFormer encoder with a UNETR-style decoder for supervised segmentation."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from monai.networks.blocks import UnetOutBlock, UnetrBasicBlock, UnetrUpBlock
from torch import nn

from monai_fewshot.networks.nets.cloformer import CloFormer

__all__ = ["CloFormerUNet"]


class CloFormerUNet(nn.Module):
    """CloFormer's four stage features (strides 4-32) decoded with MONAI's ``UnetrUpBlock`` to a voxel map.

    The decoder climbs from the stride-32 feature through strides 16, 8 and 4 (skips: the stage features)
    to full resolution (a x4 transposed convolution, skip: a residual ``UnetrBasicBlock`` on the input),
    then ``UnetOutBlock`` gives the class logits, as SwinUNETR does for its encoder.

    Args:
        spatial_dims: 2 or 3.
        in_channels: image channels.
        out_channels: segmentation classes (logits channels).
        variant: CloFormer preset, ``"xxs"``, ``"xs"`` or ``"s"``. Defaults to ``"xxs"``.
        feature_size: channels of the full-resolution skip and of the last decoder block. Defaults to 16.
        norm_name: decoder norm, MONAI name or (name, args). Defaults to ``"instance"``.
        pad_input: zero-pad inputs whose size is not a multiple of 32 and crop the logits back; when False
            such inputs raise a ``ValueError``. Defaults to False.
        encoder_kwargs: further :class:`~monai_fewshot.networks.nets.cloformer.CloFormer` arguments
            (``drop_path_rate``, ``norm``, ...).

    Shapes: (B, in_channels, *S) -> (B, out_channels, *S).

    Example::

        net = CloFormerUNet(spatial_dims=3, in_channels=1, out_channels=14)
        logits = net(torch.randn(1, 1, 96, 96, 96))  # (1, 14, 96, 96, 96)
    """

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        out_channels: int,
        variant: str = "xxs",
        feature_size: int = 16,
        norm_name: str | tuple = "instance",
        pad_input: bool = False,
        **encoder_kwargs,
    ) -> None:
        super().__init__()
        if out_channels < 1:
            raise ValueError(f"out_channels must be >= 1, got {out_channels}.")
        self.encoder = CloFormer(spatial_dims, in_channels, variant=variant, pad_input=False, **encoder_kwargs)
        self.pad_input = pad_input
        c = self.encoder.feature_channels
        self.input_block = UnetrBasicBlock(spatial_dims, in_channels, feature_size, 3, 1, norm_name, res_block=True)

        def up(in_ch: int, out_ch: int, factor: int) -> UnetrUpBlock:
            return UnetrUpBlock(spatial_dims, in_ch, out_ch, 3, factor, norm_name, res_block=True)

        self.decoders = nn.ModuleList(
            [up(c[3], c[2], 2), up(c[2], c[1], 2), up(c[1], c[0], 2), up(c[0], feature_size, 4)]
        )
        self.out = UnetOutBlock(spatial_dims, feature_size, out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """
        Args:
            x: (B, in_channels, *S), S divisible by 32 unless ``pad_input``.

        Returns:
            (B, out_channels, *S) logits.
        """
        spatial = [int(s) for s in x.shape[2:]]
        total = self.encoder.feature_strides[-1]
        padding = [(-s) % total for s in spatial] if self.pad_input else [0] * len(spatial)
        if any(padding):
            x = F.pad(x, [p for size in reversed(padding) for p in (0, size)])
        *skips, y = self.encoder(x)
        for decoder, skip in zip(self.decoders, [*reversed(skips), self.input_block(x)]):
            y = decoder(y, skip)
        logits = self.out(y)
        if any(padding):
            logits = logits[(slice(None), slice(None), *(slice(0, s) for s in spatial))]
        return logits
