"""One or a few painted slices -> the whole organ: slice-to-slice propagation with a stop rule.

Each painted mask is carried outward slice by slice: the previous slice is registered onto the next one
(demons, :func:`~monai_fewshot.registration.demons_transform`), the carried mask becomes a prior, and the
painted slices' intensity model (:class:`IntensityLikelihood`) corrects it where the organ's boundary moved.
The organ ends where the carried mask stops looking like the painted organ, shrinks away, or runs farther
than organs of its cross-section extend. Between two painted slices both sides are carried and blended.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk

from monai_fewshot.inferers.annotated_slices import choose_label_value
from monai_fewshot.registration import IntensityLikelihood, corrected_region, demons_transform, is_solid
from monai_fewshot.registration.pairwise import numpy_array, sitk_image
from monai_fewshot.transforms.intensity import robust_zscore

__all__ = [
    "ABRUPT_AREA",
    "COARSE_ABOVE",
    "OUTER_FRACTION",
    "Propagation",
    "StopRule",
    "propagate_annotation",
    "suggest_slice",
]

#: registration boxes with a longer side (pixels) run at half resolution
COARSE_ABOVE = 128
#: where the next slice to paint lies on an outer run: this fraction of the way from the painted slice to the
#: organ's likely end (see :func:`suggest_slice`)
OUTER_FRACTION = 0.5
#: a carried mask that still covers this fraction of its painted slice's area on the slice where its intensities
#: stop matching ended abruptly: organs taper, so the organ likely goes on (see :attr:`Propagation.likely_extent`)
ABRUPT_AREA = 0.75


@dataclass(frozen=True)
class StopRule:
    """Where a carried mask stops: the first slice where any of these holds is left empty, and all beyond it.

    Attributes:
        min_area: the mask's area fell below this fraction of the painted slice's.
        min_likelihood: the mean intensity log-likelihood ratio inside the mask fell below this fraction of
            the painted slices' (the mask left the organ).
        max_extent: the distance from the painted slice (mm) exceeds this many times the painted region's
            equivalent diameter (mm): organs are not much longer than wide.
    """

    min_area: float = 0.1
    min_likelihood: float = 0.5
    max_extent: float = 1.2


@dataclass(frozen=True)
class Propagation:
    """Result of :func:`propagate_annotation`.

    Attributes:
        mask: uint8 (X, Y, Z) whole-organ mask.
        confidence: (Z,) per slice along the axis: 1 on painted slices, the carried mask's intensity agreement
            with the painted organ in [0, 1] on predicted slices, 0 on slices left empty.
        support_slices: the painted slices used.
        likely_extent: the first and last slice the organ likely spans: the predicted ones, except on a side
            whose carried mask ended abruptly (``ABRUPT_AREA``) on an intensity change, where the organ likely
            goes on: there, halfway from the last predicted slice to the stop rule's extent limit. None when
            nothing was predicted.
        suggested_slice: the slice to paint next (:func:`suggest_slice`), or None when every slice of the
            likely extent is painted.
        label_value: the painted value that was segmented.
    """

    mask: np.ndarray
    confidence: np.ndarray
    support_slices: list[int]
    likely_extent: tuple[int, int] | None
    suggested_slice: int | None
    label_value: int


def suggest_slice(
    areas: Sequence[float], confidence: Sequence[float], likely_extent: tuple[int, int], supports: Sequence[int]
) -> int | None:
    """The slice to paint next: in the run of unpainted slices where the error is likely largest.

    A carried mask drifts with its distance from the nearest painted slice, and its confidence tells how far
    its intensities left the painted organ's. So each run of unpainted slices of the likely extent (beyond the
    outermost painted slice on either side, or between two painted slices) gets an expected error: the sum over
    its slices of area x (1 - confidence) x distance to the nearest painted slice, where a slice of the likely
    extent left empty counts the last predicted area with confidence 0. The run with the most gets the
    suggestion: ``OUTER_FRACTION`` of the way out on an outer run, the middle of a gap (ties: gaps, then the
    lower side). Chosen on the 80 CHAOS organs (whole-volume Dice after 2 and 3 painted slices, README "One
    painted slice -> the whole organ").

    Args:
        areas: (Z,) the predicted mask's area (pixels) per slice.
        confidence: (Z,) per-slice confidence (:attr:`Propagation.confidence`; 1 on painted slices).
        likely_extent: first and last slice the organ likely spans (painted ones included).
        supports: the painted slices, ascending.

    Returns:
        A slice of the likely extent that is not painted, or None when there is none.
    """
    low, high = likely_extent
    supports = [int(k) for k in supports]

    def expected_error(origin: int, slices: range) -> float:
        total, area = 0.0, float(areas[origin])
        for k in slices:
            miss = 1.0
            if areas[k] > 0:
                area, miss = float(areas[k]), 1.0 - float(confidence[k])
            total += area * miss * min(abs(k - s) for s in supports)
        return total

    runs = [(expected_error(a, range(a + 1, b)), (a + b) // 2) for a, b in zip(supports[:-1], supports[1:]) if b - a > 1]
    first, last = supports[0], supports[-1]
    if low < first:
        runs.append((expected_error(first, range(first - 1, low - 1, -1)), first - max(1, round(OUTER_FRACTION * (first - low)))))
    if high > last:
        runs.append((expected_error(last, range(last + 1, high + 1)), last + max(1, round(OUTER_FRACTION * (high - last)))))
    return int(max(runs, key=lambda run: run[0])[1]) if runs else None


def _box(mask: np.ndarray, margin: int) -> tuple[slice, slice]:
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    return (
        slice(max(rows[0] - margin, 0), min(rows[-1] + margin + 1, mask.shape[0])),
        slice(max(cols[0] - margin, 0), min(cols[-1] + margin + 1, mask.shape[1])),
    )


class _Carrier:
    """Carries a mask from one slice to its neighbour: demons on a box around the mask, then the intensity
    correction, keeping the components that overlap the carried mask (holes filled unless ``fill`` is False:
    a painted ring, such as a myocardium, stays a ring)."""

    def __init__(
        self,
        volume: np.ndarray,
        likelihood: IntensityLikelihood,
        margin: int,
        iterations: int,
        sigma: float,
        weight: float,
        fill: bool,
        coarse_above: int | None,
    ):
        self.volume, self.likelihood = volume, likelihood
        self.margin, self.iterations, self.sigma, self.weight, self.fill = margin, iterations, sigma, weight, fill
        self.coarse_above = coarse_above

    def __call__(self, mask: np.ndarray, source: int, target: int) -> tuple[np.ndarray, float]:
        """(H, W) boolean mask on slice ``source`` -> its (H, W) mask on slice ``target`` and the mean
        log-likelihood ratio inside it (NaN when empty)."""
        box = _box(mask, self.margin)
        fixed, moving = self.volume[box + (target,)], self.volume[box + (source,)]
        coarse = self.coarse_above is not None and max(fixed.shape) > self.coarse_above
        transform = demons_transform(fixed, moving, self.iterations, self.sigma / 2 if coarse else self.sigma, shrink=2 if coarse else 1)
        carried = numpy_array(
            sitk.Resample(sitk_image(mask[box].astype(np.float32), None), sitk_image(fixed, None), transform, sitk.sitkLinear, 0.0)
        )
        ratio = self.likelihood(fixed)
        _, region = corrected_region(carried, ratio, self.weight, self.fill)
        out = np.zeros_like(mask)
        out[box] = region
        return out, float(ratio[region].mean()) if region.any() else float("nan")


def propagate_annotation(
    image: np.ndarray,
    annotation: np.ndarray,
    label_value: int | None = None,
    spacing: Sequence[float] | None = None,
    axis: int = -1,
    stop: StopRule | None = None,
    likelihood_weight: float = 0.5,
    ring: float = 20.0,
    margin: int = 32,
    iterations: int = 60,
    sigma: float = 2.0,
    coarse_above: int | None = COARSE_ABOVE,
) -> Propagation:
    """Segment an organ through a volume from the slice(s) a user painted in it.

    Args:
        image: (X, Y, Z) volume.
        annotation: (X, Y, Z) label map with the organ painted on one or more slices along ``axis``.
        label_value: the painted value to segment. Defaults to None (the largest painted value).
        spacing: millimetres per axis (the NIfTI zooms). Defaults to 1 per axis.
        axis: the slicing axis. Defaults to -1 (axial in RAS-like NIfTI).
        stop: where a carried mask ends. Defaults to :class:`StopRule`'s defaults.
        likelihood_weight: weight of the intensity log-likelihood ratio against the carried mask's logit.
        ring: width (mm) of the surroundings the painted organ's intensities are told apart from. Defaults to 20.
        margin: pixels around the mask that each slice-to-slice registration sees. Defaults to 32.
        iterations, sigma: demons iterations and field smoothing (pixels) per slice pair.
        coarse_above: boxes with a side longer than this (pixels) are registered at half resolution (large
            organs: the time per slice stays bounded); None registers every box at full resolution.

    Returns:
        :class:`Propagation`.

    Raises:
        ValueError: shapes that differ or are not 3D, NaN or infinite intensities, nothing painted or
            ``label_value`` not painted, a spacing that is not three positive values.
    """
    image, annotation = np.asarray(image), np.asarray(annotation)
    if image.ndim != 3 or annotation.shape != image.shape:
        raise ValueError(f"image and annotation must be 3D volumes of one shape, got {image.shape} and {annotation.shape}.")
    if not np.all(np.isfinite(image)):
        raise ValueError("image holds NaN or infinite intensities.")
    spacing = (1.0, 1.0, 1.0) if spacing is None else tuple(float(s) for s in spacing)
    if len(spacing) != 3 or min(spacing) <= 0:
        raise ValueError(f"spacing must be three positive millimetre values, got {spacing}.")
    stop = stop or StopRule()
    axis = axis % 3
    value = choose_label_value(np.rint(annotation).astype(np.int64), label_value)
    volume = np.moveaxis(image.astype(np.float32), axis, -1)
    painted = np.moveaxis(np.rint(annotation) == value, axis, -1)
    in_plane = [s for i, s in enumerate(spacing) if i != axis]
    step_mm = spacing[axis]
    volume = robust_zscore(volume)

    supports = np.flatnonzero(painted.any((0, 1)))
    edges = np.linspace(*np.percentile(volume, [0.5, 99.5]), 49)
    ring_pixels = max(1, round(ring / float(np.mean(in_plane))))
    likelihood = IntensityLikelihood([volume[..., k] for k in supports], [painted[..., k] for k in supports], edges, ring_pixels)
    reference = max(likelihood.reference, 1e-6)
    solid = is_solid([painted[..., k] for k in supports])
    carry = _Carrier(volume, likelihood, margin, iterations, sigma, likelihood_weight, solid, coarse_above)
    depth = volume.shape[-1]

    def chain(start: int, direction: int, end: int, stopping: bool) -> tuple[dict[int, tuple[np.ndarray, float]], int]:
        """Masks and confidences carried from painted slice ``start`` towards ``end`` (exclusive), and the
        slice where the organ likely ends on that side (:attr:`Propagation.likely_extent`)."""
        mask = painted[..., start]
        area = mask.sum()
        diameter = 2 * np.sqrt(area * in_plane[0] * in_plane[1] / np.pi)
        carried, last, abrupt = {}, start, False
        for k in range(start + direction, end, direction):
            mask, ratio = carry(mask, k - direction, k)
            confidence = float(np.clip(ratio / reference, 0.0, 1.0)) if mask.any() else 0.0
            if stopping:
                shrunk = mask.sum() < stop.min_area * area
                unlike = not ratio >= stop.min_likelihood * reference
                too_far = abs(k - start) * step_mm > stop.max_extent * diameter
                if shrunk or unlike or too_far:
                    last_area = carried[last][0].sum() if last in carried else area
                    abrupt = unlike and not (shrunk or too_far) and last_area >= ABRUPT_AREA * area
                    break
            if not mask.any():
                break
            carried[k], last = (mask, confidence), k
        if not abrupt:
            return carried, last
        limit = np.clip(start + direction * np.floor(stop.max_extent * diameter / step_mm), 0, depth - 1)
        return carried, int(round((last + limit) / 2))

    mask = painted.copy()
    confidence = np.zeros(depth)
    confidence[supports] = 1.0
    (below, lowest), (above, highest) = chain(supports[0], -1, -1, True), chain(supports[-1], 1, depth, True)
    for k, (carried, score) in {**below, **above}.items():
        mask[..., k], confidence[k] = carried, score
    for low, high in zip(supports[:-1], supports[1:]):
        (forward, _), (backward, _) = chain(low, 1, high, False), chain(high, -1, low, False)
        for k in range(low + 1, high):
            weight = (high - k) / (high - low)
            empty = (np.zeros_like(mask[..., k]), 0.0)
            (a, ca), (b, cb) = forward.get(k, empty), backward.get(k, empty)
            mask[..., k] = weight * a + (1 - weight) * b >= 0.5
            confidence[k] = weight * ca + (1 - weight) * cb

    return Propagation(
        mask=np.moveaxis(mask.astype(np.uint8), -1, axis),
        confidence=confidence,
        support_slices=supports.tolist(),
        likely_extent=(lowest, highest),
        suggested_slice=suggest_slice(mask.sum((0, 1)), confidence, (lowest, highest), supports.tolist()),
        label_value=value,
    )
