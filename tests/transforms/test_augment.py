"""The lineage augmentations keep image and label aligned, are seeded, and actually move things."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
import torch

from monai_fewshot.transforms import RandDenseElasticd, lineage_augmentations


@pytest.fixture(scope="module")
def cmr_label(cmr_dir) -> np.ndarray:
    return np.asarray(nib.load(cmr_dir / "label_1.nii.gz").dataobj)


def _pair(label: np.ndarray):
    mask = torch.from_numpy((label > 0).astype(np.float32))[None]
    return {"image": mask.clone(), "label": mask}


@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_label_only_alignment_exact(cmr_label, spatial_dims):
    """The image is a copy of the label; resampled with nearest neighbour it must equal the label exactly."""
    data = _pair(cmr_label[..., 6] if spatial_dims == 2 else cmr_label[64:192, 64:192, :8])
    transform = lineage_augmentations(spatial_dims, image_mode="nearest", gamma=(1.0, 1.0))
    for seed in range(3):
        transform.set_random_state(seed)
        out = transform(dict(data))
        image, label = np.asarray(out["image"]), np.asarray(out["label"])
        np.testing.assert_allclose(image, label, atol=1e-5)  # gamma 1 rescales by float round-off only
        assert not np.array_equal(label, data["label"].numpy())  # it did move
        assert set(np.unique(label)) <= {0.0, 1.0}


def test_label_alignment_bilinear(cmr_label):
    data = _pair(cmr_label[..., 6])
    transform = lineage_augmentations(2, gamma=(1.0, 1.0))
    transform.set_random_state(4)
    out = transform(dict(data))
    image, label = np.asarray(out["image"])[0] > 0.5, np.asarray(out["label"])[0] > 0.5
    assert (image & label).sum() / (image | label).sum() > 0.95


def test_seeded():
    data = {"image": torch.randn(1, 64, 64), "label": (torch.rand(1, 64, 64) > 0.5).float()}
    transform = lineage_augmentations()
    outs = []
    for seed in (1, 1, 2):
        transform.set_random_state(seed)
        outs.append(np.asarray(transform(dict(data))["image"]))
    np.testing.assert_array_equal(outs[0], outs[1])
    assert not np.array_equal(outs[0], outs[2])


def test_dense_elastic_3d_in_plane_and_errors():
    volume = torch.arange(4, dtype=torch.float32).view(1, 1, 1, 4).expand(1, 16, 16, 4).clone()
    elastic = RandDenseElasticd(keys="image", sigma=2, alpha=3, mode="nearest")
    elastic.set_random_state(0)
    out = elastic({"image": volume})["image"]
    inside = out[0, 4:12, 4:12]
    assert torch.all(inside == volume[0, 4:12, 4:12])  # slices never mix: z values stay in their slice
    with pytest.raises(ValueError, match="sigma"):
        RandDenseElasticd(keys="image", sigma=0)
    with pytest.raises(ValueError, match="mode"):
        RandDenseElasticd(keys="image", mode="cubic")
