import pytest
import torch
from monai.losses import DiceCELoss
from monai.networks import eval_mode

from monai_fewshot.losses import CATNetLoss
from monai_fewshot.networks import ALPNet, alpnet_light, build_backbone, catnet_light


def _episode(spatial, shots=1, batch=1, seed=0):
    g = torch.Generator().manual_seed(seed)
    query = torch.randn(batch, 1, *spatial, generator=g)
    support = torch.randn(batch, shots, 1, *spatial, generator=g)
    mask = torch.zeros(batch, shots, 1, *spatial)
    mask[..., spatial[0] // 4 : spatial[0] // 2, spatial[1] // 4 : spatial[1] // 2] = 1
    return query, support, mask


@pytest.mark.parametrize("spatial_dims,spatial,shots", [(2, (64, 64), 1), (2, (64, 96), 3), (3, (32, 32, 32), 2)])
def test_shapes_and_gradients(spatial_dims, spatial, shots):
    net = ALPNet(spatial_dims, backbone="resnet10", feature_size=16)
    logits = net(*_episode(spatial, shots, batch=2))
    assert logits.shape == (2, 1, *spatial)
    logits.sum().backward()
    for name in ("backbone", "reduce"):
        grads = [p.grad for n, p in net.named_parameters() if n.startswith(name)]
        assert grads and all(g is not None for g in grads), name
        assert any(g.abs().sum() > 0 for g in grads), name


def test_foreground_where_the_query_is_the_support():
    """A query that is its support, with a mask on a region of distinct texture, scores that region higher."""
    torch.manual_seed(0)
    net = alpnet_light(2)
    image = torch.zeros(1, 1, 128, 128)
    image[..., 32:96, 32:96] = torch.linspace(0, 1, 64).view(1, 64)  # a ramp inside, flat outside
    mask = torch.zeros(1, 1, 1, 128, 128)
    mask[..., 32:96, 32:96] = 1
    with eval_mode(net):
        logits = net(image, image[:, None], mask)
    inside, outside = logits[..., 40:88, 40:88].mean(), logits[..., :16, :16].mean()
    assert inside > outside


def test_light_preset_is_catnet_light_without_attention():
    """Same backbone and feature width as catnet_light: the parameter gap is CAT-Net's MIFE heads and CMAT."""
    alp, cat = alpnet_light(2), catnet_light(2)
    backbone = sum(p.numel() for p in build_backbone("resnet18", 2, 1).parameters())
    assert sum(p.numel() for p in alp.parameters()) == backbone + (128 + 256 + 512) * 128
    assert sum(p.numel() for p in alp.backbone.parameters()) == sum(p.numel() for p in cat.mife.backbone.parameters())


def test_loss_on_plain_logits_is_dice_ce():
    logits, target = torch.randn(2, 1, 16, 16), (torch.rand(2, 1, 16, 16) > 0.5).float()
    torch.testing.assert_close(CATNetLoss()(logits, target), DiceCELoss(sigmoid=True)(logits, target))


def test_bad_inputs():
    net = ALPNet(2, backbone="resnet10", feature_size=16)
    query, support, mask = _episode((64, 64))
    with pytest.raises(ValueError, match="no foreground"):
        net(query, support, torch.zeros_like(mask))
    with pytest.raises(ValueError, match="spatial_dims=2"):
        net(query[..., None], support, mask)
    with pytest.raises(ValueError, match="NaN"):
        net(query * float("nan"), support, mask)
    with pytest.raises(ValueError, match="spatial_dims"):
        ALPNet(spatial_dims=4)
