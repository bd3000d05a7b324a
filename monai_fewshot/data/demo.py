"""The offline demo volume: the MNI152 2009c template with its grey- and white-matter maps.

They ship inside the ``nilearn`` wheel (``nilearn/datasets/data``), so a fresh machine has real brain
anatomy without any download. The template is distributed by the McConnell Brain Imaging Centre
(ICBM 2009c nonlinear symmetric; free use with acknowledgement).
"""

from __future__ import annotations

import numpy as np
import torch
from monai.data import MetaTensor

__all__ = ["DEMO_CLASSES", "load_mni152_demo"]

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
