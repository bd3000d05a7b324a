"""Support-to-query registration on a real CHAOS slice and volume: recovery of a known warp, determinism, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from monai_fewshot.registration import register_pairs, register_support


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2 * float((a & b).sum()) / max(float(a.sum() + b.sum()), 1.0)
def test_recovers_a_known_affine_and_smooth_deformation_of_a_real_slice(liver_slice, known_warp):
    image, mask = liver_slice
    support = known_warp(image, (1.25, 1.25), linear=True)
    support_mask = known_warp(mask.astype(np.float32), (1.25, 1.25), linear=False) > 0.5
    assert dice(support_mask, mask) < 0.8  # the warp moves the organ away from the truth
    result = register_support(image, support, support_mask, (1.25, 1.25), (1.25, 1.25))
    assert result.warped_image.shape == result.warped_mask.shape == image.shape
    assert 0.0 <= result.warped_mask.min() and result.warped_mask.max() <= 1.0
    assert dice(result.binary_mask, mask) >= 0.9
    for stages in ({"deformable": None}, {"deformable": None, "focus_margin": None}):
        fewer = register_support(image, support, support_mask, (1.25, 1.25), (1.25, 1.25), **stages)
        assert dice(result.binary_mask, mask) >= dice(fewer.binary_mask, mask)


def test_volume_registration_honours_spacing_and_differing_sizes(chaos_volume, known_warp):
    image = chaos_volume.image[0, 64:192, 48:208].astype(np.float32)
    mask = chaos_volume.label[64:192, 48:208] == 1
    spacing = (1.25, 1.25, 7.7)
    support = known_warp(image, spacing, linear=True)[8:-8]  # a smaller support grid than the query's
    support_mask = known_warp(mask.astype(np.float32), spacing, linear=False)[8:-8] > 0.5
    result = register_support(image, support, support_mask, spacing, spacing)
    assert result.warped_mask.shape == image.shape
    assert dice(result.binary_mask, mask) >= 0.85


def test_registration_is_deterministic_in_process_and_in_workers(liver_slice, known_warp):
    image, mask = liver_slice
    support = known_warp(image, (1.0, 1.0), linear=True, seed=5)
    support_mask = known_warp(mask.astype(np.float32), (1.0, 1.0), linear=False, seed=5) > 0.5
    first = register_support(image, support, support_mask)
    again = register_support(image, support, support_mask)
    np.testing.assert_array_equal(first.warped_mask, again.warped_mask)
    pooled = register_pairs([(image, support, support_mask)] * 2, workers=2)
    for result in pooled:
        np.testing.assert_array_equal(result.warped_mask, first.warped_mask)
        np.testing.assert_array_equal(result.warped_image, first.warped_image)


@pytest.mark.parametrize(
    "query, support, mask, message",
    [
        (np.zeros((32, 32)), np.zeros((32, 32)), np.zeros((32, 32)), "support_mask has no foreground"),
        (np.zeros((32, 32)), np.zeros((32, 32, 4)), np.ones((32, 32, 4)), "support has 3 dims and the query 2"),
        (np.zeros((32, 32)), np.zeros((32, 32)), np.ones((30, 32)), "support_mask has shape (30, 32)"),
        (np.full((32, 32), np.nan), np.zeros((32, 32)), np.ones((32, 32)), "query holds NaN"),
        (np.zeros((32, 32)), np.full((32, 32), np.inf), np.ones((32, 32)), "support holds NaN or infinite"),
        (np.zeros(32), np.zeros(32), np.ones(32), "query must be a 2D slice"),
        (np.zeros((32, 32)), np.eye(32), np.ones((32, 32)), "query has one intensity everywhere"),
        (np.eye(32), np.ones((32, 32)), np.ones((32, 32)), "support has one intensity everywhere"),
    ],
)
def test_bad_input_is_one_clear_error_naming_the_input(query, support, mask, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        register_support(query, support, mask)


def test_unknown_stage_and_negative_seed_are_refused():
    square = np.zeros((16, 16))
    square[4:12, 4:12] = 1
    with pytest.raises(ValueError, match="deformable must be one of"):
        register_support(square, square, square, deformable="elastix")
    with pytest.raises(ValueError, match="seed must be >= 0"):
        register_support(square, square, square, seed=-1)
    with pytest.raises(ValueError, match="focus_margin must be positive"):
        register_support(square, square, square, focus_margin=0.0)


@pytest.mark.parametrize("shrink", [1, 2])
def test_demons_alone_carries_a_mask_onto_the_neighbouring_slice(chaos_volume, shrink):
    """Neighbouring slices of a real volume: the demons field moves slice z's liver mask closer to slice z+1's."""
    import SimpleITK as sitk

    from monai_fewshot.registration import demons_transform
    from monai_fewshot.registration.pairwise import numpy_array, sitk_image

    liver = chaos_volume.label == 1
    z = int(np.flatnonzero(liver.any(axis=(0, 1))).max()) - 3  # near the liver's end, where it changes fastest
    fixed, moving = chaos_volume.image[0, ..., z + 1], chaos_volume.image[0, ..., z]
    transform = demons_transform(fixed, moving, shrink=shrink)
    carried = numpy_array(sitk.Resample(sitk_image(liver[..., z].astype(np.float32), None), sitk_image(fixed, None), transform)) >= 0.5
    truth = liver[..., z + 1]
    before = 2 * (liver[..., z] & truth).sum() / (liver[..., z].sum() + truth.sum())
    after = 2 * (carried & truth).sum() / (carried.sum() + truth.sum())
    assert carried.shape == truth.shape and after > before
    with pytest.raises(ValueError, match="moving has shape"):
        demons_transform(fixed, moving[:-1])
    with pytest.raises(ValueError, match="shrink must be >= 1"):
        demons_transform(fixed, moving, shrink=0)


def test_focused_stage_keeps_the_initial_transform_when_the_organ_maps_off_the_query():
    """A whole-image stage that moved the query wholly off the support's organ leaves the organ stage no sample to
    compare (ITK raises "All samples map outside moving image buffer"): the initial transform stands."""
    import SimpleITK as sitk

    from monai_fewshot.registration.pairwise import focused_stage, sitk_image

    rows, cols = np.mgrid[:48, :48]
    image = np.exp(-((rows - 20.0) ** 2 + (cols - 28.0) ** 2) / 120.0)
    mask = ((rows - 20) ** 2 + (cols - 28) ** 2 < 36).astype(np.float32)
    far_away = sitk.TranslationTransform(2, (500.0, 500.0))
    local = sitk.AffineTransform(2)
    transform = focused_stage(sitk_image(image, None), sitk_image(image, None), sitk_image(mask, None), far_away, local, 5.0, 10)
    assert transform.TransformPoint((3.0, 4.0)) == far_away.TransformPoint((3.0, 4.0))
