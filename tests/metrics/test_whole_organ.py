import numpy as np
import pytest

from monai_fewshot.metrics import copy_over_extent, middle_slice, paint_slices, volume_dice


def test_whole_organ_scoring_helpers():
    truth = np.zeros((6, 6, 9), dtype=bool)
    truth[1:4, 1:4, 2:7] = True
    truth[1, 1, 2] = False
    assert middle_slice(truth) == 4
    assert middle_slice(truth[..., [0, 1, 2, 3, 5]] & np.array([1, 1, 1, 0, 1], bool)) == 2  # nearest holding slice
    annotation = paint_slices(truth, [4], value=3)
    assert annotation.dtype == np.uint8 and set(np.unique(annotation)) == {0, 3} and (annotation > 0).sum() == 9
    copy = copy_over_extent(truth, 4)
    assert copy[..., 2:7].all(axis=2).sum() == 9 and not copy[..., [0, 1, 7, 8]].any()
    assert volume_dice(copy, truth) == pytest.approx(2 * 44 / (45 + 44))
    assert volume_dice(np.zeros_like(truth), np.zeros_like(truth)) == 1.0
    with pytest.raises(ValueError, match="mask is empty"):
        middle_slice(np.zeros_like(truth))
