import nibabel as nib
import numpy as np
import pytest
import torch
from monai.networks import eval_mode

from monai_fewshot.networks import CATNet, build_backbone, catnet_light, catnet_paper
from monai_fewshot.networks.utils import resize_to


def _episode(spatial, shots=1, batch=1, channels=1, seed=0):
    g = torch.Generator().manual_seed(seed)
    query = torch.randn(batch, channels, *spatial, generator=g)
    support = torch.randn(batch, shots, channels, *spatial, generator=g)
    mask = torch.zeros(batch, shots, 1, *spatial)
    mask[..., spatial[0] // 4 : spatial[0] // 2, spatial[1] // 4 : spatial[1] // 2] = 1
    return query, support, mask


CASES = [
    ({"spatial_dims": 2}, (64, 64), 1),
    ({"spatial_dims": 2}, (64, 96), 3),
    ({"spatial_dims": 2, "num_iterations": 1}, (48, 48), 1),
    ({"spatial_dims": 2, "in_channels": 3}, (64, 64), 2),
    ({"spatial_dims": 3}, (32, 32, 32), 1),
    ({"spatial_dims": 3, "num_iterations": 2}, (32, 32, 16), 3),
]


@pytest.mark.parametrize("kwargs,spatial,shots", CASES)
def test_shapes(kwargs, spatial, shots):
    net = CATNet(backbone="resnet10", feature_size=32, num_heads=4, **kwargs)
    channels = kwargs.get("in_channels", 1)
    iterations = kwargs.get("num_iterations", 4)
    with eval_mode(net):
        out = net(*_episode(spatial, shots, batch=2, channels=channels))
    assert out.logits.shape == (2, 1, *spatial)
    assert out.iteration_logits.shape == (2, iterations, 1, *spatial)
    assert out.initial_logits.shape == (2, 1, *spatial)
    torch.testing.assert_close(out.logits, out.iteration_logits[:, -1])


@pytest.mark.parametrize("iterations", [1, 3, 5])
def test_t_iterations_give_t_predictions(iterations):
    net = CATNet(2, backbone="resnet10", feature_size=16, num_heads=2, num_iterations=iterations)
    assert len(net.cmat) == iterations
    with eval_mode(net):
        out = net(*_episode((64, 64)))
    assert out.iteration_logits.shape[1] == iterations
    assert all(not torch.equal(out.iteration_logits[:, i], out.initial_logits) for i in range(iterations))


@pytest.mark.parametrize("spatial_dims,spatial", [(2, (64, 64)), (3, (32, 32, 32))])
def test_gradients_reach_backbone_cmat_and_heads(spatial_dims, spatial):
    net = CATNet(spatial_dims, backbone="resnet10", feature_size=16, num_heads=2, num_iterations=2)
    out = net(*_episode(spatial, shots=2, batch=2))
    loss = out.iteration_logits.sum() + out.initial_logits.sum()
    loss.backward()
    for prefix in ("mife.backbone", "mife.reduce", "mife.initial_classifier", "cmat.0.query_to_support",
                   "cmat.0.support_to_query", "cmat.1.segmentation.threshold"):
        grads = [p.grad for n, p in net.named_parameters() if n.startswith(prefix)]
        assert grads and all(g is not None and torch.isfinite(g).all() for g in grads), prefix
        assert any(g.abs().sum() > 0 for g in grads), prefix


def test_previous_prediction_feeds_the_next_step():
    """Each CMAT step receives the previous step's mask: tampering with it changes later steps only."""
    torch.manual_seed(0)
    net = CATNet(2, backbone="resnet10", feature_size=16, num_heads=2, num_iterations=2).eval()
    episode = _episode((64, 64))
    seen = []
    net.cmat[1].register_forward_pre_hook(lambda module, args: seen.append(args[3].clone()))
    with torch.no_grad():
        out = net(*episode)
    expected = torch.sigmoid(resize_to(out.iteration_logits[:, 0], seen[0].shape[2:], mode="area"))
    # the resized step-0 logits match what step 1 received up to the down-/up-sampling round trip
    assert seen[0].shape == (1, 1, 8, 8)
    assert torch.corrcoef(torch.stack([seen[0].flatten(), expected.flatten()]))[0, 1] > 0.95


def test_autocast_cpu_bfloat16():
    net = CATNet(2, backbone="resnet10", feature_size=16, num_heads=2, num_iterations=2).eval()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        out = net(*_episode((64, 64)))
    assert out.logits.shape == (1, 1, 64, 64) and torch.isfinite(out.logits.float()).all()


def test_torch_export_matches_eager():
    net = CATNet(2, backbone="resnet10", feature_size=16, num_heads=2, num_iterations=2).eval()
    episode = _episode((64, 64))
    exported = torch.export.export(net, episode)
    with torch.no_grad():
        torch.testing.assert_close(exported.module()(*episode).logits, net(*episode).logits)


def test_presets_and_parameter_counts():
    # MONAI's 2D ResNet-50 feature extractor equals torchvision's ResNet-50 trunk: 23,508,032 parameters
    # with 3 input channels (25,557,032 minus the 2,049,000 of the fc head); 1 channel drops 2*64*7*7.
    backbone = build_backbone("resnet50", 2, 1)
    assert sum(p.numel() for p in backbone.parameters()) == 23_508_032 - 2 * 64 * 7 * 7
    paper, light = catnet_paper(2), catnet_light(2)
    assert (paper.mife.reduce.conv.in_channels, paper.mife.reduce.conv.out_channels, len(paper.cmat)) == (1536, 256, 4)
    assert light.mife.reduce.conv.in_channels == 128 + 256 and len(light.cmat) == 4
    assert sum(p.numel() for p in light.parameters()) < 0.5 * sum(p.numel() for p in paper.parameters())


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"spatial_dims": 1}, "spatial_dims must be 2 or 3"),
        ({"num_iterations": 0}, "num_iterations"),
        ({"num_iterations": 6}, "num_iterations"),
        ({"feature_size": 30, "num_heads": 4}, "divisible"),
        ({"backbone": "vgg"}, "unknown backbone"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        CATNet(**kwargs)


def test_bad_inputs():
    net = CATNet(2, backbone="resnet10", feature_size=16, num_heads=2, num_iterations=1)
    query, support, mask = _episode((64, 64), shots=2)
    with pytest.raises(ValueError, match="episode 0, shot 1 has no foreground"):
        net(query, support, torch.cat([mask[:, :1], torch.zeros_like(mask[:, 1:])], 1))
    with pytest.raises(ValueError, match="does not match the query"):
        net(query, support[..., :32], mask[..., :32])
    with pytest.raises(ValueError, match="in_channels=1"):
        net(torch.randn(1, 3, 64, 64), support, mask)
    with pytest.raises(ValueError, match="2 spatial dims"):
        net(torch.randn(1, 1, 32, 32, 32), support, mask)
    with pytest.raises(ValueError, match="support must be"):
        net(query, support[:, 0], mask)
    with pytest.raises(ValueError, match="support_mask must be"):
        net(query, support, mask[:, :1])
    nan_query = query.clone()
    nan_query[0, 0, 3, 3] = float("nan")
    with pytest.raises(ValueError, match="query image contains NaN"):
        net(nan_query, support, mask)


def test_real_chaos_slice_pair(chaos_dir):
    """1-shot pass on two real CHAOS T2-SPIR volumes: liver in the support, another patient as the query."""
    def liver_slice(index):
        image = nib.load(chaos_dir / f"image_{index}.nii.gz").get_fdata().astype(np.float32)
        label = np.asarray(nib.load(chaos_dir / f"label_{index}.nii.gz").dataobj) == 1
        z = int(np.argmax(label.sum((0, 1))))
        image = (image[..., z] - image.mean()) / image.std()
        return torch.from_numpy(image)[None, None], torch.from_numpy(label[..., z].astype(np.float32))[None, None]

    query, _ = liver_slice(2)
    support, support_mask = liver_slice(1)
    net = catnet_light(2).eval()
    with torch.no_grad():
        out = net(query, support[:, None], support_mask[:, None])
    assert query.shape == (1, 1, 256, 256)
    assert out.logits.shape == query.shape and torch.isfinite(out.logits).all()


def test_eval_mode_is_deterministic():
    net = CATNet(2, backbone="resnet10", feature_size=16, num_heads=2, num_iterations=2, dropout_rate=0.5).eval()
    episode = _episode((64, 64))
    with torch.no_grad():
        torch.testing.assert_close(net(*episode).logits, net(*episode).logits, rtol=0, atol=0)
