"""An ignite metric that scores evaluation episodes the protocol's way: 3D Dice per query volume."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import torch
from ignite.engine import Engine
from ignite.metrics import Metric

from monai_fewshot.metrics.fewshot_dice import FewShotScoreTable, VolumeScore
from monai_fewshot.networks.utils import final_logits

__all__ = ["ProtocolDice"]


class ProtocolDice(Metric):
    """Mean per-class Dice of a few-shot evaluation, from slice (or sub-volume) episodes.

    Each episode batch carries, beside the tensors, ``volume`` (query volume id), ``class_name`` and
    optionally ``fold`` and ``class_id`` (tables list the classes in id order). Intersections and sizes are summed per (fold, class, volume) over all the
    episodes of that volume, so the Dice is that of the stacked 3D prediction, as the protocol defines;
    ``compute()`` returns the mean over classes of the mean over folds of the mean over volumes.
    The full table is left on ``engine.state.fewshot_scores`` (a :class:`FewShotScoreTable`).

    Args:
        threshold: logit above which a voxel is foreground. Defaults to 0.
    """

    def __init__(self, threshold: float = 0.0, device: str | torch.device = "cpu") -> None:
        self.threshold = threshold
        self.table = FewShotScoreTable()
        super().__init__(output_transform=lambda output: output, device=device)

    def reset(self) -> None:
        self._sums: dict[tuple[int, int, str, str], list[float]] = defaultdict(lambda: [0.0, 0.0])

    def iteration_completed(self, engine: Engine) -> None:
        self.update((engine.state.output, engine.state.batch))

    def update(self, output: tuple[dict[str, Any], dict[str, Any]]) -> None:
        state, batch = output
        logits = final_logits(state["pred"])
        prediction = (logits > self.threshold).flatten(1).float()
        truth = (state["label"] > 0).flatten(1).float()
        intersection = (prediction * truth).sum(1).tolist()
        sizes = (prediction.sum(1) + truth.sum(1)).tolist()
        folds = batch.get("fold", [0] * len(sizes))
        class_ids = batch.get("class_id", [0] * len(sizes))
        for i, (volume, name) in enumerate(zip(batch["volume"], batch["class_name"])):
            sums = self._sums[(int(folds[i]), int(class_ids[i]), str(name), str(volume))]
            sums[0] += intersection[i]
            sums[1] += sizes[i]

    def compute(self) -> float:
        self.table = FewShotScoreTable()
        for (fold, _, name, volume), (intersection, size) in sorted(self._sums.items()):  # classes in id order
            self.table.add(VolumeScore(fold, name, volume, 2 * intersection / size if size > 0 else 1.0))
        return self.table.mean()

    def completed(self, engine: Engine, name: str) -> None:
        super().completed(engine, name)
        engine.state.fewshot_scores = self.table
