import numpy as np
import pytest
import torch
from monai.data import MetaTensor

from monai_fewshot.transforms import RandNoiseCopyd, SliceDownsampleCopyd, restoration_degradation

AFFINE = torch.tensor([[1.25, 0, 0, 10.0], [0, 1.25, 0, -20.0], [0, 0, 7.7, 30.0], [0, 0, 0, 1]], dtype=torch.float64)


def constant(value=0.5, shape=(1, 32, 32, 16)):
    return MetaTensor(torch.full(shape, value), affine=AFFINE.clone())


def slice_ramp(depth=16):
    """(1, 4, 4, depth): each slice holds its index."""
    return MetaTensor(torch.arange(float(depth)).expand(1, 4, 4, depth).clone(), affine=AFFINE.clone())


@pytest.mark.parametrize("noise", ["gaussian", "rician"])
@pytest.mark.parametrize("sigma", [0.02, 0.1])
def test_noise_sigma_on_a_constant_image(noise, sigma):
    clean = constant()
    out = RandNoiseCopyd("label", "image", noise=noise, sigma=sigma).set_random_state(0)({"label": clean})
    assert out["label"] is clean and torch.equal(clean, constant())  # the clean image stays as it was
    assert out["image"].shape == clean.shape and torch.equal(out["image"].affine, AFFINE)
    assert float(out["image"].std()) == pytest.approx(sigma, rel=0.05)
    expected_mean = 0.5 if noise == "gaussian" else float(np.sqrt(0.25 + sigma**2))  # Rician bias
    assert float(out["image"].mean()) == pytest.approx(expected_mean, abs=0.1 * sigma)


def test_rician_noise_is_a_magnitude():
    out = RandNoiseCopyd("label", "image", noise="rician", sigma=0.1).set_random_state(0)({"label": constant(0.0)})
    assert float(out["image"].min()) >= 0.0  # |n1 + i n2|: Rayleigh on a zero image


@pytest.mark.parametrize("noise", ["gaussian", "rician"])
def test_seeds_reproduce(noise):
    def draw(seed):
        return RandNoiseCopyd("label", "image", noise=noise).set_random_state(seed)({"label": constant()})["image"]

    assert torch.equal(draw(3), draw(3)) and not torch.equal(draw(3), draw(4))
    transform = RandNoiseCopyd("label", "image", noise=noise).set_random_state(3)
    first, second = transform({"label": constant()})["image"], transform({"label": constant()})["image"]
    assert not torch.equal(first, second)  # a stream: each call draws new noise


@pytest.mark.parametrize("factor,depth,expected", [(2, 16, 8), (4, 16, 4), (2, 15, 8), (4, 18, 5)])
def test_slice_downsampling_shape_and_affine(factor, depth, expected):
    image = slice_ramp(depth)
    low = SliceDownsampleCopyd("label", "low_res", factor=factor)({"label": image})["low_res"]
    assert low.shape == (1, 4, 4, expected)
    spacing = 7.7 * depth / expected
    assert float(low.affine[2, 2]) == pytest.approx(spacing) and torch.equal(low.affine[:2, :2], AFFINE[:2, :2])
    last_edge = torch.tensor([0, 0, depth - 0.5, 1], dtype=torch.float64)  # far edge of the last slice, in voxels
    low_edge = torch.tensor([0, 0, expected - 0.5, 1], dtype=torch.float64)
    assert float((low.affine @ low_edge)[2]) == pytest.approx(float((AFFINE @ last_edge)[2]))  # same field of view
    if depth % factor == 0:  # thick slices: the mean of `factor` thin ones
        torch.testing.assert_close(low[0, 0, 0], torch.arange(float(depth)).reshape(-1, factor).mean(1))


def test_super_resolution_input_is_on_the_clean_grid():
    out = restoration_degradation("sr", factor=2)({"label": slice_ramp(16)})
    assert out["low_res"].shape == (1, 4, 4, 8)
    assert out["image"].shape == out["label"].shape and torch.allclose(out["image"].affine, AFFINE)
    torch.testing.assert_close(out["image"][0, 0, 0, 1:-1], torch.arange(1.0, 15.0))  # trilinear on a ramp: exact inside


def test_composed_degradation_reproduces_from_a_seed():
    def draw():
        return restoration_degradation("denoise", "rician", 0.05).set_random_state(7)({"label": constant()})["image"]

    assert torch.equal(draw(), draw())


@pytest.mark.parametrize(
    "build,message",
    [
        (lambda: SliceDownsampleCopyd("label", "low_res", factor=1), "factor must be an integer >= 2"),
        (lambda: SliceDownsampleCopyd("label", "low_res", factor=2.5), "factor must be an integer >= 2"),
        (lambda: SliceDownsampleCopyd("label", "low_res", factor=True), "factor must be an integer >= 2"),
        (lambda: SliceDownsampleCopyd(["a", "b"], ["c", "d", "e"]), "one output key per key"),
        (lambda: RandNoiseCopyd("label", "image", noise="poisson"), "noise must be one of"),
        (lambda: RandNoiseCopyd("label", "image", sigma=0.0), "sigma must be > 0"),
        (lambda: restoration_degradation("deblur"), "task must be one of"),
    ],
)
def test_bad_arguments(build, message):
    with pytest.raises(ValueError, match=message):
        build()


@pytest.mark.parametrize("transform", [RandNoiseCopyd("clean", "image"), SliceDownsampleCopyd("clean", "low_res")])
def test_nan_and_missing_keys_name_the_key(transform):
    image = constant()
    image[0, 3, 3, 3] = float("nan")
    with pytest.raises(ValueError, match="key 'clean' holds NaN"):
        transform({"clean": image})
    with pytest.raises(KeyError, match="clean"):
        transform({"label": constant()})


def test_slice_axis_must_exist():
    with pytest.raises(ValueError, match="axis 3 is not a spatial axis of the image under key 'label'"):
        SliceDownsampleCopyd("label", "low_res", axis=3)({"label": constant()})
