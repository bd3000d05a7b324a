"""Support-to-query registration on SimpleITK: affine stages, then a deformable stage, 2D or 3D.

The support (moving) image is registered onto the query (fixed) image; the support mask is carried by the
same transform. Arrays are indexed as the project stores volumes, (H, W) slices or (H, W, D) volumes, and
``spacing`` is given in that order (millimetres per axis). Every stage runs on one thread with a fixed
sampling seed, so the same pair always gives the same result.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk

__all__ = ["DEFORMABLE_STAGES", "RegistrationResult", "demons_transform", "numpy_array", "register_support", "sitk_image"]

#: what ITK's metrics say when no (or too few) query points map into the support's (masked) image
NO_OVERLAP = "map outside moving image buffer"
#: deformable stages after the affine one: fast symmetric-forces demons, a B-spline on Mattes MI, or none
DEFORMABLE_STAGES = ("demons", "bspline", None)


@dataclass(frozen=True)
class RegistrationResult:
    """The support, warped onto the query's grid.

    Attributes:
        warped_image: (H, W[, D]) the support image resampled onto the query (linear, 0 outside).
        warped_mask: (H, W[, D]) the support mask resampled linearly: a soft mask in [0, 1].
        transform: the SimpleITK transform mapping query (fixed) points to support (moving) points.
    """

    warped_image: np.ndarray
    warped_mask: np.ndarray
    transform: sitk.Transform

    @property
    def binary_mask(self) -> np.ndarray:
        """(H, W[, D]) boolean: the warped mask at 0.5."""
        return self.warped_mask >= 0.5


def _check(array: np.ndarray, name: str, dims: int | None = None) -> np.ndarray:
    array = np.asarray(array)
    if array.ndim not in (2, 3):
        raise ValueError(f"{name} must be a 2D slice (H, W) or a 3D volume (H, W, D), got shape {array.shape}.")
    if dims is not None and array.ndim != dims:
        raise ValueError(f"{name} has {array.ndim} dims and the query {dims}: register a slice onto a slice or a volume onto a volume.")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} holds NaN or infinite values: registration needs finite intensities.")
    return array


def sitk_image(array: np.ndarray, spacing: Sequence[float] | None) -> sitk.Image:
    """An (H, W[, D]) array as a SimpleITK image whose index order is the array's axis order."""
    image = sitk.GetImageFromArray(np.ascontiguousarray(array.astype(np.float32).T))
    if spacing is not None:
        if len(spacing) != array.ndim or any(float(s) <= 0 for s in spacing):
            raise ValueError(f"spacing must give {array.ndim} positive values (one per axis), got {tuple(spacing)}.")
        image.SetSpacing([float(s) for s in spacing])
    return image


def numpy_array(image: sitk.Image) -> np.ndarray:
    """The inverse of :func:`sitk_image`: an (H, W[, D]) array in the image's index order."""
    return sitk.GetArrayFromImage(image).T


@contextmanager
def _one_thread() -> Iterator[None]:
    """SimpleITK's default thread count set to 1 for the call: the registration's image pyramid and metric
    otherwise split work across threads, and the result changes with the split."""
    threads = sitk.ProcessObject.GetGlobalDefaultNumberOfThreads()
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(1)
    try:
        yield
    finally:
        sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(threads)


def _sampling_seed(seed: int) -> int:
    """SimpleITK reads a sampling seed of 0 as "seed from the wall clock": shift ours so that 0 stays fixed."""
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}.")
    return seed + 1


def mattes_gradient_descent(
    iterations: int, learning_rate: float, shrink: Sequence[int], smoothing: Sequence[float]
) -> sitk.ImageRegistrationMethod:
    """The registration method every linear stage shares: Mattes mutual information (32 bins), linear
    interpolation, regular-step gradient descent with physical-shift scales, one pyramid level per ``shrink``
    factor with ``smoothing`` sigmas in voxels. The caller sets the sampling, masks and initial transform."""
    method = sitk.ImageRegistrationMethod()
    method.SetMetricAsMattesMutualInformation(numberOfHistogramBins=32)
    method.SetInterpolator(sitk.sitkLinear)
    method.SetOptimizerAsRegularStepGradientDescent(
        learningRate=learning_rate, minStep=1e-4, numberOfIterations=iterations, gradientMagnitudeTolerance=1e-8
    )
    method.SetOptimizerScalesFromPhysicalShift()
    method.SetShrinkFactorsPerLevel(list(shrink))
    method.SetSmoothingSigmasPerLevel(list(smoothing))
    method.SmoothingSigmasAreSpecifiedInPhysicalUnitsOff()
    return method


def _affine(fixed: sitk.Image, moving: sitk.Image, seed: int, iterations: int) -> sitk.Transform:
    """Centred affine on Mattes mutual information, three resolution levels."""
    initial = sitk.CenteredTransformInitializer(
        fixed, moving, sitk.AffineTransform(fixed.GetDimension()), sitk.CenteredTransformInitializerFilter.GEOMETRY
    )
    method = mattes_gradient_descent(iterations, 1.0, (4, 2, 1), (2, 1, 0))
    method.SetMetricSamplingStrategy(method.RANDOM)
    method.SetMetricSamplingPercentage(0.25, _sampling_seed(seed))
    method.SetInitialTransform(initial, inPlace=False)
    return method.Execute(fixed, moving)


def focused_stage(
    fixed: sitk.Image, moving: sitk.Image, moving_mask: sitk.Image, initial: sitk.Transform, local: sitk.Transform,
    margin: float, iterations: int,
) -> sitk.Transform:
    """A second linear stage ``local``, composed after ``initial``, whose metric sees only the support's organ and a
    ``margin`` (physical units) around it: the whole-image stage aligns the bodies, this one the organ. Where
    ``initial`` maps the query wholly off that region (the metric has no sample to compare), there is nothing to
    refine and ``initial`` is returned."""
    radius = [max(1, round(margin / spacing)) for spacing in moving.GetSpacing()]
    region = sitk.BinaryDilate(sitk.Cast(moving_mask > 0.5, sitk.sitkUInt8), radius)
    method = mattes_gradient_descent(iterations, 0.5, (2, 1), (1, 0))
    method.SetMetricSamplingStrategy(method.NONE)
    method.SetMetricMovingMask(region)
    method.SetMovingInitialTransform(initial)
    method.SetInitialTransform(local, inPlace=False)
    try:
        return sitk.CompositeTransform([initial, method.Execute(fixed, moving)])
    except RuntimeError as error:
        if NO_OVERLAP not in str(error):
            raise
        return initial


def _centred_affine(fixed: sitk.Image) -> sitk.AffineTransform:
    """An identity affine centred on ``fixed``'s middle."""
    local = sitk.AffineTransform(fixed.GetDimension())
    local.SetCenter(fixed.TransformContinuousIndexToPhysicalPoint([(size - 1) / 2 for size in fixed.GetSize()]))
    return local


def check_inputs(query: np.ndarray, support: np.ndarray, support_mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The arrays of a support-to-query registration, checked: 2D or 3D, one number of dims, the mask the support's
    shape with some foreground, finite intensities, neither image blank (one intensity everywhere).

    Raises:
        ValueError: naming the input that fails.
    """
    query = _check(query, "query")
    support = _check(support, "support", query.ndim)
    support_mask = _check(support_mask, "support_mask", query.ndim)
    if support_mask.shape != support.shape:
        raise ValueError(f"support_mask has shape {support_mask.shape} and support {support.shape}: they must match.")
    if not np.any(support_mask > 0):
        raise ValueError("support_mask has no foreground: there is nothing to carry onto the query.")
    for array, name in ((query, "query"), (support, "support")):
        if np.ptp(array) == 0:
            raise ValueError(f"{name} has one intensity everywhere (a blank slice or volume): there is nothing to register.")
    return query, support, support_mask


def _demons(fixed: sitk.Image, moved: sitk.Image, iterations: int, sigma: float, match: bool = True) -> sitk.Transform:
    """Fast symmetric-forces demons between the query and the (affinely moved) support, after histogram matching
    when ``match``."""
    if match:
        matching = sitk.HistogramMatchingImageFilter()
        matching.SetNumberOfHistogramLevels(256)
        matching.SetNumberOfMatchPoints(7)
        matching.ThresholdAtMeanIntensityOn()
        moved = matching.Execute(moved, fixed)
    demons = sitk.FastSymmetricForcesDemonsRegistrationFilter()
    demons.SetNumberOfIterations(iterations)
    demons.SetStandardDeviations(sigma)
    field = demons.Execute(fixed, moved)
    return sitk.DisplacementFieldTransform(sitk.Cast(field, sitk.sitkVectorFloat64))


def demons_transform(
    fixed: np.ndarray,
    moving: np.ndarray,
    iterations: int = 60,
    sigma: float = 2.0,
    match_histograms: bool = False,
    shrink: int = 1,
) -> sitk.Transform:
    """The demons stage alone, between two images of one grid (unit spacing): neighbouring slices of a volume.

    Args:
        fixed: (H, W[, D]) image the result is on.
        moving: image of the same shape, moved onto ``fixed``.
        iterations: demons iterations. Defaults to 60.
        sigma: smoothing of the displacement field, in voxels of the (shrunk) grid. Defaults to 2.
        match_histograms: match ``moving``'s histogram to ``fixed``'s first (images of two acquisitions).
        shrink: run on images binned by this factor per axis (the field still maps the full grid). Defaults to 1.

    Returns:
        a displacement-field transform mapping ``fixed`` points to ``moving`` points (for ``sitk.Resample``).
    """
    fixed = _check(fixed, "fixed")
    moving = _check(moving, "moving", fixed.ndim)
    if moving.shape != fixed.shape:
        raise ValueError(f"moving has shape {moving.shape} and fixed {fixed.shape}: they must match.")
    if shrink < 1:
        raise ValueError(f"shrink must be >= 1, got {shrink}.")
    fixed_image, moving_image = sitk_image(fixed, None), sitk_image(moving, None)
    with _one_thread():
        if shrink > 1:
            fixed_image = sitk.BinShrink(fixed_image, [shrink] * fixed.ndim)
            moving_image = sitk.BinShrink(moving_image, [shrink] * fixed.ndim)
        return _demons(fixed_image, moving_image, iterations, sigma, match_histograms)


def _bspline(fixed: sitk.Image, moved: sitk.Image, seed: int, iterations: int) -> sitk.Transform:
    """A B-spline transform (control points every ~32 voxels) on Mattes MI, two levels, L-BFGS-B."""
    mesh = [max(1, size // 32) for size in fixed.GetSize()]
    initial = sitk.BSplineTransformInitializer(fixed, mesh)
    method = sitk.ImageRegistrationMethod()
    method.SetMetricAsMattesMutualInformation(numberOfHistogramBins=32)
    method.SetMetricSamplingStrategy(method.RANDOM)
    method.SetMetricSamplingPercentage(0.25, _sampling_seed(seed))
    method.SetInterpolator(sitk.sitkLinear)
    method.SetOptimizerAsLBFGSB(gradientConvergenceTolerance=1e-5, numberOfIterations=iterations)
    method.SetShrinkFactorsPerLevel([2, 1])
    method.SetSmoothingSigmasPerLevel([1, 0])
    method.SetInitialTransform(initial, inPlace=False)
    return method.Execute(fixed, moved)


def register_support(
    query: np.ndarray,
    support: np.ndarray,
    support_mask: np.ndarray,
    query_spacing: Sequence[float] | None = None,
    support_spacing: Sequence[float] | None = None,
    deformable: str | None = "demons",
    focus_margin: float | None = 15.0,
    seed: int = 0,
    affine_iterations: int = 60,
    deformable_iterations: int = 60,
    demons_sigma: float = 2.0,
) -> RegistrationResult:
    """Register the support onto the query and carry its mask along.

    Args:
        query: (H, W) or (H, W, D) fixed image.
        support: moving image with the query's number of dims; its size may differ from the query's.
        support_mask: the support's mask, same shape as ``support``, with some foreground.
        query_spacing, support_spacing: millimetres per axis (default 1 per axis).
        deformable: ``"demons"`` (default), ``"bspline"`` or None (affine only).
        focus_margin: after the whole-image affine, a second affine on the support's organ and this margin
            around it (physical units; default 15); None skips it.
        seed: seed of the metric's random sampling.
        affine_iterations: optimiser iterations per level of the affine stage.
        deformable_iterations: demons iterations, or L-BFGS-B iterations of the B-spline stage.
        demons_sigma: smoothing of the demons displacement field, in voxels.

    Returns:
        a :class:`RegistrationResult` on the query's grid.

    Raises:
        ValueError: an input that is not 2D/3D, dims that differ, a mask whose shape differs from the
            support's, an empty mask, NaN or infinite intensities, a blank (constant) query or support, an
            unknown ``deformable`` stage, a ``focus_margin`` that is not positive.
    """
    if deformable not in DEFORMABLE_STAGES:
        raise ValueError(f"deformable must be one of {DEFORMABLE_STAGES}, got {deformable!r}.")
    if focus_margin is not None and focus_margin <= 0:
        raise ValueError(f"focus_margin must be positive or None, got {focus_margin}.")
    query, support, support_mask = check_inputs(query, support, support_mask)
    fixed = sitk_image(query, query_spacing)
    moving = sitk_image(support, support_spacing)
    moving_mask = sitk_image((support_mask > 0).astype(np.float32), support_spacing)
    with _one_thread():
        transform = _affine(fixed, moving, seed, affine_iterations)
        if focus_margin is not None:
            transform = focused_stage(
                fixed, moving, moving_mask, transform, _centred_affine(fixed), focus_margin, affine_iterations
            )
        if deformable is not None:
            moved = sitk.Resample(moving, fixed, transform, sitk.sitkLinear, 0.0)
            local = (
                _demons(fixed, moved, deformable_iterations, demons_sigma)
                if deformable == "demons"
                else _bspline(fixed, moved, seed, deformable_iterations)
            )
            transform = sitk.CompositeTransform([transform, local])  # applied last to first: local, then affine
        warped_image = numpy_array(sitk.Resample(moving, fixed, transform, sitk.sitkLinear, 0.0))
        warped_mask = numpy_array(sitk.Resample(moving_mask, fixed, transform, sitk.sitkLinear, 0.0))
    return RegistrationResult(warped_image, np.clip(warped_mask, 0.0, 1.0), transform)
