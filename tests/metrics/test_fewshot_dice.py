import math

import pytest
import torch

from monai_fewshot.metrics import FewShotScoreTable, VolumeScore, volume_scores


def test_volume_dice_and_hd95():
    truth = torch.zeros(4, 10, 10)
    truth[1:3, 2:6, 2:6] = 1  # 32 voxels
    prediction = torch.zeros_like(truth)
    prediction[1:3, 2:6, 4:8] = 1  # 32 voxels, 16 shared
    dice, hd95 = volume_scores(prediction, truth, spacing=(7.7, 1.25, 1.25), with_hd95=True)
    assert dice == pytest.approx(2 * 16 / 64)
    assert hd95 == pytest.approx(2 * 1.25)
    assert math.isnan(volume_scores(prediction, truth)[1])
    assert volume_scores(torch.zeros(3, 3), torch.zeros(3, 3)) == (1.0, 0.0)
    assert volume_scores(torch.zeros(3, 3), torch.ones(3, 3))[0] == 0.0


def test_shape_mismatch():
    with pytest.raises(ValueError, match="differs from truth shape"):
        volume_scores(torch.zeros(3, 4), torch.zeros(4, 3))


def test_table_means_over_volumes_then_folds_then_classes():
    table = FewShotScoreTable()
    for fold, volume, liver, spleen in [(0, "a", 0.8, 0.6), (0, "b", 0.6, 0.4), (1, "c", 0.9, 0.7)]:
        table.add(VolumeScore(fold, "liver", volume, liver))
        table.add(VolumeScore(fold, "spleen", volume, spleen))
    assert table.per_fold()[0] == pytest.approx({"liver": 0.7, "spleen": 0.5})
    assert table.per_class() == pytest.approx({"liver": 0.8, "spleen": 0.6})
    assert table.mean() == pytest.approx(0.7)
    markdown = table.to_markdown()
    assert "| fold 0 | 70.00 | 50.00 | 60.00 |" in markdown
    assert "| mean over folds | 80.00 | 60.00 | 70.00 |" in markdown
    assert table.to_csv().splitlines()[1] == "0,liver,a,0.800000,nan"
