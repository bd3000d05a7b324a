import numpy as np
import pytest
import torch

from monai_fewshot.visualize import save_episode_overlay


def test_writes_a_png_with_three_panels(tmp_path):
    image = torch.rand(1, 64, 64)
    mask = torch.zeros(1, 64, 64)
    mask[:, 20:40, 20:40] = 1
    path = save_episode_overlay(tmp_path / "a" / "episode.png", image, mask, image, mask, mask, title="liver")
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    import matplotlib.image

    picture = matplotlib.image.imread(path)
    assert picture.shape[1] > 2.5 * picture.shape[0]  # three panels side by side
    assert sorted(p.name for p in path.parent.iterdir()) == ["episode.png"]


def test_rejects_volumes(tmp_path):
    with pytest.raises(ValueError, match="2D slices"):
        save_episode_overlay(tmp_path / "x.png", np.zeros((4, 4, 4)), np.zeros((4, 4)), np.zeros((4, 4)), np.zeros((4, 4)))
