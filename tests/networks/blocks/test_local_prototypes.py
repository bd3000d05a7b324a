import pytest
import torch

from monai_fewshot.networks.blocks import AdaptiveLocalPrototypes


def _two_part_support(size=16):
    """Support features: foreground left half holds vector a, right half vector b; background holds c."""
    a, b, c = torch.eye(3)
    features = c.view(1, 1, 3, 1, 1).repeat(1, 1, 1, size, size)
    mask = torch.zeros(1, 1, 1, size, size)
    mask[..., 4:12, 0:8], mask[..., 4:12, 8:16] = 1, 1
    features[0, 0, :, 4:12, 0:8] = a.view(3, 1, 1)
    features[0, 0, :, 4:12, 8:16] = b.view(3, 1, 1)
    return features, mask, (a, b, c)


def test_local_prototype_matches_a_part_the_global_one_blurs():
    features, mask, (a, b, _) = _two_part_support()
    block = AdaptiveLocalPrototypes(spatial_dims=2, grid_size=4)  # 4x4 windows on a 16x16 map
    query = a.view(1, 3, 1, 1).repeat(1, 1, 2, 2)
    score = block(query, features, mask)
    global_only = AdaptiveLocalPrototypes(spatial_dims=2, grid_size=1)(query, features, mask)
    # cos(a, (a + b) / 2) = 0.707: the global prototype alone scores 20 * 0.707; a local one scores near 20
    torch.testing.assert_close(global_only, torch.full_like(global_only, 20 * 2**-0.5), rtol=1e-4, atol=1e-4)
    assert (score > 19.0).all() and (score <= 20.0 + 1e-4).all()


def test_windows_below_the_threshold_give_no_local_prototype():
    features, mask, _ = _two_part_support()
    block = AdaptiveLocalPrototypes(spatial_dims=2, grid_size=4, threshold=0.95)
    prototypes, valid = block.prototypes(features, mask)
    assert prototypes.shape == (1, 16 + 1, 3)
    # rows 4:12 fill the windows of rows 4:8 and 8:12 completely: 2 x 4 windows, plus the global prototype
    assert int(valid.sum()) == 8 + 1 and bool(valid[0, -1])
    thin = torch.zeros_like(mask)
    thin[..., 5, :] = 1  # one row never fills a 4x4 window: only the global prototype remains
    _, valid = block.prototypes(features, thin)
    assert valid[0, :-1].sum() == 0 and bool(valid[0, -1])


def test_3d_and_shots():
    block = AdaptiveLocalPrototypes(spatial_dims=3, grid_size=2)
    support = torch.randn(2, 3, 8, 8, 8, 8)
    mask = (torch.rand(2, 3, 1, 8, 8, 8) > 0.3).float()
    score = block(torch.randn(2, 8, 4, 6, 5), support, mask)
    assert score.shape == (2, 1, 4, 6, 5) and torch.isfinite(score).all()


@pytest.mark.parametrize("kwargs", [{"grid_size": 0}, {"threshold": 0.0}, {"threshold": 1.5}])
def test_bad_arguments(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        AdaptiveLocalPrototypes(spatial_dims=2, **kwargs)
