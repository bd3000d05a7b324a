from pathlib import Path

import pytest
import torch
from monai.networks import eval_mode

from monai_fewshot.networks import GRL, grl_base, grl_small, grl_tiny
from monai_fewshot.networks.blocks import relative_coordinates

# small geometry so that every case runs in well under a second on a shared CPU
SMALL_2D = {"spatial_dims": 2, "embed_dim": 16, "depths": (4,), "window_size": 4, "stripe_size": (8, 4),
            "anchor_window_down_factor": 2}
SMALL_3D = {"spatial_dims": 3, "embed_dim": 16, "depths": (4,), "window_size": 4, "stripe_size": (8, 4, 4),
            "anchor_window_down_factor": 2}

CASES = [
    (SMALL_2D, (1, 1, 16, 16), (1, 1, 16, 16)),
    (SMALL_2D, (2, 1, 13, 21), (2, 1, 13, 21)),  # odd sizes
    (SMALL_2D, (1, 1, 3, 5), (1, 1, 3, 5)),  # smaller than a window
    ({**SMALL_2D, "in_channels": 3, "out_channels": 2}, (1, 3, 9, 12), (1, 2, 9, 12)),
    ({**SMALL_2D, "task": "sr", "upscale": 2}, (1, 1, 7, 10), (1, 1, 14, 20)),
    ({**SMALL_2D, "num_heads_window": (1,), "num_heads_stripe": 3, "use_cab": True, "embed_dim": 36}, (1, 1, 8, 8),
     (1, 1, 8, 8)),
    (SMALL_3D, (1, 1, 8, 8, 8), (1, 1, 8, 8, 8)),
    (SMALL_3D, (2, 1, 5, 7, 9), (2, 1, 5, 7, 9)),  # odd sizes, smaller than a stripe
    ({**SMALL_3D, "stripe_size": (1, 4, 8), "stripe_axes": (1, 2), "window_size": (2, 4, 4),
      "anchor_window_down_factor": (1, 2, 2)}, (1, 1, 3, 9, 6), (1, 1, 3, 9, 6)),  # anisotropic: axis 0 keeps 1
    ({**SMALL_3D, "task": "sr", "upscale": 2}, (1, 1, 4, 5, 6), (1, 1, 8, 10, 12)),
    ({**SMALL_2D, "patch_size": 2}, (1, 1, 13, 21), (1, 1, 13, 21)),  # tokens of 2 x 2 pixels, odd sizes
    ({**SMALL_3D, "patch_size": (2, 2, 1)}, (2, 1, 9, 7, 5), (2, 1, 9, 7, 5)),  # in-plane patches, thick slices
    ({**SMALL_3D, "patch_size": 2, "task": "sr", "upscale": 2}, (1, 1, 4, 5, 6), (1, 1, 8, 10, 12)),
]


@pytest.mark.parametrize("kwargs,input_shape,expected_shape", CASES)
def test_shape(kwargs, input_shape, expected_shape):
    net = GRL(**kwargs)
    with eval_mode(net):
        out = net(torch.randn(input_shape))
    assert out.shape == expected_shape
    assert torch.isfinite(out).all()


def test_denoise_output_is_input_plus_residual():
    net = GRL(**SMALL_2D)
    with torch.no_grad():
        net.head.weight.zero_()
        net.head.bias.zero_()
    x = torch.randn(1, 1, 10, 11)
    with eval_mode(net):
        torch.testing.assert_close(net(x), x)


@pytest.mark.parametrize("kwargs,shape", [(SMALL_2D, (2, 1, 12, 10)), ({**SMALL_3D, "use_cab": True, "embed_dim": 36},
                                                                       (1, 1, 6, 8, 7)),
                                          ({**SMALL_3D, "patch_size": (2, 2, 1)}, (1, 1, 12, 10, 4))])
def test_gradients_reach_every_parameter(kwargs, shape):
    torch.manual_seed(0)
    net = GRL(**kwargs)
    net(torch.randn(shape)).square().mean().backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


def test_checkpointing_gives_the_same_gradients():
    torch.manual_seed(0)
    net = GRL(**SMALL_2D, drop_path_rate=0.0)
    x = torch.randn(1, 1, 8, 12)
    net(x).square().mean().backward()
    expected = [p.grad.clone() for p in net.parameters()]
    net.zero_grad()
    for stage in net.stages:
        stage.use_checkpoint = True
    net(x).square().mean().backward()
    for g, p in zip(expected, net.parameters()):
        torch.testing.assert_close(p.grad, g)


def test_stage_cycles_stripe_orientations_and_shifts():
    net = GRL(spatial_dims=3, embed_dim=16, depths=(6,), window_size=4, stripe_size=(8, 4, 4),
              anchor_window_down_factor=2)
    layers = net.stages[0].layers
    stripes = [layer.attention.stripe_attention for layer in layers]
    assert [s.stripe_size for s in stripes] == [(8, 4, 4), (4, 8, 4), (4, 4, 8)] * 2
    assert [any(s.shift_size) for s in stripes] == [False, False, True, True, False, False]
    assert [any(layer.attention.window_attention.shift_size) for layer in layers] == [True, False] * 3
    assert net.pad_multiple == (8, 8, 8)
    net2d = GRL(spatial_dims=2)  # the paper's denoising geometry: window 16, stripes 64 x 128 and 128 x 64
    assert [layer.attention.stripe_attention.stripe_size for layer in net2d.stages[0].layers] == [(64, 128), (128, 64)] * 2
    assert net2d.pad_multiple == (128, 128)


def test_patches_make_a_coarser_token_grid():
    """patch_size p: windows and stripes count tokens of p voxels, so inputs pad to p times their multiple, and the
    stages see p times fewer positions along each axis."""
    net = GRL(**{**SMALL_3D, "patch_size": (2, 2, 1)})
    assert net.pad_multiple == (16, 16, 8)
    grids = []
    net.stages[0].register_forward_hook(lambda module, args, out: grids.append(tuple(out.shape[1:-1])))
    with eval_mode(net):
        net(torch.randn(1, 1, 16, 16, 8))
    assert grids == [(8, 8, 8)]
    assert isinstance(GRL(**SMALL_3D).patch_embed, torch.nn.Identity)  # patch_size 1: the paper's layout
    with pytest.raises(ValueError, match="patch_size"):
        GRL(**{**SMALL_3D, "patch_size": (2, 0, 1)})


def test_3d_presets_work_on_2x2x2_patches_with_8x_fewer_macs():
    """grl_tiny(3): 2^3-voxel tokens, 1.34 M parameters, pads to multiples of 32; a 32^3 forward is at least 6x
    fewer multiply-accumulates than the same GRL-T with a token per voxel (8x in its stages)."""
    from torch.utils.flop_counter import FlopCounterMode

    coarse = grl_tiny(spatial_dims=3, in_channels=1)
    voxel = grl_tiny(spatial_dims=3, in_channels=1, patch_size=1, stripe_size=(32, 16, 16))
    assert sum(p.numel() for p in coarse.parameters()) == 1_339_105 and coarse.pad_multiple == (32, 32, 32)
    assert sum(p.numel() for p in voxel.parameters()) == 1_273_441
    x = torch.randn(1, 1, 32, 32, 32)
    flops = []
    for net in (coarse, voxel):
        counter = FlopCounterMode(display=False)
        with eval_mode(net), counter:
            net(x)
        flops.append(counter.get_total_flops())
    assert flops[1] > 6 * flops[0]


def test_position_bias_geometry_is_cached_across_calls_and_blocks():
    net = GRL(**SMALL_2D)
    x = torch.randn(1, 1, 16, 16)
    with eval_mode(net):
        net(x)
        misses = relative_coordinates.cache_info().misses
        net(x)
    assert relative_coordinates.cache_info().misses == misses  # second call: only cache hits
    table = relative_coordinates((4, 4), (4, 4), torch.device("cpu"))[0]
    assert relative_coordinates((4, 4), (4, 4), torch.device("cpu"))[0] is table


@pytest.mark.parametrize("kwargs,shape", [(SMALL_2D, (1, 1, 16, 12)), (SMALL_3D, (1, 1, 8, 8, 8))])
def test_float32_and_cpu_autocast_bf16(kwargs, shape):
    torch.manual_seed(0)
    net = GRL(**kwargs)
    x = torch.randn(shape)
    dtypes = []
    net.stages[0].layers[0].attention.register_forward_hook(lambda module, args, out: dtypes.append(out.dtype))
    with eval_mode(net):
        reference = net(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = net(x)
    assert dtypes == [torch.float32, torch.bfloat16]  # the attention ran in bf16 under autocast
    assert reference.dtype == torch.float32 and torch.isfinite(low).all()
    assert (low.float() - reference).norm() / reference.norm() < 0.05


def test_bad_inputs_raise_value_error():
    net = GRL(**SMALL_3D)
    with pytest.raises(ValueError, match="spatial_dims=3"):
        net(torch.randn(1, 1, 16, 16))
    with pytest.raises(ValueError, match="input channels"):
        net(torch.randn(1, 2, 8, 8, 8))
    with pytest.raises(ValueError, match="spatial_dims"):
        GRL(spatial_dims=1)
    with pytest.raises(ValueError, match="task"):
        GRL(task="deblur")
    with pytest.raises(ValueError, match="upscale"):
        GRL(task="sr", upscale=1)
    with pytest.raises(ValueError, match="stripe_axes"):
        GRL(spatial_dims=3, stripe_axes=(0, 3))
    with pytest.raises(ValueError, match="anchor_window_down_factor"):
        GRL(spatial_dims=3, stripe_size=(2, 16, 32), stripe_axes=(1, 2))  # 2 slices cannot pool by 4


@pytest.mark.parametrize("preset,expected", [(grl_tiny, 0.88e6), (grl_small, 3.12e6), (grl_base, 19.8e6)])
def test_paper_parameter_counts(preset, expected):
    """2D RGB denoising builds match the paper's GRL-T/S/B sizes (the reference code gives 880,227,
    3,120,227 and 19,805,263 parameters for these settings)."""
    count = sum(p.numel() for p in preset(spatial_dims=2, in_channels=3).parameters())
    assert abs(count - expected) / expected < 0.02


@pytest.mark.slow  # about 20 s of CPU for the export trace
def test_torch_export_matches_eager_and_leaves_caches_clean():
    net = GRL(**{**SMALL_2D, "depths": (2,)}).eval()
    x = torch.randn(1, 1, 16, 16)
    exported = torch.export.export(net, (x,))
    with torch.no_grad():
        eager = net(x)  # after the trace: cached geometry must still be real tensors
        torch.testing.assert_close(exported.module()(x), eager)
    assert type(eager) is torch.Tensor


# The reference outputs were written once by the implementation before the token-gather rewrite (commit e24fff9:
# roll, window_partition, per-group index_select, autograd through the unfused attention): each case's network is
# built from seed 0, every parameter moved by 0.05 * N(0, 1) (seeded), and run on a stored input in eval mode and
# in train mode with a backward pass of sum(output * linspace(-1, 1)).
REFERENCE = Path(__file__).parent / "data" / "grl_reference.pt"
NO_DROP = {"drop_path_rate": 0.0}
REFERENCE_CASES = {
    "2d": {**SMALL_2D, **NO_DROP},
    "2d_cab_heads": {**SMALL_2D, **NO_DROP, "num_heads_window": 1, "num_heads_stripe": 3, "use_cab": True, "embed_dim": 36},
    "3d": {**SMALL_3D, **NO_DROP},
    "3d_two_stages": {**SMALL_3D, **NO_DROP, "depths": (4, 2)},
    "3d_anisotropic": {**SMALL_3D, **NO_DROP, "window_size": (4, 4, 2), "stripe_size": (8, 4, 2), "stripe_axes": (0, 1),
                       "anchor_window_down_factor": (2, 2, 1)},
    "3d_sr": {**SMALL_3D, **NO_DROP, "task": "sr", "upscale": 2},
}


@pytest.mark.parametrize("name", sorted(REFERENCE_CASES))
def test_forward_and_gradients_match_the_reference_implementation(name):
    reference = torch.load(REFERENCE, weights_only=True)[name]
    torch.manual_seed(0)
    net = GRL(**REFERENCE_CASES[name])
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.05 * torch.randn_like(p))
    sums = {key: float(value.double().sum()) for key, value in net.state_dict().items()}
    assert sums == pytest.approx(reference["state_sums"], rel=1e-6)  # the same network as the reference's
    x = reference["input"]
    with eval_mode(net):
        torch.testing.assert_close(net(x), reference["eval"], rtol=0, atol=1e-4)
    x = x.clone().requires_grad_(True)
    y = net.train()(x)
    (y * torch.linspace(-1, 1, y.numel()).reshape(y.shape)).sum().backward()
    torch.testing.assert_close(y.detach(), reference["train"], rtol=0, atol=1e-4)
    torch.testing.assert_close(x.grad, reference["input_grad"], rtol=1e-3, atol=1e-4)
    norms = {n: float(p.grad.double().norm()) for n, p in net.named_parameters() if p.grad is not None}
    # abs: the output bias gradient is the sum of the weights, zero up to float cancellation
    assert norms == pytest.approx(reference["param_grad_norms"], rel=1e-3, abs=1e-3)
