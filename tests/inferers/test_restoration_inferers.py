import nibabel as nib
import numpy as np
import pytest
import torch
from monai.data import MetaTensor
from monai.inferers import SlidingWindowInferer

from monai_fewshot.inferers import NetworkRestorer, intensity_range, restoration_baselines, restore_volume
from monai_fewshot.networks import GRL
from monai_fewshot.transforms import restoration_degradation

AFFINE = np.array([[-1.25, 0, 0, 80.0], [0, 1.25, 0, -60.0], [0, 0, 7.7, -50.0], [0, 0, 0, 1]])
TINY = {"spatial_dims": 3, "embed_dim": 8, "depths": (1,), "window_size": (4, 4, 2), "stripe_size": (8, 4, 2),
        "stripe_axes": (0, 1), "anchor_window_down_factor": (2, 2, 1)}


def smooth_volume(depth=16):
    """(1, 24, 24, depth) smooth in [0, 1], with its affine."""
    grid = torch.meshgrid(*(torch.linspace(0, 1, s) for s in (24, 24, depth)), indexing="ij")
    return MetaTensor((0.5 + 0.25 * torch.sin(3 * grid[0]) * torch.cos(2 * grid[1]) + 0.2 * grid[2])[None],
                      affine=torch.from_numpy(AFFINE))


def test_gaussian_filter_reduces_the_noise():
    data = restoration_degradation("denoise", sigma=0.1).set_random_state(0)({"label": smooth_volume()})
    methods = restoration_baselines("denoise")
    assert list(methods) == ["noisy input", "Gaussian filter"]
    error = {name: float((method(data) - data["label"]).abs().mean()) for name, method in methods.items()}
    assert error["Gaussian filter"] < 0.5 * error["noisy input"]


def test_interpolations_restore_the_clean_grid():
    data = restoration_degradation("sr", factor=2)({"label": smooth_volume()})
    methods = restoration_baselines("sr")
    assert list(methods) == ["input (nearest)", "trilinear", "cubic B-spline"]
    for name, method in methods.items():
        out = method(data)
        assert out.shape == data["label"].shape and torch.allclose(out.affine, data["label"].affine), name
        assert float((out - data["label"]).abs().mean()) < 0.02, name
    torch.testing.assert_close(methods["trilinear"](data), data["image"])  # what the network refines


def test_network_restorer_through_a_sliding_window():
    data = {"image": smooth_volume(10)}
    restorer = NetworkRestorer(torch.nn.Identity(), SlidingWindowInferer((8, 8, 4), overlap=0.25))
    torch.testing.assert_close(restorer(data), data["image"].as_tensor())


def test_intensity_range_of_a_noisy_volume_is_the_clean_one():
    clean = smooth_volume(16)
    noisy = clean + torch.from_numpy(np.random.default_rng(0).normal(0, 0.05, clean.shape).astype(np.float32))
    low, high = (float(v) for v in clean.aminmax())
    assert float(noisy.max()) - float(noisy.min()) > 1.3 * (high - low)  # the noise's extremes widen the plain range
    estimate = intensity_range(noisy.as_tensor(), "denoise")
    assert estimate == pytest.approx((low, high), abs=0.05 * (high - low))
    assert intensity_range(noisy.as_tensor(), "sr") == (float(noisy.min()), float(noisy.max()))  # no noise to discount


def save(path, array, affine=AFFINE):
    nib.save(nib.Nifti1Image(np.asarray(array, np.float32), affine), path)
    return path


@pytest.mark.parametrize("task,depth", [("denoise", 10), ("sr", 20)])
def test_restore_volume_keeps_the_grid_and_range(tmp_path, task, depth):
    torch.manual_seed(0)
    source = save(tmp_path / "in.nii.gz", 200 + 800 * smooth_volume(10)[0].numpy())
    out = restore_volume(GRL(**TINY), source, tmp_path / "out" / "restored.nii.gz",
                         SlidingWindowInferer((16, 16, 8)), task=task, factor=2)
    image = nib.load(out)
    assert image.shape == (24, 24, depth) and image.get_data_dtype() == np.float32
    expected = AFFINE.copy()
    if task == "sr":
        expected[2, 2], expected[2, 3] = 7.7 / 2, -50.0 - 7.7 / 4  # finer slices, the same field of view
    np.testing.assert_allclose(image.affine, expected, atol=1e-4)
    values = image.get_fdata()
    assert values.min() >= 200 - 1e-3 and values.max() <= 1000 + 1e-3  # the input's intensity range
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["restored.nii.gz"]


def test_bad_inputs_write_nothing(tmp_path):
    net, inferer, out = GRL(**TINY), SlidingWindowInferer((16, 16, 8)), tmp_path / "out" / "restored.nii.gz"
    with pytest.raises(FileNotFoundError, match="absent.nii.gz does not exist"):
        restore_volume(net, tmp_path / "absent.nii.gz", out, inferer)
    flat = save(tmp_path / "flat.nii.gz", np.zeros((24, 24)))
    with pytest.raises(ValueError, match="flat.nii.gz has shape \\(24, 24\\): the restoration network takes a 3D volume"):
        restore_volume(net, flat, out, inferer)
    holes = np.ones((24, 24, 8))
    holes[3, 3, 3] = np.nan
    with pytest.raises(ValueError, match="holes.nii.gz holds NaN"):
        restore_volume(net, save(tmp_path / "holes.nii.gz", holes), out, inferer)
    with pytest.raises(ValueError, match="factor must be an integer >= 2"):
        restore_volume(net, flat, out, inferer, task="sr", factor=1)
    assert not (tmp_path / "out").exists()


def test_restore_volume_under_bf16_autocast_runs_the_network_in_bfloat16(tmp_path):
    """amp=True: the network's layers compute in bfloat16 (what makes it faster where that is native), the written
    volume is float32 and within bfloat16's rounding of the float32 result."""
    from monai_fewshot.utils import native_bf16

    torch.manual_seed(0)
    network = GRL(**TINY)
    dtypes = []
    linear = next(m for m in network.modules() if isinstance(m, torch.nn.Linear))
    linear.register_forward_hook(lambda module, args, output: dtypes.append(output.dtype))
    source = save(tmp_path / "in.nii.gz", 200 + 800 * smooth_volume(10)[0].numpy())
    restored = {}
    for amp in (False, True):
        dtypes.clear()
        out = restore_volume(network, source, tmp_path / f"amp{amp}.nii.gz", SlidingWindowInferer((16, 16, 8)), amp=amp)
        assert set(dtypes) == {torch.bfloat16 if amp else torch.float32}
        image = nib.load(out)
        assert image.get_data_dtype() == np.float32
        restored[amp] = image.get_fdata()
    assert np.abs(restored[True] - restored[False]).max() < 0.02 * 800  # 2 % of the range
    assert isinstance(native_bf16("cpu"), bool) and native_bf16("meta") is False
