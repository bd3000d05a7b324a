import pytest
import torch
from monai.data import MetaTensor

from monai_fewshot.engines import evaluate_restoration


def volumes():
    torch.manual_seed(0)
    return [{"id": str(i), "label": MetaTensor(torch.rand(1, 16, 16, 8) * 0.8)} for i in (3, 12)]


def test_scores_and_tables(tmp_path):
    methods = {"offset 0.001": lambda d: d["label"] + 0.001, "offset 0.1": lambda d: d["label"] + 0.1,
               "far off": lambda d: d["label"] + 5.0}  # clipped to 1 before scoring
    summary = evaluate_restoration(volumes(), methods, tmp_path, name="scores", title="a title")
    assert summary["offset 0.1"]["psnr"] == pytest.approx(20.0, abs=1e-3)  # MSE 0.01 at a data range of 1
    assert summary["offset 0.001"]["ssim"] == pytest.approx(1.0, abs=1e-4) and summary["offset 0.001"]["psnr"] == pytest.approx(60.0, abs=1e-3)
    assert summary["far off"]["ssim"] < summary["offset 0.1"]["ssim"] < 1.0
    rows = (tmp_path / "scores.csv").read_text().splitlines()
    assert rows[0] == "method,volume,psnr,ssim" and len(rows) == 1 + 3 * 2
    assert rows[4].startswith("offset 0.001,12,60.000")
    table = (tmp_path / "scores.md").read_text()
    assert table.startswith("a title\n") and "| offset 0.1 | 20.00 ± 0.00 |" in table and "2 volume(s): 3, 12" in table


def test_a_wrong_grid_is_an_error_and_writes_nothing(tmp_path):
    methods = {"cropped": lambda d: d["label"][..., :4]}
    with pytest.raises(ValueError, match="method 'cropped' gave shape \\(1, 16, 16, 4\\) for volume 3"):
        evaluate_restoration(volumes(), methods, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    with pytest.raises(ValueError, match="methods is empty"):
        evaluate_restoration(volumes(), {}, tmp_path / "out")
