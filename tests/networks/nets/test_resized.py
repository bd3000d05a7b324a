import pytest
import torch

from monai_fewshot.networks import CATNet, ResizedFewShot, SupportMaskCopy


def test_catnet_output_comes_back_at_the_episode_size():
    net = ResizedFewShot(CATNet(2, backbone="resnet10", feature_size=16, num_heads=2, num_iterations=2), (64, 64)).eval()
    query, support = torch.randn(2, 1, 96, 80), torch.randn(2, 1, 1, 96, 80)
    mask = torch.zeros(2, 1, 1, 96, 80)
    mask[..., 30:60, 20:50] = 1
    with torch.no_grad():
        out = net(query, support, mask)
    assert out.logits.shape == (2, 1, 96, 80)
    assert out.iteration_logits.shape == (2, 2, 1, 96, 80)
    assert out.initial_logits.shape == (2, 1, 96, 80)


def test_masks_are_resized_and_kept_binary():
    seen = {}

    class Probe(SupportMaskCopy):
        def forward(self, query, support, support_mask):
            seen["shapes"] = (query.shape, support.shape, support_mask.shape)
            seen["values"] = support_mask.unique()
            return super().forward(query, support, support_mask)

    net = ResizedFewShot(Probe(), (32, 32))
    mask = torch.zeros(1, 1, 1, 128, 128)
    mask[..., 64:96, 64:96] = 1
    logits = net(torch.randn(1, 1, 128, 128), torch.randn(1, 1, 1, 128, 128), mask)
    assert seen["shapes"] == ((1, 1, 32, 32), (1, 1, 1, 32, 32), (1, 1, 1, 32, 32))
    assert seen["values"].tolist() == [0.0, 1.0]
    assert logits.shape == (1, 1, 128, 128)
    assert ((logits > 0) == (mask[:, 0] > 0)).float().mean() > 0.99
    tiny = torch.zeros(1, 1, 1, 128, 128)
    tiny[..., 10, 10] = 1  # a 1-pixel support keeps its cell instead of vanishing
    net(torch.randn(1, 1, 128, 128), torch.randn(1, 1, 1, 128, 128), tiny)
    assert seen["values"].tolist() == [0.0, 1.0]


def test_state_dict_shared_with_the_network():
    torch.manual_seed(0)
    inner = CATNet(2, backbone="resnet10", feature_size=16, num_heads=2, num_iterations=1)
    wrapped = ResizedFewShot(CATNet(2, backbone="resnet10", feature_size=16, num_heads=2, num_iterations=1), (64, 64))
    wrapped.load_state_dict(inner.state_dict())
    assert list(wrapped.state_dict()) == list(inner.state_dict())


def test_bad_size():
    with pytest.raises(ValueError, match="positive"):
        ResizedFewShot(SupportMaskCopy(), (0, 64))
    with pytest.raises(ValueError, match="has 3 dims"):
        ResizedFewShot(SupportMaskCopy(), (8, 8, 8))(torch.zeros(1, 1, 8, 8), torch.zeros(1, 1, 1, 8, 8), torch.ones(1, 1, 1, 8, 8))
