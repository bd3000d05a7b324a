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


class _Strided(torch.nn.Module):
    """A backbone returning one 4-channel map per stride (average pooling), to see which levels MIFE reads."""

    def __init__(self, strides):
        super().__init__()
        self.feature_strides, self.feature_channels = tuple(strides), (4,) * len(strides)

    def forward(self, x):
        return [torch.nn.functional.avg_pool2d(x, s).repeat(1, 4, 1, 1) * (i + 1) for i, s in enumerate(self.feature_strides)]


def test_levels_are_chosen_by_stride_not_position():
    """A backbone ending at stride 16 is refused (by position CMAT would have moved to a 4x larger grid); one with a
    stride-64 level too still gets the stride 8, 16 and 32 levels."""
    with pytest.raises(ValueError, match=r"strides \(2, 4, 8, 16\); levels at strides \(8, 16, 32\) are needed"):
        MIFE(2, _Strided((2, 4, 8, 16)))
    mife = MIFE(2, _Strided((4, 8, 16, 32, 64)), feature_size=8)
    assert mife.levels == (1, 2, 3)
    out = mife(torch.rand(1, 1, 128, 128), torch.rand(1, 1, 1, 128, 128), torch.ones(1, 1, 1, 128, 128))
    assert out.query_features.shape[-2:] == (16, 16)  # the stride-8 grid


def test_alpnet_reads_the_same_strides():
    from monai_fewshot.networks import alpnet_light

    assert alpnet_light(2).levels == MIFE(2, build_backbone("resnet18", 2, 1)).levels == (2, 3, 4)
