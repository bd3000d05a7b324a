import pytest
import torch
from monai.networks import eval_mode

from monai_fewshot.networks import CloFormerUNet


@pytest.mark.parametrize(
    "kwargs,spatial",
    [
        ({"spatial_dims": 2, "in_channels": 1, "out_channels": 3}, (64, 96)),
        ({"spatial_dims": 3, "in_channels": 1, "out_channels": 2}, (32, 32, 32)),
        ({"spatial_dims": 3, "in_channels": 2, "out_channels": 4, "pad_input": True}, (20, 33, 32)),
        ({"spatial_dims": 2, "in_channels": 1, "out_channels": 2, "variant": "xs", "feature_size": 8}, (32, 32)),
    ],
)
def test_shapes(kwargs, spatial):
    net = CloFormerUNet(**kwargs)
    with eval_mode(net):
        out = net(torch.randn(1, kwargs["in_channels"], *spatial))
    assert out.shape == (1, kwargs["out_channels"], *spatial)


def test_gradients_reach_encoder_and_decoder():
    tiny = {"embed_dims": (8, 16, 16, 32), "num_heads": (2, 2, 2, 4), "depths": (1, 1, 1, 1),
            "group_splits": ((1, 1), (1, 1), (1, 1), (2, 2))}
    net = CloFormerUNet(2, 1, 2, feature_size=8, **tiny)
    net(torch.randn(1, 1, 64, 32)).sum().backward()
    for prefix in ("encoder.stem", "encoder.stages.3", "decoders.0", "decoders.3", "input_block", "out"):
        grads = [p.grad for n, p in net.named_parameters() if n.startswith(prefix)]
        assert grads and all(g is not None for g in grads), prefix


def test_bad_input():
    with pytest.raises(ValueError, match="divisible by the total stride"):
        CloFormerUNet(3, 1, 2)(torch.randn(1, 1, 40, 32, 32))
    with pytest.raises(ValueError, match="out_channels"):
        CloFormerUNet(3, 1, 0)
