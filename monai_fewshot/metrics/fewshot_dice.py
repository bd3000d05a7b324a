"""Per-volume Dice under the few-shot protocol, aggregated per class, per fold and over folds."""

from __future__ import annotations

import csv
import io
import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from monai.metrics import compute_dice, compute_hausdorff_distance

__all__ = ["FewShotScoreTable", "VolumeScore", "volume_scores"]


@dataclass(frozen=True)
class VolumeScore:
    """Scores of one query volume for one class in one fold."""

    fold: int
    class_name: str
    volume: str
    dice: float
    hd95: float = math.nan


def volume_scores(
    prediction: torch.Tensor, truth: torch.Tensor, spacing: Sequence[float] | None = None, with_hd95: bool = False
) -> tuple[float, float]:
    """3D Dice (and optionally the 95th percentile Hausdorff distance in mm) of one binary volume.

    Args:
        prediction: binary mask (*S), the stacked scored slices of one query volume.
        truth: binary mask (*S) of the same shape.
        spacing: voxel size, for HD95 in physical units.
        with_hd95: also compute HD95 (MONAI's, slower); NaN otherwise.

    Returns:
        ``(dice, hd95)``. Dice is 1 where both are empty.
    """
    if prediction.shape != truth.shape:
        raise ValueError(f"prediction shape {tuple(prediction.shape)} differs from truth shape {tuple(truth.shape)}.")
    pred = prediction.bool()[None, None]
    true = truth.bool()[None, None]
    if not pred.any() and not true.any():
        return 1.0, 0.0
    dice = float(compute_dice(pred.float(), true.float(), include_background=True, ignore_empty=False))
    hd95 = math.nan
    if with_hd95:
        hd95 = float(
            compute_hausdorff_distance(pred, true, include_background=True, percentile=95, spacing=spacing)
        )
    return dice, hd95


@dataclass
class FewShotScoreTable:
    """Volume scores of an evaluation, and the tables the field reports.

    The per-class figure of a fold is the mean Dice over its query volumes; the reported figure is the
    mean over folds; the overall mean is the mean over classes.
    """

    scores: list[VolumeScore] = field(default_factory=list)

    def add(self, score: VolumeScore) -> None:
        self.scores.append(score)

    def classes(self) -> list[str]:
        return list(dict.fromkeys(s.class_name for s in self.scores))

    def folds(self) -> list[int]:
        return sorted({s.fold for s in self.scores})

    def per_fold(self) -> dict[int, dict[str, float]]:
        """``{fold: {class: mean Dice over that fold's query volumes}}``."""
        grouped: dict[tuple[int, str], list[float]] = defaultdict(list)
        for s in self.scores:
            grouped[(s.fold, s.class_name)].append(s.dice)
        table: dict[int, dict[str, float]] = defaultdict(dict)
        for (fold, name), values in grouped.items():
            table[fold][name] = sum(values) / len(values)
        return dict(table)

    def per_class(self) -> dict[str, float]:
        """``{class: mean over folds of the fold's mean Dice}``."""
        per_fold = self.per_fold()
        result = {}
        for name in self.classes():
            values = [per_fold[f][name] for f in per_fold if name in per_fold[f]]
            result[name] = sum(values) / len(values)
        return result

    def mean(self) -> float:
        values = list(self.per_class().values())
        return sum(values) / len(values) if values else math.nan

    def to_markdown(self, title: str = "Dice (%)") -> str:
        """One row per fold plus the mean over folds; columns are the classes and their mean."""
        names = self.classes()
        per_fold = self.per_fold()
        lines = [f"| {title} | " + " | ".join(names) + " | mean |", "|---" * (len(names) + 2) + "|"]

        def row(label: str, values: dict[str, float]) -> str:
            cells = [f"{100 * values[n]:.2f}" if n in values else "-" for n in names]
            present = [values[n] for n in names if n in values]
            return f"| {label} | " + " | ".join(cells) + f" | {100 * sum(present) / len(present):.2f} |"

        lines += [row(f"fold {f}", per_fold[f]) for f in sorted(per_fold)]
        lines.append(row("mean over folds", self.per_class()))
        return "\n".join(lines) + "\n"

    @classmethod
    def concatenate(cls, tables: Sequence[FewShotScoreTable]) -> FewShotScoreTable:
        """One table from evaluations of disjoint parts of a protocol, e.g. Setting 2's two test groups (each
        scored by its own model) or folds evaluated at different times.

        Raises:
            ValueError: when two tables hold the same (fold, class, volume) score.
        """
        seen: dict[tuple[int, str, str], int] = {}
        for index, table in enumerate(tables):
            for s in table.scores:
                key = (s.fold, s.class_name, s.volume)
                if key in seen:
                    raise ValueError(
                        f"tables {seen[key]} and {index} both score fold {s.fold}, class {s.class_name!r}, volume "
                        f"{s.volume}: concatenate evaluations of different folds or classes only."
                    )
                seen[key] = index
        return cls([s for table in tables for s in table.scores])

    @classmethod
    def from_csv(cls, path: str | Path) -> FewShotScoreTable:
        """Read back a table written by :meth:`to_csv` (an evaluation's ``<name>_dice.csv``)."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path} does not exist (expected an evaluation's <name>_dice.csv).")
        with path.open(newline="") as handle:
            reader = csv.DictReader(handle)
            missing = {"fold", "class", "volume", "dice"} - set(reader.fieldnames or ())
            if missing:
                raise ValueError(f"{path} lacks the columns {sorted(missing)} of a few-shot Dice table.")
            rows = list(reader)
        return cls([
            VolumeScore(int(r["fold"]), r["class"], r["volume"], float(r["dice"]), float(r.get("hd95") or math.nan))
            for r in rows
        ])

    def to_csv(self) -> str:
        """Every volume score, one per line."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["fold", "class", "volume", "dice", "hd95"])
        for s in self.scores:
            writer.writerow([s.fold, s.class_name, s.volume, f"{s.dice:.6f}", f"{s.hd95:.4f}"])
        return buffer.getvalue()
