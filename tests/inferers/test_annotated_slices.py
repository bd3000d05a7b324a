import numpy as np
import pytest
import torch

from monai_fewshot.inferers import choose_label_value, segment_from_annotated_slices


class CopySupportMask(torch.nn.Module):
    """Predicts the support's mask: shows which annotated slice each query slice was given."""

    def __init__(self):
        super().__init__()
        self.calls = []

    def forward(self, query, support, mask):
        assert query.ndim == 4 and support.shape[:3] == (query.shape[0], 1, 1) and mask.shape == support.shape
        self.calls.append(tuple(query.shape))
        return (mask[:, 0] * 2 - 1) * 10


def volume_and_annotation(shape=(16, 16, 8)):
    image = np.random.default_rng(0).normal(size=shape).astype(np.float32)
    annotation = np.zeros(shape, dtype=np.int16)
    annotation[2:6, 2:6, 1] = 1  # slice 1: a square
    annotation[8:14, 8:14, 6] = 1  # slice 6: another square
    return image, annotation


def test_nearest_annotated_slice_supports_each_slice():
    image, annotation = volume_and_annotation()
    net = CopySupportMask()
    result = segment_from_annotated_slices(image, annotation, net, slice_size=None, batch_size=3)
    assert result.mask.shape == image.shape and result.mask.dtype == np.uint8
    assert result.label_value == 1 and result.support_slices == [1, 6] and result.predicted_slices == list(range(8))
    for z in range(8):
        source = 1 if abs(z - 1) <= abs(z - 6) else 6
        np.testing.assert_array_equal(result.mask[..., z], annotation[..., source])
    assert max(shape[0] for shape in net.calls) == 3


def test_extent_limits_the_predicted_slices_and_resizing_round_trips():
    image, annotation = volume_and_annotation()
    result = segment_from_annotated_slices(image, annotation, CopySupportMask(), extent=0, slice_size=(32, 32))
    assert result.predicted_slices == list(range(1, 7))
    assert result.mask[..., 0].sum() == 0 and result.mask[..., 7].sum() == 0
    np.testing.assert_array_equal(result.mask[..., 3], annotation[..., 1])


def test_label_value_choice():
    annotation = np.zeros((4, 4, 2), dtype=np.int16)
    annotation[0, 0, 0], annotation[1, 1, 1] = 2, 3
    assert choose_label_value(annotation) == 3
    assert choose_label_value(annotation, 2) == 2
    with pytest.raises(ValueError, match="label value 1 is not painted"):
        choose_label_value(annotation, 1)


def test_support_from_another_volume():
    image, annotation = volume_and_annotation()
    other = np.zeros((16, 16, 4), dtype=np.int16)
    other[0:4, 0:4, 3] = 5
    result = segment_from_annotated_slices(
        image, None, CopySupportMask(), support_image=image[..., :4], support_annotation=other, slice_size=None
    )
    assert result.label_value == 5 and result.support_slices == [3] and result.mask.sum() == 16 * 8


@pytest.mark.parametrize(
    "annotation, message",
    [
        (None, "a label map"),
        (np.zeros((16, 16, 8)), "no painted voxels"),
        (np.ones((16, 16, 7)), "does not match the image shape"),
        (np.ones((2, 16, 16, 8)), "must be a 3D volume"),
    ],
)
def test_bad_annotations(annotation, message):
    image, _ = volume_and_annotation()
    with pytest.raises(ValueError, match=message):
        segment_from_annotated_slices(image, annotation, CopySupportMask(), slice_size=None)
