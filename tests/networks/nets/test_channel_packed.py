import pytest
import torch

from monai_fewshot.networks import CATNet, ChannelPackedFewShot


@pytest.mark.parametrize("spatial_dims,spatial,shots,channels", [(2, (64, 64), 1, 1), (2, (64, 64), 2, 2), (3, (32, 32, 32), 1, 1)])
def test_packed_equals_direct_call(spatial_dims, spatial, shots, channels):
    torch.manual_seed(0)
    net = CATNet(spatial_dims, channels, backbone="resnet10", feature_size=16, num_heads=2, num_iterations=1).eval()
    packed = ChannelPackedFewShot(net, in_channels=channels, shots=shots).eval()
    query = torch.randn(2, channels, *spatial)
    support = torch.randn(2, shots, channels, *spatial)
    mask = torch.zeros(2, shots, 1, *spatial)
    mask[..., 8:24, 8:24] = 1
    x = ChannelPackedFewShot.pack(query, support, mask)
    assert x.shape == (2, packed.packed_channels, *spatial) and packed.packed_channels == channels + shots * (channels + 1)
    with torch.no_grad():
        torch.testing.assert_close(packed(x), net(query, support, mask).logits)


def test_random_input_like_verify_net_in_out():
    net = CATNet(2, backbone="resnet10", feature_size=16, num_heads=2, num_iterations=1).eval()
    with torch.no_grad():
        out = ChannelPackedFewShot(net)(torch.rand(1, 3, 64, 64))
    assert out.shape == (1, 1, 64, 64)


def test_wrong_channel_count():
    packed = ChannelPackedFewShot(CATNet(2, backbone="resnet10", feature_size=16, num_heads=2, num_iterations=1))
    with pytest.raises(ValueError, match=r"expected \(B, 3, \*spatial\)"):
        packed(torch.rand(1, 2, 64, 64))


def test_state_dict_is_the_wrapped_networks():
    torch.manual_seed(0)
    net = CATNet(2, backbone="resnet10", feature_size=16, num_heads=2, num_iterations=1)
    packed = ChannelPackedFewShot(CATNet(2, backbone="resnet10", feature_size=16, num_heads=2, num_iterations=1))
    packed.load_state_dict(net.state_dict())
    assert list(packed.state_dict()) == list(net.state_dict())
    for key, value in net.state_dict().items():
        torch.testing.assert_close(packed.state_dict()[key], value)
    other = CATNet(2, backbone="resnet10", feature_size=16, num_heads=2, num_iterations=1)
    other.load_state_dict(packed.state_dict())
    with pytest.raises(RuntimeError, match="size mismatch|Missing key"):
        packed.load_state_dict(CATNet(2, backbone="resnet18", feature_size=16, num_heads=2, num_iterations=1).state_dict())


def test_final_logits_is_the_one_reader_of_both_output_kinds():
    from monai_fewshot.networks import CATNetOutput, catnet_light
    from monai_fewshot.networks.utils import final_logits

    logits = torch.randn(1, 1, 8, 8)
    assert final_logits(logits) is logits
    output = catnet_light(2)(torch.rand(1, 1, 64, 64), torch.rand(1, 1, 1, 64, 64), torch.ones(1, 1, 1, 64, 64))
    assert isinstance(output, CATNetOutput) and final_logits(output) is output.logits
