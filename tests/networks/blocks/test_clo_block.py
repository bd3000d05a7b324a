import pytest
import torch

from monai_fewshot.networks.blocks import CloAttention, CloBlock, ConvFFN, PooledGlobalAttention


@pytest.mark.parametrize(
    "spatial_dims,stride,spatial,expected",
    [(2, 1, (16, 16), (16, 16)), (2, 2, (16, 8), (8, 4)), (3, 1, (8, 8, 8), (8, 8, 8)), (3, 2, (8, 4, 8), (4, 2, 4))],
)
def test_block_shapes_and_gradients(spatial_dims, stride, spatial, expected):
    out_channels = 32 if stride == 2 else 16
    block = CloBlock(spatial_dims, 16, out_channels, num_heads=4, group_split=(3, 1), kernel_size=3, pool_size=4,
                     stride=stride, drop_path=0.1)
    x = torch.randn(2, 16, *spatial, requires_grad=True)
    out = block(x)
    assert out.shape == (2, out_channels, *expected)
    out.sum().backward()
    assert all(p.grad is not None for p in block.parameters())
    torch.testing.assert_close(block.eval()(x), block.channel_mixing(block.token_mixing(x)))


@pytest.mark.parametrize("group_split", [(4, 0), (0, 4), (1, 3)])
def test_group_split_selects_branches(group_split):
    attention = CloAttention(2, 16, num_heads=4, group_split=group_split, kernel_size=3, pool_size=2)
    assert len(attention.branches) == sum(1 for g in group_split if g)
    assert attention(torch.randn(1, 16, 8, 8)).shape == (1, 16, 8, 8)


def test_global_attention_pools_keys():
    """With one pooled token per map, every location receives the same output."""
    attention = PooledGlobalAttention(2, 8, num_heads=2, head_dim=4, pool_size=8).eval()
    with torch.no_grad():
        out = attention(torch.randn(1, 8, 8, 8))
    assert out.shape == (1, 8, 8, 8)
    torch.testing.assert_close(out, out[..., :1, :1].expand_as(out))


def test_convffn_downsamples():
    ffn = ConvFFN(3, 8, 32, 16, kernel_size=5, stride=2)
    assert ffn(torch.randn(1, 8, 6, 6, 5)).shape == (1, 16, 3, 3, 3)


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"group_split": (2, 1)}, "group_split"),
        ({"num_heads": 3, "group_split": (2, 1)}, "divisible"),
        ({"stride": 3}, "stride"),
        ({"out_channels": 32}, "keeps its width"),
    ],
)
def test_bad_arguments(kwargs, message):
    args = {"spatial_dims": 2, "in_channels": 16, "out_channels": 16, "num_heads": 4, "group_split": (3, 1),
            "kernel_size": 3, "pool_size": 2, **kwargs}
    with pytest.raises(ValueError, match=message):
        CloBlock(**args)
