import torch

from monai_fewshot.networks.blocks import PrototypeSegmentation, masked_average_pooling, shot_prototype


def test_masked_average_pooling_is_the_foreground_mean():
    features = torch.arange(2 * 3 * 4 * 4, dtype=torch.float32).view(2, 3, 4, 4)
    mask = torch.zeros(2, 1, 4, 4)
    mask[:, :, 1:3, 1:3] = 1
    expected = features[:, :, 1:3, 1:3].mean((-1, -2))
    torch.testing.assert_close(masked_average_pooling(features, mask), expected, rtol=1e-4, atol=1e-4)


def test_shot_prototype_averages_shots_3d():
    features = torch.randn(2, 3, 5, 4, 4, 4)
    mask = (torch.rand(2, 3, 1, 4, 4, 4) > 0.5).float()
    per_shot = torch.stack([masked_average_pooling(features[:, k], mask[:, k]) for k in range(3)], 1)
    torch.testing.assert_close(shot_prototype(features, mask), per_shot.mean(1))


def test_prototype_segmentation_marks_matching_features():
    head = PrototypeSegmentation(scale=20.0)
    support = torch.zeros(1, 1, 2, 4, 4)
    support[:, :, 0] = 1.0  # support foreground feature = (1, 0)
    mask = torch.ones(1, 1, 1, 4, 4)
    query = torch.zeros(1, 2, 4, 4)
    query[:, 0, :2] = 1.0  # top half like the prototype
    query[:, 1, 2:] = 1.0  # bottom half orthogonal to it
    logits = head(query, support, mask)
    assert logits.shape == (1, 1, 4, 4)
    assert (logits[..., :2, :] > 0).all() and (logits[..., 2:, :] < 0).all()
    torch.testing.assert_close(logits[0, 0, 0, 0], torch.tensor(5.0))  # 20 / 2 * (1 - 0.5)
    logits.sum().backward()
    assert head.threshold.grad is not None
