"""The support organ's intensity model on another patient's slice (real CHAOS volumes), and the correction of a
registered mask by it."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage

from monai_fewshot.data import CHAOS_CLASSES
from monai_fewshot.data.layout import VolumeStore, read_folder
from monai_fewshot.registration import (
    SupportIntensity,
    SupportRegistration,
    intensity_corrected_logits,
    support_likelihood_ratio,
)


def middle_slices(volume, class_id: int) -> tuple[np.ndarray, np.ndarray]:
    z = int(np.flatnonzero((volume.label == class_id).any(axis=(0, 1))).mean())
    return volume.image[0, ..., z].astype(np.float32), volume.label[..., z] == class_id


@pytest.fixture(scope="module")
def volume_1(chaos_dir):
    return VolumeStore([r for r in read_folder(chaos_dir) if r.id == "1"], CHAOS_CLASSES)["1"]


@pytest.fixture(scope="module")
def other_patient(volume_1):
    """The middle liver slice of CHAOS volume 1 (the support comes from volume 2) and its liver."""
    return middle_slices(volume_1, 1)


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2 * float((a & b).sum()) / max(float(a.sum() + b.sum()), 1.0)


def test_the_ratio_is_positive_on_the_query_organ_and_negative_around_it(liver_slice, other_patient):
    support, support_mask = liver_slice
    query, truth = other_patient
    intensity = support_likelihood_ratio(
        torch.from_numpy(query)[None, None], torch.from_numpy(support)[None, None, None], torch.from_numpy(support_mask)[None, None, None].float()
    )
    assert intensity.ratio.shape == (1, 1, *query.shape) and intensity.ratio.dtype == torch.float32
    assert intensity.reference.shape == (1,) and intensity.reference[0] > 0.5
    ratio = intensity.ratio[0, 0].numpy()
    ring = ndimage.binary_dilation(truth, iterations=13) & ~truth
    assert ratio[truth].mean() > 0.5 and ratio[ring].mean() < -0.5


def test_an_episode_without_support_foreground_gets_zeros(liver_slice, other_patient):
    support, support_mask = liver_slice
    query = torch.from_numpy(other_patient[0])[None, None].expand(2, -1, -1, -1)
    masks = torch.from_numpy(support_mask)[None, None, None].float().repeat(2, 1, 1, 1, 1)
    masks[1] = 0
    ratio, reference, solid = support_likelihood_ratio(query, torch.from_numpy(support)[None, None, None].expand(2, -1, -1, -1, -1), masks)
    assert ratio[0].abs().sum() > 0 and torch.equal(ratio[1], torch.zeros_like(ratio[1]))
    assert reference[0] > 0 and reference[1] == 0
    assert solid.tolist() == [True, True]  # a liver has no holes; nothing painted, nothing to keep open


def test_the_correction_moves_the_boundary_but_adds_no_region_away_from_the_registered_mask():
    yy, xx = np.mgrid[:64, :64]
    organ = (yy - 20) ** 2 + (xx - 20) ** 2 < 10**2
    lookalike = (yy - 45) ** 2 + (xx - 45) ** 2 < 8**2  # the organ's intensity, elsewhere
    ratio = torch.from_numpy(np.where(organ | lookalike, 4.0, -4.0).astype(np.float32))[None, None]
    registered = torch.from_numpy(((yy - 23) ** 2 + (xx - 23) ** 2 < 10**2).astype(np.float32))[None, None]  # 3 px off
    # the support's own organ scored 4 on average, the query under the registered mask less: trusted in part
    logits = intensity_corrected_logits(registered, SupportIntensity(ratio, torch.tensor([4.0]), torch.tensor([True])), 2.0)[0, 0].numpy()
    assert dice(logits > 0, organ) > 0.9 > dice(registered[0, 0].numpy() > 0, organ) + 0.1
    assert not (logits > 0)[lookalike].any()
    assert np.all(np.abs(logits) >= 0.1)
    # a query whose registered region looks nothing like the support's organ keeps the registered mask
    unlike = intensity_corrected_logits(registered, SupportIntensity(-ratio, torch.tensor([4.0]), torch.tensor([True])), 2.0)[0, 0].numpy()
    assert dice(unlike > 0, registered[0, 0].numpy() > 0) > 0.95


def test_a_ring_shaped_support_organ_stays_a_ring():
    # a myocardium: a dark ring between a bright blood pool and mid-grey surroundings
    yy, xx = np.mgrid[:64, :64]
    radius = np.hypot(yy - 32, xx - 32)
    ring = (radius >= 8) & (radius < 14)
    image = np.where(radius < 8, 3.0, np.where(ring, 1.0, 2.0)) + np.random.default_rng(0).normal(0, 0.1, (64, 64))
    image = torch.from_numpy(image.astype(np.float32))
    intensity = support_likelihood_ratio(image[None, None], image[None, None, None], torch.from_numpy(ring)[None, None, None].float())
    assert intensity.solid.tolist() == [False]
    registered = torch.from_numpy(((radius >= 9) & (radius < 15)).astype(np.float32))[None, None]  # 1 px off
    corrected = intensity_corrected_logits(registered, intensity, 2.0)[0, 0].numpy() > 0
    assert not corrected[radius < 6].any()  # the blood pool is not filled in
    assert dice(corrected, ring) > 0.9


def test_intensity_corrected_registration_beats_registration_across_patients(chaos_volume, volume_1):
    """Each CHAOS organ's middle slice of volume 2 registered onto that of volume 1."""
    for class_id in (1, 2, 3, 4):
        support, support_mask = middle_slices(chaos_volume, class_id)
        query, truth = middle_slices(volume_1, class_id)
        episode = (torch.from_numpy(query)[None, None], torch.from_numpy(support)[None, None, None], torch.from_numpy(support_mask)[None, None, None].float())
        registered = SupportRegistration()(*episode)[0, 0].numpy() > 0
        corrected = SupportRegistration(intensity_weight=2.0)(*episode)[0, 0].numpy() > 0
        assert dice(corrected, truth) > dice(registered, truth), CHAOS_CLASSES[class_id]
