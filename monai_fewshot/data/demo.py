"""The offline default data: the MNI152 template with its grey- and white-matter maps.

They ship inside the ``nilearn`` wheel (``nilearn/datasets/data/mni_icbm152_{t1,gm,wm}_tal_nlin_sym_09a_converted
.nii.gz``), so a fresh machine has real brain anatomy without any download. The template is the ICBM152 2009a
nonlinear template of the McConnell Brain Imaging Centre (Fonov et al., NeuroImage 2011), which may be used,
copied and distributed freely with its copyright notice (Copyright (C) 1993-2009 Louis Collins, McConnell
Brain Imaging Centre, Montreal Neurological Institute, McGill University); nilearn is BSD-3-Clause.

``write_mni152_folder`` writes it in the ``image_N`` / ``label_N`` layout, so the episodic components run
offline on real anatomy (one subject: support and query are different slices of it).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from monai.data import MetaTensor

__all__ = ["DEMO_CLASSES", "load_mni152_demo", "write_mni152_folder"]

DEMO_CLASSES = {1: "grey matter", 2: "white matter"}


def load_mni152_demo(resolution: int = 2) -> dict[str, MetaTensor]:
    """Load the template as an image and a two-class label map.

    A voxel is labelled grey (1) or white matter (2) where that tissue's probability is at least 0.5 and
    above the other's.

    Args:
        resolution: voxel size in mm, 1 or 2. Defaults to 2 (99 x 117 x 95 voxels).

    Returns:
        ``{"image": (1, X, Y, Z) float32 in [0, 1], "label": (1, X, Y, Z) uint8}`` as MetaTensors that carry
        the template's affine.
    """
    from nilearn import datasets

    if resolution not in (1, 2):
        raise ValueError(f"resolution must be 1 or 2 (mm), got {resolution}.")
    template = datasets.load_mni152_template(resolution=resolution)
    grey = datasets.load_mni152_gm_template(resolution=resolution).get_fdata()
    white = datasets.load_mni152_wm_template(resolution=resolution).get_fdata()
    image = template.get_fdata().astype(np.float32)
    image = (image - image.min()) / (image.max() - image.min())
    label = np.zeros(image.shape, dtype=np.uint8)
    label[(grey >= 0.5) & (grey > white)] = 1
    label[(white >= 0.5) & (white >= grey)] = 2
    affine = torch.as_tensor(template.affine, dtype=torch.float64)
    return {
        "image": MetaTensor(torch.from_numpy(image)[None], affine=affine),
        "label": MetaTensor(torch.from_numpy(label)[None], affine=affine),
    }


def write_mni152_folder(folder: str | Path, resolution: int = 2) -> Path:
    """Write the template as a one-subject folder in the ``image_N`` / ``label_N`` layout (``image_1``,
    ``label_1``; classes ``DEMO_CLASSES``); axial slices are the last axis, as in the few-shot datasets.

    The template is symmetric and there is one brain, so sample episodes from it with
    ``EpisodeSampler(..., distinct_volumes=False)``: support and query are different slices of that brain.
    Existing files are overwritten.

    Args:
        folder: output folder (created).
        resolution: voxel size in mm, 1 or 2 (default 2: 99 x 117 x 95 voxels).

    Returns:
        The folder, ready for ``read_folder``.
    """
    import nibabel as nib

    volume = load_mni152_demo(resolution)
    affine = volume["image"].affine.numpy()
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    for key in ("image", "label"):
        array = np.ascontiguousarray(volume[key].as_tensor()[0].numpy())
        nib.save(nib.Nifti1Image(array, affine), str(out / f"{key}_1.nii.gz"))
    return out
