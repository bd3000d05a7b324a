import pytest
import torch
from monai.networks import eval_mode

from monai_fewshot.networks import BACKBONES, CATNet, CloFormer, build_backbone
from monai_fewshot.networks.nets import cloformer_s, cloformer_xs, cloformer_xxs
from monai_fewshot.networks.blocks import MIFE


# a small configuration for the slow paths (3D backward, export) on a 2-core CPU
TINY = {"embed_dims": (8, 16, 16, 32), "num_heads": (2, 2, 2, 4), "group_splits": ((1, 1), (1, 1), (1, 1), (2, 2)),
        "depths": (1, 1, 2, 1)}


def _count(net):
    return sum(p.numel() for p in net.parameters())


@pytest.mark.parametrize(
    "preset,paper_millions,exact",
    # exact: the reference code (qhfan/CloFormer) built with timm, counted once; this build loads its
    # state dict one-to-one and gives the same logits
    [(cloformer_xxs, 4.2, 4_166_728), (cloformer_xs, 7.2, 7_172_216), (cloformer_s, 12.3, 12_345_576)],
)
def test_2d_imagenet_parameter_counts(preset, paper_millions, exact):
    net = preset(spatial_dims=2, in_channels=3, num_classes=1000, norm="batch")
    assert _count(net) == exact
    assert abs(exact / 1e6 - paper_millions) / paper_millions < 0.03
    assert _count(preset(spatial_dims=2, in_channels=3, num_classes=1000)) == exact  # GroupNorm: same count


def test_2d_classifier_logits():
    net = cloformer_xxs(2, 3, num_classes=10)
    with eval_mode(net):
        assert net(torch.randn(2, 3, 64, 64)).shape == (2, 10)


@pytest.mark.parametrize(
    "spatial_dims,spatial",
    [(2, (64, 96)), (3, (64, 64, 64)), (3, (96, 96, 96)), (3, (32, 64, 96))],
)
def test_feature_pyramid_shapes(spatial_dims, spatial):
    net = CloFormer(spatial_dims, in_channels=1, variant="xxs")
    assert net.feature_strides == (4, 8, 16, 32) and net.feature_channels == (32, 64, 128, 256)
    with eval_mode(net):
        features = net(torch.randn(1, 1, *spatial))
    assert [f.shape for f in features] == [
        (1, c, *(s // stride for s in spatial)) for c, stride in zip(net.feature_channels, net.feature_strides)
    ]


def test_3d_classifier_and_gradients():
    net = CloFormer(3, 1, num_classes=3, **TINY)
    logits = net(torch.randn(2, 1, 32, 32, 64))
    assert logits.shape == (2, 3)
    logits.sum().backward()
    missing = [n for n, p in net.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing


def test_batch_size_one_volume_trains():
    """GroupNorm everywhere: a single 3D volume goes through training mode (BatchNorm would be degenerate)."""
    net = CloFormer(3, 1, **TINY)
    features = net(torch.randn(1, 1, 32, 32, 32))
    assert features[-1].shape == (1, 32, 1, 1, 1)
    sum(f.mean() for f in features).backward()
    assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in net.modules())


def test_bad_spatial_size_raises_or_pads():
    with pytest.raises(ValueError, match="divisible by the total stride 32"):
        CloFormer(3, 1)(torch.randn(1, 1, 40, 32, 32))
    net = CloFormer(3, 1, pad_input=True, **TINY)
    with eval_mode(net):
        features = net(torch.randn(1, 1, 40, 33, 16))
    assert [tuple(f.shape[2:]) for f in features] == [(10, 9, 4), (5, 5, 2), (3, 3, 1), (2, 2, 1)]


@pytest.mark.parametrize(
    "kwargs,shape,message",
    [
        ({"spatial_dims": 1}, None, "spatial_dims must be 2 or 3"),
        ({"variant": "m"}, None, "variant must be one of"),
        ({"depths": (2, 2, 6)}, None, "depths must give the 4 stages"),
        ({"num_classes": 0}, None, "num_classes"),
        ({}, (1, 3, 32, 32), "input must be"),
        ({}, (1, 1, 32, 32, 32), "input must be"),
    ],
)
def test_bad_arguments(kwargs, shape, message):
    with pytest.raises(ValueError, match=message):
        net = CloFormer(**{"spatial_dims": 2, "in_channels": 1, **kwargs})
        net(torch.randn(*shape))


def test_torch_export_matches_eager():
    net = CloFormer(2, 1, **TINY).eval()
    x = torch.randn(1, 1, 64, 32)
    exported = torch.export.export(net, (x,))
    with torch.no_grad():
        for a, b in zip(exported.module()(x), net(x)):
            torch.testing.assert_close(a, b)


@pytest.mark.parametrize("name", ["cloformer_xxs", "cloformer_xs", "cloformer_s"])
def test_registered_backbones(name):
    assert name in BACKBONES
    backbone = build_backbone(name, spatial_dims=2, in_channels=1)
    assert isinstance(backbone, CloFormer) and backbone.pad_input
    assert len(backbone.feature_channels) == len(backbone.feature_strides) == 4


def test_mife_takes_cloformer_levels_at_strides_8_16_32():
    backbone = build_backbone("cloformer_xxs", spatial_dims=2, in_channels=1)
    mife = MIFE(2, backbone, feature_size=16)
    assert mife.reduce.conv.in_channels == 64 + 128
    query = torch.randn(1, 1, 64, 32)
    mask = torch.zeros(1, 1, 1, 64, 32)
    mask[..., 16:40, 8:24] = 1
    with eval_mode(mife):
        out = mife(query, torch.randn(1, 1, 1, 64, 32), mask)
    assert out.query_features.shape == (1, 16, 8, 4) and out.initial_logits.shape == (1, 1, 8, 4)


@pytest.mark.parametrize("spatial_dims,spatial", [(2, (32, 48)), (3, (32, 32, 32))])
def test_catnet_with_cloformer_forward_backward(spatial_dims, spatial):
    net = CATNet(spatial_dims, backbone="cloformer_xxs", feature_size=16, num_heads=2, num_iterations=2)
    query = torch.randn(1, 1, *spatial)
    support = torch.randn(1, 1, 1, *spatial)
    mask = torch.zeros(1, 1, 1, *spatial)
    mask[..., 8:24, 8:24] = 1
    out = net(query, support, mask)
    assert out.logits.shape == (1, 1, *spatial)
    (out.iteration_logits.sum() + out.initial_logits.sum()).backward()
    grads = [p.grad for n, p in net.named_parameters() if n.startswith("mife.backbone.stages.2")]
    assert grads and all(g is not None and torch.isfinite(g).all() for g in grads)


@pytest.mark.parametrize("variant,rate", [("xxs", 0.0), ("xs", 0.06), ("s", 0.06)])
def test_stochastic_depth_follows_the_reference_configs(variant, rate):
    net = CloFormer(2, 1, variant=variant)
    assert net.stages[0][0].drop_path.drop_prob == 0.0
    assert net.stages[-1][-1].drop_path.drop_prob == pytest.approx(rate)
    assert CloFormer(2, 1, variant=variant, drop_path_rate=0.2).stages[-1][-1].drop_path.drop_prob == pytest.approx(0.2)
