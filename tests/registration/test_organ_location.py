"""Locating the support's organ in another patient's volume by 3D registration, on real CHAOS volumes."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from monai_fewshot.data.layout import CHAOS_CLASSES, VolumeStore, read_folder
from monai_fewshot.metrics import volume_dice
from monai_fewshot.registration import locate_organ


@pytest.fixture(scope="module")
def pair(chaos_dir):
    records = [r for r in read_folder(chaos_dir) if r.id in ("1", "2")]
    store = VolumeStore(records, CHAOS_CLASSES)
    return store["1"], store["2"]


def test_the_liver_of_one_patient_is_located_in_another(pair):
    support, query = pair
    spacing = [nib.affines.voxel_sizes(v.affine) for v in (query, support)]
    located = locate_organ(query.image[0], support.image[0], support.label == 1, *spacing)
    truth = np.flatnonzero((query.label == 1).any((0, 1)))
    assert located.warped_mask.shape == query.label.shape
    # the located slices cover the true extent and overshoot it by less than half its length (measured:
    # slices 0-29 for 7-28); the carried liver overlaps the true one (measured Dice 0.75)
    assert np.isin(truth, located.slices).all() and located.slices.size <= 1.5 * truth.size
    assert volume_dice(located.warped_mask >= 0.5, query.label == 1) >= 0.6
    again = locate_organ(query.image[0], support.image[0], support.label == 1, *spacing)
    np.testing.assert_array_equal(again.warped_mask, located.warped_mask)  # deterministic


@pytest.mark.parametrize(
    "query, support, mask, message",
    [
        (np.zeros((16, 16)), np.zeros((16, 16)), np.ones((16, 16)), "must be 3D volumes"),
        (np.eye(16)[..., None].repeat(4, -1), np.eye(16)[..., None].repeat(4, -1), np.zeros((16, 16, 4)), "no foreground"),
        (np.zeros((16, 16, 4)), np.eye(16)[..., None].repeat(4, -1), np.ones((16, 16, 4)), "query has one intensity"),
        (np.eye(16)[..., None].repeat(4, -1), np.eye(16)[..., None].repeat(4, -1), np.ones((16, 16, 3)), "support_mask has shape"),
    ],
)
def test_bad_input_is_one_clear_error(query, support, mask, message):
    with pytest.raises(ValueError, match=message):
        locate_organ(query, support, mask)
