"""Restoration methods to compare on whole volumes: a network through a sliding window, and the baselines.

A method takes a dictionary of :func:`~monai_fewshot.data.restoration_volumes` (``"image"`` the degraded
input on the clean grid, ``"low_res"`` the thick-slice volume for super-resolution, ``"label"`` the clean
volume, whose grid the output must have) and returns the restored (C, H, W, D) volume.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch
from monai.inferers import Inferer
from monai.transforms import ResampleToMatch
from monai.utils import ensure_tuple_rep
from scipy.ndimage import gaussian_filter
from torch import nn

from monai_fewshot.transforms import RESTORATION_TASKS

__all__ = ["NetworkRestorer", "restoration_baselines"]

Method = Callable[[Mapping[str, torch.Tensor]], torch.Tensor]


class NetworkRestorer:
    """Restore ``data["image"]`` with ``network`` through ``inferer`` (e.g. MONAI ``SlidingWindowInferer``).

    Args:
        network: maps (B, C, *S) to (B, C, *S).
        inferer: MONAI inferer; ``inferer(inputs, network)``.
        device: where the network runs.
    """

    def __init__(self, network: nn.Module, inferer: Inferer, device: str | torch.device = "cpu") -> None:
        self.device = torch.device(device)
        self.network = network.to(self.device).eval()
        self.inferer = inferer

    @torch.no_grad()
    def __call__(self, data: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """(C, *S) of ``data["image"]`` -> (C, *S) on the CPU."""
        return self.inferer(data["image"][None].to(self.device), self.network)[0].cpu()


def _degraded_input(data: Mapping[str, torch.Tensor]) -> torch.Tensor:
    return data["image"]


def _interpolation(mode: str | int) -> Method:
    """Resample the thick-slice volume onto the clean grid (MONAI ``ResampleToMatch``; an int is a spline order)."""
    resample = ResampleToMatch(mode=mode, padding_mode="border")
    return lambda data: resample(data["low_res"], data["label"])


def _gaussian_filter(sigma: Sequence[float] | float) -> Method:
    """Gaussian smoothing of the degraded input, ``sigma`` voxels per spatial axis, edges replicated (scipy; MONAI's
    ``GaussianSmooth`` pads with zeros, which darkens the first and last slices)."""

    def smooth(data: Mapping[str, torch.Tensor]) -> torch.Tensor:
        image = data["image"]
        sigmas = (0.0, *ensure_tuple_rep(sigma, image.ndim - 1))
        return torch.from_numpy(gaussian_filter(image.cpu().numpy(), sigmas, mode="nearest"))

    return smooth


def restoration_baselines(task: str, gaussian_sigma: Sequence[float] | float = (1.0, 1.0, 0.5)) -> dict[str, Method]:
    """The classical methods of a task, by table name.

    ``"denoise"``: the noisy input itself and a Gaussian filter (``gaussian_sigma`` voxels per spatial axis,
    scipy's ``gaussian_filter`` with replicated edges). ``"sr"``: the thick slices on the full grid by nearest
    neighbour (the input as it is), trilinear interpolation (what the network refines) and cubic B-spline
    interpolation (MONAI resampling with spline order 3, through scipy).
    """
    if task not in RESTORATION_TASKS:
        raise ValueError(f"task must be one of {RESTORATION_TASKS}, got {task!r}.")
    if task == "denoise":
        return {"noisy input": _degraded_input, "Gaussian filter": _gaussian_filter(gaussian_sigma)}
    return {"input (nearest)": _interpolation("nearest"), "trilinear": _interpolation("bilinear"),
            "cubic B-spline": _interpolation(3)}
