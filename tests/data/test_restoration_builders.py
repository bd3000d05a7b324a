"""Restoration builders on real CHAOS volumes."""

import nibabel as nib
import numpy as np
import pytest
import torch
from monai.data import DataLoader

from monai_fewshot.data import read_folder, restoration_patches, restoration_split, restoration_volumes

CHAOS_IDS = ["1", "2", "3", "5", "8", "10", "13", "15", "19", "20", "21", "22", "31", "32", "33", "34", "36", "37", "38", "39"]


@pytest.fixture(scope="module")
def four_chaos(tmp_path_factory, chaos_dir):
    """Four CHAOS volumes (symbolic links): 2 train, 1 validation, 1 test with n_test=1, n_val=1."""
    folder = tmp_path_factory.mktemp("four_chaos")
    for subject in ("2", "3", "5", "8"):
        (folder / f"image_{subject}.nii.gz").symlink_to(chaos_dir / f"image_{subject}.nii.gz")
    return folder


SMALL = {"n_test": 1, "n_val": 1}


def test_the_stated_chaos_split(chaos_dir):
    ids = [r.id for r in read_folder(chaos_dir, require_labels=False)]
    assert sorted(ids, key=int) == sorted(CHAOS_IDS, key=int)
    split = restoration_split(ids, seed=0)
    assert split["test"] == ["3", "8", "13", "39"] and split["validation"] == ["32", "36"]  # as docs/README.md says
    assert sorted(sum(split.values(), []), key=int) == sorted(ids, key=int)
    assert restoration_split(list(reversed(ids)), seed=0) == split  # the order of the ids does not matter
    assert restoration_split(ids, seed=1) != split


def test_split_needs_enough_volumes():
    with pytest.raises(ValueError, match="needs at least 7 volumes, got 6"):
        restoration_split([str(i) for i in range(6)])
    with pytest.raises(ValueError, match="unique"):
        restoration_split(["1", "1", "2", "3", "4", "5", "6", "7"])


@pytest.mark.parametrize("task,factor", [("denoise", 2), ("sr", 2), ("sr", 4)])
def test_whole_volumes_normalised_and_degraded(four_chaos, task, factor):
    (item,) = restoration_volumes(four_chaos, "test", task=task, factor=factor, **SMALL)
    source = nib.load(four_chaos / f"image_{item['id']}.nii.gz")
    clean, degraded = item["label"], item["image"]
    assert clean.shape == (1, *source.shape) and degraded.shape == clean.shape
    assert float(clean.min()) == 0.0 and float(clean.max()) == pytest.approx(1.0)
    np.testing.assert_allclose(clean.affine.numpy(), source.affine, atol=1e-4)
    np.testing.assert_allclose(degraded.affine.numpy(), source.affine, atol=1e-4)
    if task == "sr":
        assert item["low_res"].shape[-1] == -(-source.shape[-1] // factor)
    else:
        assert float((degraded - clean).std()) == pytest.approx(0.05, rel=0.05)
    again = restoration_volumes(four_chaos, "test", task=task, factor=factor, **SMALL)[0]
    assert torch.equal(again["image"], degraded)  # the same degraded input on every run


def test_centred_crop_of_the_scored_volumes(four_chaos):
    (whole,) = restoration_volumes(four_chaos, "test", **SMALL)
    (item,) = restoration_volumes(four_chaos, "test", roi_size=(128, 96, -1), **SMALL)
    height, width, slices = whole["label"].shape[1:]
    top, left = (height - 128) // 2, (width - 96) // 2
    assert item["label"].shape == item["image"].shape == (1, 128, 96, slices)
    # cropped after the whole volume's normalisation, so the intensities are the whole volume's
    assert torch.equal(item["label"], whole["label"][:, top : top + 128, left : left + 96])
    first_voxel = whole["label"].affine @ torch.tensor([top, left, 0, 1.0], dtype=torch.float64)
    np.testing.assert_allclose(item["label"].affine.numpy()[:3, 3], first_voxel.numpy()[:3], atol=1e-4)  # the crop's origin
    assert float((item["image"] - item["label"]).std()) == pytest.approx(0.05, rel=0.05)
    with pytest.raises(ValueError, match="roi_size must give 3 sizes"):
        restoration_volumes(four_chaos, "test", roi_size=(128, 128), **SMALL)


def test_patches_are_reproducible_from_the_seed(four_chaos):
    def first_batch(seed):
        dataset = restoration_patches(four_chaos, (32, 32, 8), patches_per_volume=3, seed=seed, **SMALL)
        torch.manual_seed(seed)  # MONAI's DataLoader reseeds the dataset's transforms from torch's generator
        return next(iter(DataLoader(dataset, batch_size=6, shuffle=False)))

    batch = first_batch(0)
    assert batch["label"].shape == batch["image"].shape == (6, 1, 32, 32, 8)  # 2 train volumes x 3 patches
    assert sorted(set(batch["id"])) == restoration_split(["2", "3", "5", "8"], **SMALL)["train"]  # never test/validation
    assert torch.equal(batch["image"], first_batch(0)["image"]) and not torch.equal(batch["image"], first_batch(1)["image"])


def test_super_resolution_patches(four_chaos):
    def first_patch(seed):
        dataset = restoration_patches(four_chaos, (32, 32, 8), patches_per_volume=1, task="sr", factor=4, seed=seed, **SMALL)
        return dataset[0][0]

    patch = first_patch(0)
    assert patch["low_res"].shape == (1, 32, 32, 2) and patch["image"].shape == patch["label"].shape
    assert torch.equal(patch["label"], first_patch(0)["label"])  # indexed directly, the dataset's seed decides


def test_bad_inputs_are_clear(tmp_path, four_chaos):
    with pytest.raises(FileNotFoundError, match=f"dataset folder {tmp_path / 'absent'} does not exist"):
        restoration_patches(tmp_path / "absent")
    with pytest.raises(ValueError, match="smaller than the patch size"):
        restoration_patches(four_chaos, (32, 32, 64), **SMALL)
    with pytest.raises(ValueError, match="split must be one of"):
        restoration_volumes(four_chaos, "holdout", **SMALL)
    flat = tmp_path / "flat"
    flat.mkdir()
    for subject in range(4):
        nib.save(nib.Nifti1Image(np.zeros((16, 16), np.float32), np.eye(4)), flat / f"image_{subject}.nii.gz")
    with pytest.raises(ValueError, match="image_\\d.nii.gz has shape \\(16, 16\\): restoration takes 3D volumes"):
        restoration_volumes(flat, "train", **SMALL)
