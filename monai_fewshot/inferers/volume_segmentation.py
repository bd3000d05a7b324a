"""Segment query volumes from a support volume and its mask, and write NIfTI masks with the query's affine."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import nibabel as nib
import numpy as np
import torch
from torch import nn

from monai_fewshot.data.layout import VolumeRecord, load_volume
from monai_fewshot.data.protocol import support_slices
from monai_fewshot.inferers.slice_inferer import FewShotSliceInferer, chunk_assignment
from monai_fewshot.inferers.support_propagation import segment_from_support_volume
from monai_fewshot.utils import atomic_path

__all__ = ["output_names", "segment_volumes"]


def _stem(query: Path) -> str:
    name = query.name
    for suffix in (".nii.gz", ".nii"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def output_names(queries: Sequence[Path]) -> list[str]:
    """``<query name>_seg.nii.gz`` per query; queries of one name in different folders get as many parent folder
    names in front as make them differ (``a/img.nii.gz``, ``b/img.nii.gz`` -> ``a_img_seg.nii.gz``, ``b_img_seg.nii.gz``).

    Raises:
        ValueError: one file given twice.
    """
    resolved = [Path(q).resolve() for q in queries]
    if len(set(resolved)) < len(resolved):
        raise ValueError(f"a query volume is given twice in {[str(q) for q in queries]}.")
    depth = 0
    while True:
        names = ["_".join([*q.parent.parts[len(q.parent.parts) - depth :], _stem(q)]) if depth else _stem(q) for q in resolved]
        if len(set(names)) == len(names):
            return [f"{name}_seg.nii.gz" for name in names]
        depth += 1


def axis_codes(affine: np.ndarray) -> str:
    """The orientation of a voxel grid as axis codes, e.g. ``"RAS"`` (nibabel's convention, which MONAI's
    ``Orientationd`` shares)."""
    return "".join(nib.aff2axcodes(np.asarray(affine)))


@torch.no_grad()
def segment_volumes(
    network: nn.Module,
    support_image: str | Path,
    support_label: str | Path,
    class_value: int,
    query_images: Sequence[str | Path],
    output_dir: str | Path,
    n_chunks: int = 3,
    device: str | torch.device = "cpu",
    batch_size: int = 8,
    overwrite: bool = False,
    spacing_tolerance: float = 0.1,
    propagate: bool = True,
) -> list[Path]:
    """1-way segmentation of whole query volumes from a labelled support volume, without the query's labels.

    With ``propagate`` (default) the organ is located in each query by 3D registration of the support volume,
    ``network`` predicts a few slices inside it, and those are propagated through the query until the organ
    ends (:func:`~monai_fewshot.inferers.segment_from_support_volume`): slices without the organ stay empty.
    Without it, the protocol's way: the support volume's slices holding ``class_value`` are cut into
    ``n_chunks`` thirds and the middle slice of each becomes a support; each query volume's axial slices are
    cut into as many consecutive chunks and chunk j is predicted from support j, every slice painted.
    Every input is read and checked before anything is written; each mask
    is written atomically as ``<query name>_seg.nii.gz`` (uint8, 1 = class; :func:`output_names` keeps the
    names of same-named queries apart) with the query's affine and header.

    A query stored in another orientation than the support (axis codes, e.g. ``LPS`` against ``RAS``) is
    read in the support's (MONAI ``Orientationd``) and its mask is written back in the query's own. Slices of
    another in-plane size, or an in-plane spacing more than ``spacing_tolerance`` apart, are refused: the
    network compares support and query pixel for pixel.

    Args:
        network: ``network(query, support, support_mask)`` returning logits or an output with ``.logits``.
        support_image, support_label: the support volume and its label map (NIfTI).
        class_value: the label value to segment.
        query_images: NIfTI volumes to segment.
        output_dir: where masks are written.
        n_chunks: supports taken from the support volume. Defaults to 3.
        device: inference device.
        batch_size: query slices per forward pass.
        overwrite: replace masks that exist already (default False: refuse before anything is written).
        spacing_tolerance: largest relative difference of in-plane spacing between support and query.
        propagate: locate, seed and propagate (default True) instead of predicting every slice.

    Returns:
        the written paths, in the order of ``query_images``.
    """
    device = torch.device(device)
    queries = [Path(q) for q in query_images]
    if not queries:
        raise ValueError("query_images is empty: give at least one query volume.")
    missing = [str(q) for q in queries if not q.is_file()]
    if missing:
        raise FileNotFoundError(f"query image(s) not found: {missing}.")
    support = load_volume(VolumeRecord("support", Path(support_image), Path(support_label)))
    positions = support_slices(support.label, int(class_value), n_chunks, name=str(support_label))
    support_images = torch.from_numpy(np.moveaxis(support.image[..., positions], -1, 0).copy())  # (N, C, H, W)
    support_masks = torch.from_numpy(np.moveaxis(support.label[..., positions] == class_value, -1, 0).copy())
    support_masks = support_masks[:, None].float()
    names = output_names(queries)
    existing = [str(Path(output_dir) / name) for name in names if (Path(output_dir) / name).exists()]
    if existing and not overwrite:
        raise FileExistsError(f"{', '.join(existing)} exist(s) already: choose another output folder or overwrite.")
    codes = axis_codes(support.affine)
    headers, volumes = [], []
    for query in queries:
        try:
            header = nib.load(str(query))
        except Exception as error:  # nibabel raises ImageFileError, EOFError, OSError, ...: name the file once
            raise ValueError(f"cannot read {query} as NIfTI: {type(error).__name__}: {error}") from error
        query_codes = axis_codes(header.affine)
        volume = load_volume(  # every voxel read before any write
            VolumeRecord("query", query), load_label=False, orientation=codes if query_codes != codes else None
        )
        if tuple(volume.image.shape[1:3]) != tuple(support.image.shape[1:3]):
            raise ValueError(
                f"{query} has in-plane size {tuple(volume.image.shape[1:3])} in the support's orientation {codes}, "
                f"the support {support_image} {tuple(support.image.shape[1:3])}: resample them to one grid first."
            )
        query_spacing, support_spacing = (nib.affines.voxel_sizes(a)[:2] for a in (volume.affine, support.affine))
        if np.any(np.abs(query_spacing / support_spacing - 1) > spacing_tolerance):
            raise ValueError(
                f"{query} has in-plane spacing {np.round(query_spacing, 3).tolist()} mm, the support {support_image} "
                f"{np.round(support_spacing, 3).tolist()} mm: resample the query to the support's spacing first "
                f"(e.g. MONAI Spacingd)."
            )
        headers.append((header, query_codes))
        volumes.append(volume)
    network = network.to(device).eval()
    inferer = FewShotSliceInferer(batch_size=batch_size)
    written = []
    for volume, (header, query_codes), name in zip(volumes, headers, names):
        if propagate:
            mask = segment_from_support_volume(
                network, volume.image, support.image, support.label == class_value,
                nib.affines.voxel_sizes(volume.affine), nib.affines.voxel_sizes(support.affine), device=device,
            ).mask
        else:
            depth = volume.image.shape[-1]
            assignment = chunk_assignment(depth, np.arange(depth), n_chunks)
            logits = inferer(
                torch.from_numpy(volume.image).to(device), network, support_images.to(device), support_masks.to(device),
                assignment,
            )
            mask = (logits[0] > 0).cpu().numpy().astype(np.uint8)
        if query_codes != codes:  # back to the query's own orientation
            mask = nib.orientations.apply_orientation(
                mask, nib.orientations.ornt_transform(nib.orientations.axcodes2ornt(codes), nib.orientations.axcodes2ornt(query_codes))
            ).astype(np.uint8)
        image = nib.Nifti1Image(mask, header.affine, header.header)
        image.set_data_dtype(np.uint8)
        target = Path(output_dir) / name
        with atomic_path(target) as tmp:
            nib.save(image, str(tmp))
        written.append(target)
    return written
