"""A labelled support volume -> the organ in another patient's volume: locate, seed, propagate (real CHAOS)."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
import torch

from monai_fewshot.data.layout import CHAOS_CLASSES, VolumeStore, read_folder
from monai_fewshot.data.protocol import support_slices
from monai_fewshot.inferers import chunk_assignment, seed_slices, segment_from_support_volume
from monai_fewshot.metrics import volume_dice
from monai_fewshot.networks.nets import SupportMaskCopy
from monai_fewshot.registration import SupportRegistration


def test_seed_slices_pair_the_same_fractions_of_both_ranges():
    assert seed_slices(np.arange(10, 22), np.arange(30, 42)) == [(12, 32), (16, 36), (20, 40)]
    assert seed_slices(np.array([7]), np.arange(3, 9)) == [(7, 6)]  # one located slice: one seed, the middle support


def test_located_propagation_leaves_other_slices_empty_and_beats_painting_every_slice(chaos_dir):
    store = VolumeStore([r for r in read_folder(chaos_dir) if r.id in ("1", "3")], CHAOS_CLASSES)
    support, query = store["1"], store["3"]
    organ, truth = support.label == 2, query.label == 2  # right kidney
    result = segment_from_support_volume(
        SupportRegistration(), query.image, support.image, organ,
        nib.affines.voxel_sizes(query.affine), nib.affines.voxel_sizes(support.affine),
    )
    assert result.mask.shape == truth.shape and len(result.support_slices) == 3
    extent = np.flatnonzero(truth.any((0, 1)))
    predicted = np.flatnonzero(result.mask.any((0, 1)))
    assert predicted[0] >= extent[0] - 3 and predicted[-1] <= extent[-1] + 3  # the organ's end is found
    assert np.all(result.confidence[result.support_slices] == 1)

    # every slice predicted from its chunk's support slice (what segment did before): painted everywhere
    depth = query.image.shape[-1]
    supports = support_slices(support.label, 2, 3)
    assignment = chunk_assignment(depth, np.arange(depth), 3)
    every = np.stack([SupportMaskCopy()(torch.from_numpy(query.image[..., z])[None],
                                        torch.from_numpy(support.image[..., supports[assignment[z]]])[None, None],
                                        torch.from_numpy(organ[..., supports[assignment[z]]].astype(np.float32))[None, None, None])[0, 0].numpy() > 0
                      for z in range(depth)], -1)
    assert every.any((0, 1)).all()
    assert volume_dice(result.mask > 0, truth) >= 0.75 > volume_dice(every, truth)


def test_bad_shapes_are_refused_naming_them():
    with pytest.raises(ValueError, match="expected query"):
        segment_from_support_volume(SupportMaskCopy(), np.zeros((8, 8, 4)), np.zeros((1, 8, 8, 4)), np.ones((8, 8, 4)))
    with pytest.raises(ValueError, match="in-plane size"):
        segment_from_support_volume(SupportMaskCopy(), np.zeros((1, 8, 8, 4)), np.zeros((1, 9, 8, 4)), np.ones((9, 8, 4)))
