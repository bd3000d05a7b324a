import pytest
import torch
from monai.losses import DiceCELoss

from monai_fewshot.losses import CATNetLoss
from monai_fewshot.networks import CATNetOutput


def _output(steps=3):
    g = torch.Generator().manual_seed(0)
    iterations = torch.randn(2, steps, 1, 8, 8, generator=g, requires_grad=True)
    initial = torch.randn(2, 1, 8, 8, generator=g, requires_grad=True)
    return CATNetOutput(iterations[:, -1], iterations, initial)


def test_weighted_sum_of_dice_ce_over_every_mask():
    output = _output()
    target = (torch.rand(2, 1, 8, 8, generator=torch.Generator().manual_seed(1)) > 0.5).float()
    dice_ce = DiceCELoss(sigmoid=True)
    expected = 0.5 * dice_ce(output.initial_logits, target) + sum(
        w * dice_ce(output.iteration_logits[:, t], target) for t, w in enumerate([0.2, 0.3, 1.0])
    )
    loss = CATNetLoss(iteration_weights=[0.2, 0.3, 1.0], initial_weight=0.5)(output, target)
    torch.testing.assert_close(loss, expected)


def test_every_step_gets_gradient():
    iterations = torch.randn(1, 3, 1, 8, 8, requires_grad=True)
    initial = torch.randn(1, 1, 8, 8, requires_grad=True)
    CATNetLoss()(CATNetOutput(iterations[:, -1], iterations, initial), torch.ones(1, 1, 8, 8)).backward()
    assert all(iterations.grad[:, t].abs().sum() > 0 for t in range(3)) and initial.grad.abs().sum() > 0


def test_weights_must_match_steps():
    with pytest.raises(ValueError, match="iteration_weights has 2 entries, the network made 3 steps"):
        CATNetLoss(iteration_weights=[1, 1])(_output(3), torch.ones(2, 1, 8, 8))
