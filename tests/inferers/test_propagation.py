"""Propagation of painted slices through a volume: real CHAOS volumes and a synthetic organ of known extent."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from monai_fewshot.inferers import StopRule, propagate_annotation
from monai_fewshot.registration import IntensityLikelihood
from monai_fewshot.inferers.propagation import suggest_slice


def dice(prediction: np.ndarray, truth: np.ndarray) -> float:
    return 2 * float((prediction & truth).sum()) / max(float(prediction.sum() + truth.sum()), 1.0)


@pytest.fixture(scope="module")
def synthetic():
    """A 64 x 64 x 20 volume with a bright ellipsoid on slices 5-14 beside a dimmer slab that spans every slice."""
    x, y, z = np.meshgrid(np.arange(64), np.arange(64), np.arange(20), indexing="ij")
    organ = ((x - 30) / 14.0) ** 2 + ((y - 28) / 11.0) ** 2 + ((z - 9.5) / 5.6) ** 2 <= 1.0
    image = np.random.default_rng(0).normal(0.0, 0.05, organ.shape).astype(np.float32)
    image[organ] += 1.0
    image[52:60, 10:54, :] += 0.4  # a structure on every slice that the organ's mask must not run into
    return image, organ


def painted(truth: np.ndarray, slices: list[int], value: int = 1) -> np.ndarray:
    annotation = np.zeros(truth.shape, dtype=np.uint8)
    for k in slices:
        annotation[..., k] = truth[..., k] * value
    return annotation


def test_one_painted_slice_finds_the_organ_and_leaves_the_rest_empty(synthetic):
    image, organ = synthetic
    result = propagate_annotation(image, painted(organ, [10]), spacing=(1.0, 1.0, 2.0))
    filled = np.flatnonzero(result.mask.any((0, 1)))
    assert result.mask.dtype == np.uint8 and result.mask.shape == image.shape
    assert result.support_slices == [10] and result.label_value == 1
    truth_slices = np.flatnonzero(organ.any((0, 1)))
    assert filled[0] >= truth_slices[0] - 1 and filled[-1] <= truth_slices[-1] + 1  # the stop rule
    assert not result.mask[..., : truth_slices[0] - 1].any() and not result.mask[..., truth_slices[-1] + 2 :].any()
    assert dice(result.mask > 0, organ) > 0.85
    np.testing.assert_array_equal(result.mask[..., 10], organ[..., 10])
    assert result.confidence[10] == 1.0 and np.all(result.confidence[~result.mask.any((0, 1))] == 0.0)
    assert np.all((result.confidence >= 0) & (result.confidence <= 1))
    assert result.suggested_slice in filled.tolist() and result.suggested_slice != 10


def test_without_a_stop_rule_the_mask_runs_on(synthetic):
    """The stop rule is what ends the organ: with every criterion off the carried mask reaches further."""
    image, organ = synthetic
    never = StopRule(min_area=0.0, min_likelihood=-np.inf, max_extent=np.inf)
    loose = propagate_annotation(image, painted(organ, [10]), spacing=(1.0, 1.0, 2.0), stop=never, likelihood_weight=0.0)
    stopped = propagate_annotation(image, painted(organ, [10]), spacing=(1.0, 1.0, 2.0))
    assert loose.mask.any((0, 1)).sum() > stopped.mask.any((0, 1)).sum()
    assert dice(stopped.mask > 0, organ) > dice(loose.mask > 0, organ)


def test_several_painted_slices_fill_between_from_both_sides(synthetic):
    image, organ = synthetic
    result = propagate_annotation(image, painted(organ, [7, 12]), spacing=(1.0, 1.0, 2.0))
    assert result.support_slices == [7, 12]
    for k in range(8, 12):
        assert dice(result.mask[..., k] > 0, organ[..., k]) > 0.9
    assert result.suggested_slice not in (7, 12)


def test_a_painted_slice_at_the_volume_edge(synthetic):
    image, organ = synthetic
    edge = np.zeros_like(organ)
    edge[..., :4] = organ[..., 5:9]  # an organ that starts on the first slice
    shifted = np.where(edge, image.max(), image * 0.1).astype(np.float32)
    result = propagate_annotation(shifted, painted(edge, [0]), spacing=(1.0, 1.0, 2.0))
    assert result.support_slices == [0] and result.mask[..., 1].any()
    assert dice(result.mask > 0, edge) > 0.8


def test_painted_value_absent_and_bad_input(synthetic):
    image, organ = synthetic
    annotation = painted(organ, [10], value=2)
    with pytest.raises(ValueError, match=r"label value 3 is not painted .*painted values: \[2\]"):
        propagate_annotation(image, annotation, label_value=3)
    with pytest.raises(ValueError, match="no painted voxels"):
        propagate_annotation(image, np.zeros_like(annotation))
    with pytest.raises(ValueError, match="one shape"):
        propagate_annotation(image, annotation[..., :-1])
    broken = image.copy()
    broken[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        propagate_annotation(broken, annotation)
    with pytest.raises(ValueError, match="spacing"):
        propagate_annotation(image, annotation, spacing=(1.0, 0.0, 2.0))


def test_intensity_likelihood_separates_organ_from_ring(synthetic):
    image, organ = synthetic
    edges = np.linspace(-0.2, 1.2, 29)
    model = IntensityLikelihood([image[..., 10]], [organ[..., 10]], edges)
    ratio = model(image[..., 10])
    assert ratio[organ[..., 10]].mean() > 1.0 > -1.0 > ratio[~organ[..., 10]].mean()
    assert model.reference == pytest.approx(ratio[organ[..., 10]].mean())
    with pytest.raises(ValueError, match="as many masks as images"):
        IntensityLikelihood([image[..., 10]], [], edges)


@pytest.mark.parametrize("volume_id, value", [("2", 4), ("3", 2)])
def test_real_chaos_organ_beats_copying_the_painted_slice(chaos_dir, volume_id, value):
    """One painted middle slice of a real CHAOS organ: propagation's whole-volume Dice beats copying the painted
    mask onto every slice of the organ's true extent (which needs the truth), and slices far outside stay empty."""
    image = nib.load(chaos_dir / f"image_{volume_id}.nii.gz")
    truth = np.rint(np.asanyarray(nib.load(chaos_dir / f"label_{volume_id}.nii.gz").dataobj)) == value
    extent = np.flatnonzero(truth.any((0, 1)))
    middle = int((extent[0] + extent[-1]) // 2)
    spacing = tuple(float(z) for z in image.header.get_zooms())
    result = propagate_annotation(image.get_fdata(dtype=np.float32), painted(truth, [middle], value), spacing=spacing)
    copy = np.zeros_like(truth)
    copy[..., extent[0] : extent[-1] + 1] = truth[..., middle : middle + 1]
    assert dice(result.mask > 0, truth) > dice(copy, truth) + 0.05
    filled = np.flatnonzero(result.mask.any((0, 1)))
    assert filled[0] >= extent[0] - 2 and filled[-1] <= extent[-1] + 2


def test_a_painted_ring_stays_a_ring():
    """A myocardium-like annulus: the carried mask keeps its hole (filling it would swallow the blood pool)."""
    x, y, z = np.meshgrid(np.arange(64), np.arange(64), np.arange(10), indexing="ij")
    radius = np.hypot(x - 32, y - 32)
    ring = (radius >= 10) & (radius <= 15) & (z >= 2) & (z <= 7)
    image = np.random.default_rng(2).normal(0, 0.05, ring.shape).astype(np.float32)
    image[ring] += 1.0
    image[(radius < 10) & (z >= 2) & (z <= 7)] += 2.0  # a bright blood pool inside
    result = propagate_annotation(image, painted(ring, [5]), spacing=(1.0, 1.0, 2.0))
    assert not result.mask[32, 32, :].any()
    assert dice(result.mask > 0, ring) > 0.85


def test_suggested_slice_goes_where_the_expected_error_is_largest():
    areas, confidence = np.full(50, 100.0), np.full(50, 0.5)
    # painted 20, organ likely on 10-35, one confidence: the upper run is longer and farther; half-way out is 28
    assert suggest_slice(areas, confidence, (10, 35), [20]) == 28
    # the same extent, but the lower slices agree poorly with the painted organ and the upper ones well
    confidence[:20], confidence[21:] = 0.1, 0.95
    assert suggest_slice(areas, confidence, (10, 35), [20]) == 15
    # the upper slices are where the organ is large: 25 times the area outweighs the lower run's poor agreement
    areas[21:] = 2500.0
    assert suggest_slice(areas, confidence, (10, 35), [20]) == 28
    # slices of the likely extent left empty count the last predicted area with confidence 0
    areas, confidence = np.full(50, 100.0), np.full(50, 0.9)
    areas[10:14] = 0.0
    assert suggest_slice(areas, confidence, (10, 30), [20]) == 15
    # runs of one expected error: the lower one; painted at both ends: the middle of the gap
    assert suggest_slice(np.full(50, 100.0), np.full(50, 0.5), (10, 30), [20]) == 15
    assert suggest_slice(np.full(50, 100.0), np.full(50, 0.5), (10, 30), [10, 30]) == 20
    assert suggest_slice(areas, confidence, (19, 21), [19, 20, 21]) is None  # everything likely is painted
    assert suggest_slice(areas, confidence, (20, 21), [20]) == 21  # a run of one slice: that slice


def test_an_abrupt_stop_reaches_the_suggestion_past_the_predicted_end(synthetic):
    """An organ whose upper part turns dimmer: its carried mask stops where the intensity changes with its area
    intact, so the organ likely goes on, and the next slice to paint lies past where the prediction stopped.
    The organ that tapers to its ends (the fixture) keeps the predicted extent as its likely one."""
    image, organ = synthetic
    tapering = propagate_annotation(image, painted(organ, [10]), spacing=(1.0, 1.0, 2.0))
    filled = np.flatnonzero(tapering.mask.any((0, 1)))
    assert tapering.likely_extent == (filled[0], filled[-1])

    changed = image.copy()
    changed[..., 11:][organ[..., 11:]] -= 0.6  # the same organ, dimmer from slice 11 on
    result = propagate_annotation(changed, painted(organ, [8]), spacing=(1.0, 1.0, 2.0))
    filled = np.flatnonzero(result.mask.any((0, 1)))
    assert filled[-1] == 10 and result.likely_extent[1] > 10
    assert result.likely_extent[0] == filled[0]
    assert result.suggested_slice > 10
