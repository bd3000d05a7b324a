"""GRL: global, regional and local modelling for image restoration, as a 2D/3D MONAI network.

Li et al., "Efficient and Explicit Modelling of Image Hierarchies for Image Restoration", CVPR 2023,
arXiv 2303.00748 (reference code: ofsoundof/GRL-Image-Restoration; this is our own N-D implementation).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint
from monai.networks.blocks import SubpixelUpsample
from monai.networks.layers import trunc_normal_
from monai.networks.layers.factories import Conv
from monai.utils import ensure_tuple_rep
from torch import nn

from monai_fewshot.networks.blocks.anchored_stripe_attention import stripe_shape
from monai_fewshot.networks.blocks.transformer_layer import MixedAttentionTransformerLayer
from monai_fewshot.networks.utils import check_dims_and_channels

__all__ = ["GRL", "GRLStage", "grl_base", "grl_small", "grl_tiny"]

DEFAULT_WINDOW = {2: 16, 3: 8}
DEFAULT_STRIPE = {2: (64, 128), 3: (32, 16, 16)}
TASKS = ("denoise", "sr")
#: what the presets add in 3D: tokens of 2 x 2 x 2 voxels, stripes of 16 x 8 x 8 tokens (32 x 16 x 16 voxels)
VOLUME_PRESET = {"patch_size": 2, "stripe_size": (16, 8, 8)}


class GRLStage(nn.Module):
    """A GRL stage: ``depth`` mixed-attention transformer layers, a 3x3(x3) convolution, plus the input.

    Block ``i`` of the stage shifts its windows when ``i`` is even, uses stripe orientation
    ``i mod len(stripe_axes)`` (:func:`stripe_shape`) and shifts its stripes when ``i % 4`` is 2 or 3, as in
    the reference code.

    Args:
        spatial_dims: 2 or 3.
        hidden_size: token width C.
        depth: number of transformer layers.
        num_heads_window: window attention heads.
        num_heads_stripe: stripe attention heads.
        window_size: window size per axis.
        stripe_size: stripe shape of orientation 0.
        stripe_axes: axes whose stripe sizes rotate between blocks (None: all).
        anchor_window_down_factor: anchor pooling factor, per axis or an int for all.
        mlp_ratio: MLP width over C.
        use_cab: add the channel attention convolution block to each layer.
        dropout_rate: dropout in attention and MLP.
        drop_path_rates: stochastic depth of each layer (``depth`` values).
        use_checkpoint: recompute each layer in the backward pass instead of keeping its activations.
    """

    def __init__(
        self,
        spatial_dims: int,
        hidden_size: int,
        depth: int,
        num_heads_window: int,
        num_heads_stripe: int,
        window_size: Sequence[int],
        stripe_size: Sequence[int],
        stripe_axes: Sequence[int] | None,
        anchor_window_down_factor: Sequence[int] | int,
        mlp_ratio: float,
        use_cab: bool,
        dropout_rate: float,
        drop_path_rates: Sequence[float],
        use_checkpoint: bool = False,
    ) -> None:
        super().__init__()
        self.use_checkpoint = use_checkpoint
        self.layers = nn.ModuleList(
            MixedAttentionTransformerLayer(
                spatial_dims,
                hidden_size,
                num_heads_window,
                num_heads_stripe,
                window_size,
                stripe_shape(stripe_size, i, stripe_axes),
                anchor_window_down_factor,
                window_shift=i % 2 == 0,
                stripe_shift=i % 4 in (2, 3),
                mlp_ratio=mlp_ratio,
                use_cab=use_cab,
                dropout_rate=dropout_rate,
                drop_path_rate=drop_path_rates[i],
            )
            for i in range(depth)
        )
        self.conv = Conv[Conv.CONV, spatial_dims](hidden_size, hidden_size, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, *S, C) channels-last -> (B, *S, C)."""
        out = x
        for layer in self.layers:
            if self.use_checkpoint and torch.is_grad_enabled():
                out = checkpoint(layer, out, use_reentrant=False)
            else:
                out = layer(out)
        return self.conv(out.movedim(-1, 1)).movedim(1, -1) + x


class GRL(nn.Module):
    """GRL restoration network for 2D images and 3D volumes (Li et al., CVPR 2023).

    conv3 -> [patch embedding] -> LayerNorm -> stages (each: mixed-attention layers, conv3, + input) -> LayerNorm
    -> conv3 -> [patch expansion], plus a long skip from the first convolution -> head. ``task="denoise"``: a final
    conv3, plus the input when ``in_channels == out_channels`` (the net predicts the residual); ``task="sr"``: a
    sub-pixel convolution upsampling by ``upscale`` (the reference's light "pixelshuffledirect" head, MONAI's
    ``SubpixelUpsample``). Inputs of any spatial size are padded (reflect, or replicate where the input is
    too small to reflect) to a multiple of every window and stripe size along each axis (times ``patch_size``)
    and cropped back.

    ``patch_size`` > 1 runs the transformer stages on a coarser token grid, as MONAI's SwinUNETR does: a
    convolution of kernel and stride ``patch_size`` embeds each patch of first-convolution features as one
    token, and a transposed convolution of the same kernel and stride expands the body's output back to the
    voxel grid, where the long skip and the head work at full resolution. Work per voxel falls by the patch's
    volume (8x for 2 x 2 x 2); window and stripe sizes then count tokens, not voxels. The paper's 2D models
    use ``patch_size=1``.

    3D stripes: ``stripe_size`` is the shape of orientation 0 and successive blocks rotate the sizes on
    ``stripe_axes`` (:func:`~monai_fewshot.networks.blocks.anchored_stripe_attention.stripe_shape`), so in
    3D the default (32, 16, 16) tubes point along D, H, W, D, ... in a stage; for anisotropic volumes leave
    the thick-slice axis out of ``stripe_axes`` so that it keeps its own (small) stripe size, and give
    ``window_size`` and ``anchor_window_down_factor`` per axis (for example 1 along the slices).

    Args:
        spatial_dims: 2 or 3.
        in_channels: image channels.
        out_channels: output channels. Defaults to ``in_channels``.
        embed_dim: token width C. Defaults to 64 (GRL-T).
        depths: transformer layers per stage. Defaults to (4, 4, 4, 4).
        num_heads_window: window attention heads, one per stage or an int for all. Defaults to 2.
        num_heads_stripe: stripe attention heads, one per stage or an int for all. Defaults to 2.
        window_size: window size (tokens) per axis or an int. Defaults to 16 in 2D (the paper's denoising
            setting), 8 in 3D.
        stripe_size: stripe shape of orientation 0, one size per axis. Defaults to (64, 128) in 2D (the
            paper's denoising setting), (32, 16, 16) in 3D.
        stripe_axes: axes whose stripe sizes rotate from block to block. Defaults to all axes.
        anchor_window_down_factor: anchor pooling factor, per axis or an int for all; stripe sizes must be
            multiples of it along their axis. Defaults to 4 (1 suits a thick-slice axis).
        mlp_ratio: MLP width over C. Defaults to 2.
        use_cab: channel attention convolution block in every layer (GRL-B). Defaults to False.
        upscale: super-resolution factor (``task="sr"``); 1 for denoising. Defaults to 1.
        task: ``"denoise"`` or ``"sr"``. Defaults to ``"denoise"``.
        dropout_rate: dropout in attention and MLP. Defaults to 0.
        drop_path_rate: stochastic depth, rising linearly to this value over all layers. Defaults to 0.1.
        use_checkpoint: gradient checkpointing per transformer layer: training memory of one layer's
            attention maps instead of all of them, for about one more forward pass of time. Defaults to False.
        patch_size: voxels per token along each axis, or an int for all. Defaults to 1 (a token per voxel).

    The presets (:func:`grl_tiny`, :func:`grl_small`, :func:`grl_base`) build the paper's models in 2D and, in 3D,
    run them on 2 x 2 x 2 patches (``VOLUME_PRESET``): a 64^3 GRL-T forward is then 8x fewer MACs than a token per
    voxel.

    Example::

        net = grl_tiny(spatial_dims=3, in_channels=1)  # tokens of 2 x 2 x 2 voxels
        net(torch.randn(1, 1, 40, 56, 33)).shape  # (1, 1, 40, 56, 33)
    """

    def __init__(
        self,
        spatial_dims: int = 2,
        in_channels: int = 1,
        out_channels: int | None = None,
        embed_dim: int = 64,
        depths: Sequence[int] = (4, 4, 4, 4),
        num_heads_window: Sequence[int] | int = 2,
        num_heads_stripe: Sequence[int] | int = 2,
        window_size: Sequence[int] | int | None = None,
        stripe_size: Sequence[int] | None = None,
        stripe_axes: Sequence[int] | None = None,
        anchor_window_down_factor: Sequence[int] | int = 4,
        mlp_ratio: float = 2.0,
        use_cab: bool = False,
        upscale: int = 1,
        task: str = "denoise",
        dropout_rate: float = 0.0,
        drop_path_rate: float = 0.1,
        use_checkpoint: bool = False,
        patch_size: Sequence[int] | int = 1,
    ) -> None:
        super().__init__()
        check_dims_and_channels(spatial_dims, in_channels)
        if task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, got {task!r}.")
        if (task == "denoise") != (upscale == 1) or upscale < 1:
            raise ValueError(f"task='denoise' needs upscale=1 and task='sr' upscale >= 2, got {task!r}, {upscale}.")
        window = ensure_tuple_rep(DEFAULT_WINDOW[spatial_dims] if window_size is None else window_size, spatial_dims)
        stripe = ensure_tuple_rep(DEFAULT_STRIPE[spatial_dims] if stripe_size is None else stripe_size, spatial_dims)
        axes = tuple(range(spatial_dims)) if stripe_axes is None else tuple(stripe_axes)
        if not axes or len(set(axes)) != len(axes) or not all(0 <= a < spatial_dims for a in axes):
            raise ValueError(f"stripe_axes must be distinct axes in [0, {spatial_dims}), got {stripe_axes}.")
        patch = ensure_tuple_rep(patch_size, spatial_dims)
        if not all(isinstance(p, int) and p >= 1 for p in patch):
            raise ValueError(f"patch_size must be positive integers, one per axis or one for all, got {patch_size}.")
        heads_window = ensure_tuple_rep(num_heads_window, len(depths))
        heads_stripe = ensure_tuple_rep(num_heads_stripe, len(depths))

        self.spatial_dims = spatial_dims
        self.in_channels = in_channels
        self.out_channels = out_channels or in_channels
        self.upscale = upscale
        self.task = task
        # every block's window and stripe must tile the padded map: pad each axis to the lcm of all sizes on it
        shapes = [stripe_shape(stripe, k, axes) for k in range(len(axes))]
        self.pad_multiple = tuple(patch[a] * math.lcm(window[a], *(s[a] for s in shapes)) for a in range(spatial_dims))

        conv = Conv[Conv.CONV, spatial_dims]
        self.conv_first = conv(in_channels, embed_dim, 3, padding=1)
        coarse = any(p > 1 for p in patch)
        self.patch_embed = conv(embed_dim, embed_dim, patch, stride=patch) if coarse else nn.Identity()
        self.patch_expand = (
            Conv[Conv.CONVTRANS, spatial_dims](embed_dim, embed_dim, patch, stride=patch) if coarse else nn.Identity()
        )
        self.norm_start = nn.LayerNorm(embed_dim)
        rates = torch.linspace(0, drop_path_rate, sum(depths)).tolist()
        self.stages = nn.ModuleList(
            GRLStage(
                spatial_dims,
                embed_dim,
                depth,
                heads_window[i],
                heads_stripe[i],
                window,
                stripe,
                axes,
                anchor_window_down_factor,
                mlp_ratio,
                use_cab,
                dropout_rate,
                rates[sum(depths[:i]) : sum(depths[: i + 1])],
                use_checkpoint,
            )
            for i, depth in enumerate(depths)
        )
        self.norm_end = nn.LayerNorm(embed_dim)
        self.conv_after_body = conv(embed_dim, embed_dim, 3, padding=1)
        if task == "denoise":
            self.head: nn.Module = conv(embed_dim, self.out_channels, 3, padding=1)
        else:
            self.head = SubpixelUpsample(spatial_dims, embed_dim, self.out_channels, upscale, apply_pad_pool=False)
        self.apply(_init_weights)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """
        Args:
            x: (B, in_channels, *S) with S 2D (H, W) or 3D (D, H, W) as ``spatial_dims``, any size.

        Returns:
            (B, out_channels, *S * upscale).
        """
        if x.ndim != self.spatial_dims + 2:
            raise ValueError(
                f"GRL(spatial_dims={self.spatial_dims}) expects input of shape (B, C, "
                f"{', '.join('DHW'[3 - self.spatial_dims:])}), got {tuple(x.shape)}."
            )
        if x.shape[1] != self.in_channels:
            raise ValueError(f"expected {self.in_channels} input channels, got {x.shape[1]}.")
        spatial = x.shape[2:]
        pads = [(-s) % m for s, m in zip(spatial, self.pad_multiple)]
        mode = "reflect" if all(p < s for p, s in zip(pads, spatial)) else "replicate"
        x = F.pad(x, [p for pad in reversed(pads) for p in (0, pad)], mode=mode)

        features = self.conv_first(x)
        tokens = self.norm_start(self.patch_embed(features).movedim(1, -1))
        for stage in self.stages:
            tokens = stage(tokens)
        features = self.patch_expand(self.conv_after_body(self.norm_end(tokens).movedim(-1, 1))) + features
        out = self.head(features)
        if self.task == "denoise" and self.in_channels == self.out_channels:
            out = out + x
        return out[(..., *(slice(0, s * self.upscale) for s in spatial))]


def _init_weights(module: nn.Module) -> None:
    """Truncated-normal (std 0.02) Linear weights with zero bias, unit LayerNorm (as the reference)."""
    if isinstance(module, nn.Linear):
        trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


def _build(preset: dict, spatial_dims: int, in_channels: int, out_channels: int | None, overrides: dict) -> GRL:
    config = {**preset, **(VOLUME_PRESET if spatial_dims == 3 else {}), **overrides}
    return GRL(spatial_dims=spatial_dims, in_channels=in_channels, out_channels=out_channels, **config)


def grl_tiny(spatial_dims: int = 2, in_channels: int = 1, out_channels: int | None = None, **kwargs) -> GRL:
    """GRL-T: C=64, depths (4, 4, 4, 4), 2+2 heads, no CAB (0.88 M parameters for 2D RGB denoising; in 3D on
    2 x 2 x 2 patches, 1.34 M for one channel)."""
    preset = {"embed_dim": 64, "depths": (4, 4, 4, 4), "num_heads_window": 2, "num_heads_stripe": 2}
    return _build(preset, spatial_dims, in_channels, out_channels, kwargs)


def grl_small(spatial_dims: int = 2, in_channels: int = 1, out_channels: int | None = None, **kwargs) -> GRL:
    """GRL-S: C=128, depths (4, 4, 4, 4), 2+2 heads, no CAB (3.12 M parameters for 2D RGB denoising)."""
    preset = {"embed_dim": 128, "depths": (4, 4, 4, 4), "num_heads_window": 2, "num_heads_stripe": 2}
    return _build(preset, spatial_dims, in_channels, out_channels, kwargs)


def grl_base(spatial_dims: int = 2, in_channels: int = 1, out_channels: int | None = None, **kwargs) -> GRL:
    """GRL-B: C=180, depths (4, 4, 8, 8, 8, 4, 4), 3+3 heads, CAB (19.8 M parameters for 2D RGB denoising)."""
    preset = {
        "embed_dim": 180,
        "depths": (4, 4, 8, 8, 8, 4, 4),
        "num_heads_window": 3,
        "num_heads_stripe": 3,
        "use_cab": True,
    }
    return _build(preset, spatial_dims, in_channels, out_channels, kwargs)
