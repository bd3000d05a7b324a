"""Whole-volume few-shot segmentation by a network, slice by slice, from annotated slices.

The supports are annotated slices (of the volume itself, or of another labelled volume: the MONAI Label app's
``support_image``); every other slice is a query predicted from its nearest support slice by
:class:`~monai_fewshot.inferers.FewShotSliceInferer`. For slices painted in the volume itself,
:func:`~monai_fewshot.inferers.propagate_annotation` is the better choice: it also finds where the organ ends
(whole-volume Dice in README.md, "One painted slice -> the whole organ").
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import torch
from torch import nn

from monai_fewshot.inferers.slice_inferer import FewShotSliceInferer, nearest_assignment
from monai_fewshot.networks.utils import resize_to
from monai_fewshot.transforms.intensity import robust_zscore

__all__ = ["AnnotatedSegmentation", "choose_label_value", "segment_from_annotated_slices"]


class AnnotatedSegmentation(NamedTuple):
    """Result of :func:`segment_from_annotated_slices`."""

    mask: np.ndarray  # uint8 (X, Y, Z), 1 = foreground
    label_value: int  # the painted value that was used as the support
    support_slices: list[int]  # indices of the annotated slices along the slicing axis
    predicted_slices: list[int]  # indices of the slices that were predicted


def choose_label_value(annotation: np.ndarray, label_value: int | None = None) -> int:
    """The painted value to segment: ``label_value`` if given (it must be present), else the largest painted
    value.

    Raises:
        ValueError: nothing painted, or ``label_value`` not painted.
    """
    values = np.unique(annotation)
    values = values[values > 0]
    if values.size == 0:
        raise ValueError("the label map has no painted voxels: paint the organ on at least one slice.")
    if label_value is None:
        return int(values.max())
    if label_value not in values:
        raise ValueError(
            f"label value {label_value} is not painted in the label map (painted values: {values.astype(int).tolist()})."
        )
    return int(label_value)


def segment_from_annotated_slices(
    image: np.ndarray | torch.Tensor,
    annotation: np.ndarray | torch.Tensor,
    network: nn.Module,
    label_value: int | None = None,
    extent: int | None = None,
    slice_size: Sequence[int] | None = (256, 256),
    batch_size: int = 8,
    keep_annotations: bool = True,
    support_image: np.ndarray | torch.Tensor | None = None,
    support_annotation: np.ndarray | torch.Tensor | None = None,
    axis: int = -1,
    device: str | torch.device = "cpu",
) -> AnnotatedSegmentation:
    """Segment a volume slice by slice from annotated slices.

    The supports are the slices of ``annotation`` that hold ``label_value`` (of ``image`` itself, or of
    ``support_image``/``support_annotation`` when another volume is the support); each query slice takes the
    support slice nearest to it along ``axis``. Images are z-scored per volume and slices resized to
    ``slice_size`` for the network, logits resized back.

    Args:
        image: query volume (X, Y, Z) (or (1, X, Y, Z)).
        annotation: the user's label map, the shape of ``image``; ignored for the support when
            ``support_annotation`` is given, except that it must then match ``image`` if not None.
        network: ``network(query (B, 1, H, W), support (B, 1, 1, H, W), mask (B, 1, 1, H, W))``, e.g.
            ``catnet_light(spatial_dims=2)``.
        label_value: painted value to segment. Defaults to None (the largest painted value).
        extent: predict only slices within ``extent`` slices of the annotated range; None predicts every slice.
            Ignored with a support from another volume (every slice is predicted).
        slice_size: in-plane size for the network; None keeps the volume's own. Defaults to (256, 256).
        batch_size: query slices per forward pass. Defaults to 8.
        keep_annotations: write the user's annotation into the mask on the annotated slices. Defaults to True.
        support_image: optional support volume other than ``image`` (X', Y', Z').
        support_annotation: its label map, required with ``support_image``.
        axis: slicing axis among the spatial axes. Defaults to -1 (axial in RAS-like NIfTI).
        device: where the network runs. Defaults to ``"cpu"``.

    Returns:
        :class:`AnnotatedSegmentation`.

    Raises:
        ValueError: an annotation of another shape than its image, nothing painted, or a support without
            the chosen label.
    """
    query = _as_volume(image, "image")
    own_support = support_image is None
    if annotation is not None:
        annotation = _as_volume(annotation, "label").round().to(torch.int64)
        if annotation.shape != query.shape:
            raise ValueError(
                f"label shape {tuple(annotation.shape[1:])} does not match the image shape {tuple(query.shape[1:])}."
            )
    if own_support:
        if annotation is None:
            raise ValueError("a label map with the annotated slice(s) is needed as the support.")
        support_volume, support_labels = query, annotation
    else:
        if support_annotation is None:
            raise ValueError("support_image needs its support_annotation.")
        support_volume = _as_volume(support_image, "support image")
        support_labels = _as_volume(support_annotation, "support label").round().to(torch.int64)
        if support_labels.shape != support_volume.shape:
            raise ValueError(
                f"support label shape {tuple(support_labels.shape[1:])} does not match the support image shape "
                f"{tuple(support_volume.shape[1:])}."
            )
    value = choose_label_value(support_labels.numpy(), label_value)

    spatial_axis = axis % 3 + 1
    binary = (support_labels == value).movedim(spatial_axis, 0)  # (Z, 1, X, Y)
    positions = np.flatnonzero(binary.flatten(1).any(1).numpy())
    depth = query.shape[spatial_axis]
    if own_support:
        query_slices = None
        if extent is not None:
            low, high = max(int(positions.min()) - extent, 0), min(int(positions.max()) + extent, depth - 1)
            query_slices = np.arange(low, high + 1)
        assignment = nearest_assignment(depth, positions, query_slices)
    else:  # positions relative along the axis: support slice at the same relative height
        scaled = positions * (depth - 1) / max(binary.shape[0] - 1, 1)
        assignment = np.abs(np.arange(depth)[:, None] - scaled[None, :]).argmin(1)

    query_slices_t = robust_zscore(query, "query volume").movedim(spatial_axis, 0)  # (Z, 1, X, Y)
    support_slices_t = robust_zscore(support_volume, "support volume").movedim(spatial_axis, 0)[positions]
    support_masks_t = binary[positions].float()
    in_plane = tuple(query_slices_t.shape[2:])
    size = in_plane if slice_size is None else tuple(int(s) for s in slice_size)
    if tuple(support_slices_t.shape[2:]) != size:
        support_slices_t = resize_to(support_slices_t, size)
        coverage = resize_to(support_masks_t, size, mode="area")
        # half-covered pixels are foreground; a painted blob smaller than a pixel keeps its pixels
        small = coverage.flatten(1).amax(1) < 0.5
        support_masks_t = torch.where(small.view(-1, 1, 1, 1), coverage > 0, coverage >= 0.5).float()
    query_slices_t = resize_to(query_slices_t, size)

    device = torch.device(device)
    network = network.to(device).eval()
    inferer = FewShotSliceInferer(batch_size=batch_size, axis=0)
    logits = inferer(
        query_slices_t.movedim(0, 1).to(device),  # (1, Z, H, W): slices along spatial axis 0
        network,
        support_slices_t.to(device),
        support_masks_t.to(device),
        assignment,
    )  # (1, Z, H, W)
    logits = resize_to(logits.movedim(1, 0).cpu(), in_plane)  # (Z, 1, X, Y)
    mask = (logits > 0).to(torch.uint8)
    if own_support and keep_annotations:
        mask[positions] = binary[positions].to(torch.uint8)
    mask = mask.movedim(0, spatial_axis)[0].numpy()
    return AnnotatedSegmentation(
        mask=mask,
        label_value=value,
        support_slices=positions.tolist(),
        predicted_slices=np.flatnonzero(assignment >= 0).tolist(),
    )


def _as_volume(x: np.ndarray | torch.Tensor, name: str) -> torch.Tensor:
    x = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x).detach().cpu()
    if x.ndim == 4 and x.shape[0] == 1:
        x = x[0]
    if x.ndim != 3:
        raise ValueError(f"{name} must be a 3D volume (X, Y, Z), got shape {tuple(x.shape)}.")
    return x[None]
