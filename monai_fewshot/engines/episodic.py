"""Episodic trainer and evaluator: MONAI's supervised engines fed with few-shot episodes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from monai.engines import SupervisedEvaluator, SupervisedTrainer
from torch.utils.data import DataLoader

from monai_fewshot.engines.episode_batch import prepare_episode_batch
from monai_fewshot.engines.gradient_clipping import GradientClipping
from monai_fewshot.losses import CATNetLoss
from monai_fewshot.metrics import ProtocolDice

__all__ = ["EpisodicEvaluator", "EpisodicTrainer"]


class EpisodicTrainer(SupervisedTrainer):
    """``SupervisedTrainer`` for few-shot networks called as ``network(query, support, support_mask)``.

    Batches are episode dictionaries (see :data:`~monai_fewshot.engines.episode_batch.EPISODE_KEYS`); the
    default loss is :class:`~monai_fewshot.losses.CATNetLoss` (deep supervision of every refinement step).
    AMP is used only on CUDA devices; ``grad_clip_norm`` clips the global gradient norm.

    Args:
        device: the training device.
        max_epochs: epochs to train; an epoch is ``epoch_length`` episode batches.
        train_data_loader: yields episode batches.
        network: the few-shot network.
        optimizer: its optimiser.
        loss_function: defaults to ``CATNetLoss()``.
        epoch_length: batches per epoch; defaults to ``len(train_data_loader)``.
        grad_clip_norm: largest gradient norm, or None for no clipping.
        amp: mixed precision on CUDA (ignored on CPU).
        train_handlers: MONAI/ignite handlers with ``attach``.
        kwargs: passed on to ``SupervisedTrainer``.
    """

    def __init__(
        self,
        device: str | torch.device,
        max_epochs: int,
        train_data_loader: DataLoader,
        network: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
        loss_function: torch.nn.Module | None = None,
        epoch_length: int | None = None,
        grad_clip_norm: float | None = None,
        amp: bool = False,
        train_handlers: Sequence | None = None,
        **kwargs: Any,
    ) -> None:
        device = torch.device(device)
        super().__init__(
            device=device,
            max_epochs=max_epochs,
            train_data_loader=train_data_loader,
            network=network,
            optimizer=optimizer,
            loss_function=loss_function if loss_function is not None else CATNetLoss(),
            epoch_length=epoch_length,
            prepare_batch=prepare_episode_batch,
            amp=amp and device.type == "cuda",
            train_handlers=train_handlers,
            decollate=False,
            **kwargs,
        )
        if grad_clip_norm is not None:
            GradientClipping(grad_clip_norm).attach(self)


class EpisodicEvaluator(SupervisedEvaluator):
    """``SupervisedEvaluator`` scoring evaluation episodes with :class:`~monai_fewshot.metrics.ProtocolDice`.

    The key metric ``mean_dice`` is the protocol's mean Dice (per query volume, then class, then fold);
    the full table is left on ``evaluator.state.fewshot_scores``.

    Args:
        device: the evaluation device.
        val_data_loader: yields evaluation episode batches carrying ``volume`` and ``class_name``.
        network: the few-shot network.
        val_handlers: MONAI/ignite handlers with ``attach``.
        amp: mixed precision on CUDA (ignored on CPU).
        kwargs: passed on to ``SupervisedEvaluator``.
    """

    def __init__(
        self,
        device: str | torch.device,
        val_data_loader: DataLoader,
        network: torch.nn.Module,
        val_handlers: Sequence | None = None,
        amp: bool = False,
        **kwargs: Any,
    ) -> None:
        device = torch.device(device)
        super().__init__(
            device=device,
            val_data_loader=val_data_loader,
            network=network,
            prepare_batch=prepare_episode_batch,
            key_val_metric={"mean_dice": ProtocolDice()},
            val_handlers=val_handlers,
            amp=amp and device.type == "cuda",
            decollate=False,
            **kwargs,
        )
