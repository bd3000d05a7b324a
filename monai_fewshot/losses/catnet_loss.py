"""Deep supervision of every CAT-Net refinement step (and the initial MIFE mask) with Dice + CE."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from monai.losses import DiceCELoss
from torch.nn.modules.loss import _Loss

from monai_fewshot.networks.nets.catnet import CATNetOutput

__all__ = ["CATNetLoss"]


class CATNetLoss(_Loss):
    """Weighted sum of Dice + binary cross-entropy over CAT-Net's predictions.

    ``loss = sum_t w_t * DiceCE(step_t, y) + w_0 * DiceCE(initial, y)``. A network that returns plain logits
    (the prototype baseline :class:`~monai_fewshot.networks.ALPNet`) gets ``DiceCE(logits, y)``, so both train
    with the same objective.

    Args:
        iteration_weights: weight of each refinement step, first to last; None gives 1 to every step.
            Its length must equal the network's ``num_iterations``.
        initial_weight: weight of MIFE's initial mask. Defaults to 1 (the paper supervises every mask).
        lambda_dice: weight of the Dice term inside DiceCE. Defaults to 1.
        lambda_ce: weight of the cross-entropy term inside DiceCE. Defaults to 1.
    """

    def __init__(
        self,
        iteration_weights: Sequence[float] | None = None,
        initial_weight: float = 1.0,
        lambda_dice: float = 1.0,
        lambda_ce: float = 1.0,
    ) -> None:
        super().__init__()
        self.iteration_weights = None if iteration_weights is None else [float(w) for w in iteration_weights]
        self.initial_weight = float(initial_weight)
        self.dice_ce = DiceCELoss(sigmoid=True, lambda_dice=lambda_dice, lambda_ce=lambda_ce)

    def forward(self, output: CATNetOutput | torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """
        Args:
            output: the network's :class:`CATNetOutput`, or (B, 1, *S) logits, at the target's size.
            target: (B, 1, *S) binary query mask.
        """
        if isinstance(output, torch.Tensor):
            return self.dice_ce(output, target.float())
        steps = output.iteration_logits.shape[1]
        weights = self.iteration_weights or [1.0] * steps
        if len(weights) != steps:
            raise ValueError(f"iteration_weights has {len(weights)} entries, the network made {steps} steps.")
        target = target.float()
        loss = self.initial_weight * self.dice_ce(output.initial_logits, target)
        for step, weight in enumerate(weights):
            loss = loss + weight * self.dice_ce(output.iteration_logits[:, step], target)
        return loss
