import pytest
import torch

from monai_fewshot.networks.blocks import AttnConv


@pytest.mark.parametrize("spatial_dims,spatial", [(2, (16, 20)), (3, (8, 6, 10))])
def test_shape_and_gradients(spatial_dims, spatial):
    block = AttnConv(spatial_dims, in_channels=12, num_heads=3, head_dim=8, kernel_size=5)
    x = torch.randn(2, 12, *spatial, requires_grad=True)
    out = block(x)
    assert out.shape == (2, 24, *spatial)
    out.square().sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in block.parameters())


@pytest.mark.parametrize("spatial_dims,shift", [(2, (3, -5)), (3, (2, -1, 3))])
def test_translation_equivariance(spatial_dims, shift):
    """Shifting the input shifts the output, away from the border (depthwise and 1x1 ops only)."""
    torch.manual_seed(0)
    kernel = 5
    block = AttnConv(spatial_dims, in_channels=8, num_heads=2, head_dim=4, kernel_size=kernel).eval()
    size = 24 if spatial_dims == 2 else 14
    x = torch.randn(1, 8, *([size] * spatial_dims))
    dims = tuple(range(2, 2 + spatial_dims))
    with torch.no_grad():
        shifted_out = block(torch.roll(x, shift, dims))
        out_shifted = torch.roll(block(x), shift, dims)
    margin = max(abs(s) for s in shift) + kernel // 2
    interior = (slice(None), slice(None), *([slice(margin, size - margin)] * spatial_dims))
    torch.testing.assert_close(shifted_out[interior], out_shifted[interior])
    # and the border really differs, so the test is not vacuous
    assert not torch.allclose(shifted_out, out_shifted)


def test_context_weights_are_bounded():
    """The tanh weights lie in (-1, 1), so |out| <= |v| element-wise."""
    block = AttnConv(2, 4, num_heads=1, head_dim=4, kernel_size=3).eval()
    x = 100 * torch.randn(1, 4, 8, 8)
    with torch.no_grad():
        v = block.mixer(block.qkv(x)).chunk(3, dim=1)[2]
        assert (block(x).abs() <= v.abs() + 1e-5).all()
