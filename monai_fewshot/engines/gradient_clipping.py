"""Gradient-norm clipping as an event handler of MONAI's ``SupervisedTrainer``."""

from __future__ import annotations

import torch
from monai.engines import SupervisedTrainer
from monai.engines.utils import IterationEvents

__all__ = ["GradientClipping"]


class GradientClipping:
    """Clip the global gradient norm after the backward pass and before the optimiser step.

    With AMP the gradients are unscaled first, so the norm is that of the true gradients.

    Args:
        max_norm: largest allowed L2 norm of all gradients together.
    """

    def __init__(self, max_norm: float) -> None:
        if max_norm <= 0:
            raise ValueError(f"max_norm must be positive, got {max_norm}.")
        self.max_norm = max_norm

    def attach(self, engine: SupervisedTrainer) -> None:
        engine.add_event_handler(IterationEvents.BACKWARD_COMPLETED, self)

    def __call__(self, engine: SupervisedTrainer) -> None:
        if engine.amp and engine.scaler is not None:
            engine.scaler.unscale_(engine.optimizer)
        engine.state.grad_norm = float(torch.nn.utils.clip_grad_norm_(engine.network.parameters(), self.max_norm))
