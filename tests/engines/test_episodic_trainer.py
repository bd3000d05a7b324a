import torch

from monai_fewshot.engines import EpisodicTrainer
from monai_fewshot.networks import CATNet


def _batches(n=2):
    g = torch.Generator().manual_seed(0)
    batches = []
    for _ in range(n):
        mask = torch.zeros(2, 1, 1, 64, 64)
        mask[..., 16:40, 16:40] = 1
        batches.append({"query": torch.randn(2, 1, 64, 64, generator=g), "support": torch.randn(2, 1, 1, 64, 64, generator=g),
                        "support_mask": mask, "query_label": mask[:, 0]})
    return batches


def test_trains_with_deep_supervision_and_clips_the_gradient_norm():
    torch.manual_seed(0)
    net = CATNet(2, backbone="resnet10", feature_size=16, num_heads=2, num_iterations=2)
    trainer = EpisodicTrainer("cpu", 1, _batches(), net, torch.optim.SGD(net.parameters(), lr=0.0), grad_clip_norm=0.01)
    trainer.run()
    assert trainer.state.iteration == 2 and torch.isfinite(trainer.state.output["loss"])
    assert trainer.state.grad_norm > 0.01  # the norm before clipping ...
    total = torch.norm(torch.stack([p.grad.norm() for p in net.parameters() if p.grad is not None]))
    assert total <= 0.01 * 1.001  # ... and after
