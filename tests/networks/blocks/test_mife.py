import pytest
import torch

from monai_fewshot.networks import build_backbone
from monai_fewshot.networks.blocks import MIFE, prior_mask


@pytest.mark.parametrize(
    "spatial_dims,shots,size,feature_size",
    [(2, 1, (64, 64), (8, 8)), (2, 3, (64, 48), (8, 6)), (3, 1, (32, 32, 32), (4, 4, 4)), (3, 2, (32, 32, 16), (4, 4, 2))],
)
def test_shapes(spatial_dims, shots, size, feature_size):
    mife = MIFE(spatial_dims, build_backbone("resnet10", spatial_dims, 1), feature_size=32)
    query = torch.randn(2, 1, *size)
    support = torch.randn(2, shots, 1, *size)
    mask = torch.zeros(2, shots, 1, *size)
    mask[..., : size[0] // 2, : size[1] // 2] = 1
    out = mife(query, support, mask)
    assert out.query_features.shape == (2, 32, *feature_size)
    assert out.support_features.shape == (2, shots, 32, *feature_size)
    assert out.support_mask.shape == (2, shots, 1, *feature_size)
    assert out.initial_logits.shape == (2, 1, *feature_size)
    # area pooling keeps the foreground fraction
    torch.testing.assert_close(out.support_mask.mean(), mask.mean())


def test_prior_mask_peaks_where_query_matches_support_foreground():
    support = torch.zeros(1, 1, 4, 4, 4)
    support[:, :, 0, :2] = 1.0  # foreground rows carry feature e0
    support[:, :, 1, 2:] = 1.0  # background rows carry e1
    mask = torch.zeros(1, 1, 1, 4, 4)
    mask[..., :2, :] = 1
    query = torch.zeros(1, 4, 4, 4)
    query[:, 0, :, :2] = 1.0  # left half looks like support foreground
    query[:, 1, :, 2:] = 1.0  # right half looks like support background
    prior = prior_mask(query, support, mask)
    assert prior.shape == (1, 1, 4, 4)
    assert torch.allclose(prior[..., :2], torch.ones(1)) and torch.allclose(prior[..., 2:], torch.zeros(1), atol=1e-6)


def test_prototype_reaches_query_branch():
    torch.manual_seed(0)
    mife = MIFE(2, build_backbone("resnet10", 2, 1), feature_size=16).eval()
    query, support = torch.randn(1, 1, 64, 64), torch.randn(1, 1, 1, 64, 64)
    mask = torch.zeros(1, 1, 1, 64, 64)
    mask[..., 8:24, 8:24] = 1
    other = torch.zeros_like(mask)
    other[..., 40:60, 40:60] = 1
    with torch.no_grad():
        a, b = mife(query, support, mask), mife(query, support, other)
    assert not torch.allclose(a.query_features, b.query_features)


def test_needs_three_levels():
    backbone = build_backbone("resnet10", 2, 1)
    backbone.feature_channels = (64, 64)
    with pytest.raises(ValueError, match="at least 3 feature levels"):
        MIFE(2, backbone)
