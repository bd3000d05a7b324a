"""The offline default data: the MNI152 template with its grey- and white-matter maps.

They ship inside the ``nilearn`` wheel (``nilearn/datasets/data/mni_icbm152_{t1,gm,wm}_tal_nlin_sym_09a_converted
.nii.gz``), so a fresh machine has real brain anatomy without any download. The template is the ICBM152 2009a
nonlinear template of the McConnell Brain Imaging Centre (Fonov et al., NeuroImage 2011), which may be used,
copied and distributed freely with its copyright notice (Copyright (C) 1993-2009 Louis Collins, McConnell
Brain Imaging Centre, Montreal Neurological Institute, McGill University); nilearn is BSD-3-Clause.

``write_mni152_folder`` writes it in the ``image_N`` / ``label_N`` layout, so the episodic components run
offline on real anatomy (one subject: support and query are different slices of it). ``write_mni152_cohort``
writes seeded elastic, affine, bias-field and noise variants of it as a cohort of subjects, enough for the
5-fold protocol (``monai-fewshot demo`` evaluates on it).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from monai.data import MetaTensor

from monai_fewshot.registry import DEMO_CLASSES  # noqa: F401 - defined once there, re-exported here

__all__ = ["DEMO_CLASSES", "load_mni152_demo", "write_mni152_cohort", "write_mni152_folder"]



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
    volume = load_mni152_demo(resolution)
    out = Path(folder)
    _save_subject(out, 1, volume["image"].as_tensor()[0].numpy(), volume["label"].as_tensor()[0].numpy(),
                  volume["image"].affine.numpy())
    return out


def _save_subject(folder: Path, number: int, image: np.ndarray, label: np.ndarray, affine: np.ndarray) -> None:
    """``image_<number>.nii.gz`` and ``label_<number>.nii.gz`` in ``folder``, each written atomically."""
    import nibabel as nib

    from monai_fewshot.utils import atomic_path

    for key, array in (("image", image), ("label", label)):
        with atomic_path(folder / f"{key}_{number}.nii.gz") as temporary:
            nib.save(nib.Nifti1Image(np.ascontiguousarray(array), affine), str(temporary))


def write_mni152_cohort(folder: str | Path, subjects: int = 10, seed: int = 0, resolution: int = 2) -> Path:
    """Write a cohort of synthetic subjects made from the template, in the ``image_N`` / ``label_N`` layout.

    Subject ``n`` (1..``subjects``) is the template warped by MONAI's ``Rand3DElasticd`` (smooth displacement,
    rotation up to 0.1 rad, scaling up to 10 %, shift up to 4 voxels; labels by nearest neighbour), then given
    a smooth intensity bias field and Rician noise, all drawn from ``numpy.random.default_rng([seed, n])``:
    the same seed writes the same cohort on any machine. Each file is written atomically, and a finished
    cohort is marked by ``cohort.json``; calling again with the same arguments reuses it.

    Args:
        folder: output folder (created).
        subjects: number of subjects; the 5-fold protocol with a validation split needs at least 10 (one
            support and two query volumes per fold; 15 gives three).
        seed: the cohort's seed.
        resolution: voxel size in mm, 1 or 2.

    Returns:
        The folder, ready for ``read_folder`` with the classes ``DEMO_CLASSES``.
    """
    import json

    from monai.transforms import Compose, Rand3DElasticd, RandBiasFieldd, RandRicianNoised

    from monai_fewshot.utils import write_text_atomic

    if subjects < 10:
        raise ValueError(f"subjects must be at least 10 for the 5-fold protocol with validation, got {subjects}.")
    out = Path(folder)
    manifest = {"template": "mni_icbm152_2009a", "subjects": subjects, "seed": seed, "resolution": resolution}
    marker = out / "cohort.json"
    if marker.is_file() and json.loads(marker.read_text()) == manifest:
        return out
    out.mkdir(parents=True, exist_ok=True)
    template = load_mni152_demo(resolution)
    affine = template["image"].affine.numpy()
    vary = Compose([
        Rand3DElasticd(
            ("image", "label"), sigma_range=(6, 8), magnitude_range=(40, 80), prob=1.0, rotate_range=0.1,
            scale_range=0.1, translate_range=4, mode=("bilinear", "nearest"), padding_mode="zeros",
        ),
        RandBiasFieldd("image", coeff_range=(0.1, 0.3), prob=1.0),
        RandRicianNoised("image", std=0.02, prob=1.0, relative=False),
    ])
    for subject in range(1, subjects + 1):
        vary.set_random_state(seed=int(np.random.default_rng([seed, subject]).integers(2**31)))
        varied = vary({key: template[key].as_tensor().float() for key in ("image", "label")})
        image = np.clip(np.asarray(varied["image"][0], dtype=np.float32), 0, None)
        label = np.rint(np.asarray(varied["label"][0])).astype(np.uint8)
        _save_subject(out, subject, image / image.max(), label, affine)
    write_text_atomic(marker, json.dumps(manifest))
    return out
