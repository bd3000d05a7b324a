"""Files in, files out for the painted-slice case: a NIfTI image and the user's label map -> the whole-organ mask
(NIfTI with the image's affine) and a JSON of per-slice confidence and the slice to paint next."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np

from monai_fewshot.inferers.propagation import Propagation, propagate_annotation
from monai_fewshot.utils import atomic_path, write_text_atomic

__all__ = ["confidence_path", "propagation_report", "segment_painted_volume"]


def confidence_path(mask_path: str | Path) -> Path:
    """The JSON written beside a mask: ``organ.nii.gz`` -> ``organ_confidence.json``."""
    path = Path(mask_path)
    stem = path.name[: -len(".nii.gz")] if path.name.endswith(".nii.gz") else path.stem
    return path.with_name(f"{stem}_confidence.json")


def _read(path: Path, what: str) -> nib.Nifti1Image:
    if not path.is_file():
        raise FileNotFoundError(f"{what} {path} does not exist.")
    try:
        image = nib.load(str(path))
        image.get_fdata(dtype=np.float32)  # reads (and caches) the voxels now: a truncated file fails here, not later
    except Exception as error:  # noqa: BLE001 - any reader failure is an unreadable file
        raise ValueError(f"{what} {path} is not a readable NIfTI file ({type(error).__name__}: {error}).") from None
    if len(image.shape) != 3:
        raise ValueError(f"{what} {path} must be a 3D volume, got shape {image.shape}.")
    return image


def propagation_report(result: Propagation) -> dict[str, Any]:
    """The JSON-ready summary of an axial propagation: label value, painted slices, the organ's likely extent, the
    suggested slice, and per slice its confidence and foreground voxels."""
    areas = result.mask.sum((0, 1))
    return {
        "label_value": result.label_value,
        "support_slices": result.support_slices,
        "likely_extent": list(result.likely_extent) if result.likely_extent is not None else None,
        "suggested_slice": result.suggested_slice,
        "slices": [
            {"index": k, "confidence": round(float(c), 4), "foreground_voxels": int(areas[k])}
            for k, c in enumerate(result.confidence)
        ],
    }


def segment_painted_volume(
    image: str | Path, annotation: str | Path, output: str | Path, label_value: int | None = None, overwrite: bool = False
) -> tuple[Path, Path, Propagation]:
    """Propagate the painted slices of ``annotation`` through ``image`` (:func:`propagate_annotation`, axial slices)
    and write the mask and its confidence JSON atomically.

    Args:
        image: the volume (NIfTI).
        annotation: the label map with the organ painted on one or a few slices (NIfTI, the image's grid).
        output: the mask to write (``.nii.gz``); the JSON goes beside it (:func:`confidence_path`).
        label_value: the painted value to segment (default: the largest painted value).
        overwrite: replace existing outputs. Defaults to False (an existing output is an error).

    Returns:
        the mask path, the JSON path and the :class:`Propagation`.

    Raises:
        FileNotFoundError: a missing input. FileExistsError: an output exists and not ``overwrite``.
        ValueError: an unreadable file, a grid (shape or affine) that differs between image and label map,
            NaN intensities, nothing painted or ``label_value`` not painted.
    """
    image, annotation, output = Path(image), Path(annotation), Path(output)
    report = confidence_path(output)
    existing = [str(p) for p in (output, report) if p.exists()]
    if existing and not overwrite:
        raise FileExistsError(f"{' and '.join(existing)} already exist{'s' if len(existing) == 1 else ''}; choose another --output or pass --overwrite.")
    volume, labels = _read(image, "image"), _read(annotation, "label map")
    if labels.shape != volume.shape:
        raise ValueError(f"label map {annotation} has shape {labels.shape}, the image {image} {volume.shape}: they must share the grid.")
    if not np.allclose(labels.affine, volume.affine, atol=1e-3):
        raise ValueError(
            f"label map {annotation} has another orientation or spacing (affine) than the image {image}: "
            "paint on the image's own grid."
        )
    array = volume.get_fdata(dtype=np.float32)
    if not np.all(np.isfinite(array)):
        raise ValueError(f"image {image} holds NaN or infinite intensities.")
    result = propagate_annotation(
        array, labels.get_fdata(dtype=np.float32), label_value, spacing=tuple(float(z) for z in volume.header.get_zooms()[:3])
    )
    mask = nib.Nifti1Image(result.mask, volume.affine, volume.header)
    mask.set_data_dtype(np.uint8)
    mask.header.set_slope_inter(1, 0)
    with atomic_path(output) as tmp:
        nib.save(mask, str(tmp))
    write_text_atomic(report, json.dumps(propagation_report(result), indent=1))
    return output, report, result
