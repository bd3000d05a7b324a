import pytest
import torch
from monai.networks.layers import Conv

from monai_fewshot.networks.blocks import CappedConv


@pytest.mark.parametrize(
    "spatial_dims,kernel,stride,groups,spatial",
    [
        (2, 9, 1, 6, (3, 3)),  # cropped to 5x5
        (2, 9, 1, 1, (1, 12)),  # cropped on one axis only
        (3, 9, 1, 6, (3, 2, 5)),
        (3, 5, 2, 1, (2, 2, 2)),  # strided shortcut form
        (3, 5, 2, 6, (7, 3, 1)),
        (2, 3, 1, 6, (16, 16)),  # no crop
    ],
)
def test_same_output_as_the_full_kernel(spatial_dims, kernel, stride, groups, spatial):
    torch.manual_seed(0)
    capped = CappedConv(spatial_dims, 6, 6, kernel, stride=stride, groups=groups)
    full = Conv[Conv.CONV, spatial_dims](6, 6, kernel, stride=stride, padding=kernel // 2, groups=groups)
    full.load_state_dict(capped.conv.state_dict())
    x = torch.randn(2, 6, *spatial)
    torch.testing.assert_close(capped(x), full(x))


def test_even_kernel_rejected():
    with pytest.raises(ValueError, match="odd"):
        CappedConv(2, 4, 4, 4)
