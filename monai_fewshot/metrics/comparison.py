"""Side-by-side comparison of few-shot evaluations scored on the same episodes."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from monai_fewshot.metrics.fewshot_dice import FewShotScoreTable, VolumeScore

__all__ = ["PairedDifference", "compare_tables", "paired_difference"]


@dataclass(frozen=True)
class PairedDifference:
    """A model's Dice minus a reference's over the query volumes both scored.

    ``mean`` is the difference of the protocol means (class mean of fold means); ``low`` and ``high`` bound its
    95 % bootstrap interval over query volumes; ``wins`` / ``losses`` count (fold, class, volume) scores above /
    below the reference.
    """

    mean: float
    low: float
    high: float
    wins: int
    losses: int
    pairs: int


def _restricted(table: FewShotScoreTable, keys: set[tuple[int, str, str]]) -> FewShotScoreTable:
    return FewShotScoreTable([s for s in table.scores if (s.fold, s.class_name, s.volume) in keys])


def _keys(table: FewShotScoreTable) -> set[tuple[int, str, str]]:
    return {(s.fold, s.class_name, s.volume) for s in table.scores}


def paired_difference(
    table: FewShotScoreTable, reference: FewShotScoreTable, resamples: int = 2000, seed: int = 0
) -> PairedDifference:
    """``table`` minus ``reference`` on the (fold, class, volume) scores both hold.

    The bootstrap resamples query volumes (a volume keeps all its classes, so the classes' dependence through
    a shared volume stays in the interval) within each fold, and recomputes the protocol mean each time.

    Raises:
        ValueError: when the two share no score (different folds, classes or datasets).
    """
    shared = _keys(table) & _keys(reference)
    if not shared:
        raise ValueError("the two evaluations share no (fold, class, volume) score: were they run on the same folds?")
    ours = {(s.fold, s.class_name, s.volume): s.dice for s in table.scores}
    theirs = {(s.fold, s.class_name, s.volume): s.dice for s in reference.scores}
    differences = [VolumeScore(f, c, v, ours[(f, c, v)] - theirs[(f, c, v)]) for f, c, v in sorted(shared)]
    by_volume: dict[tuple[int, str], list[VolumeScore]] = defaultdict(list)
    for score in differences:
        by_volume[(score.fold, score.volume)].append(score)
    volumes = {f: sorted(v for g, v in by_volume if g == f) for f in sorted({f for f, _ in by_volume})}

    rng = np.random.default_rng(seed)
    samples = []
    for _ in range(resamples):
        drawn = [s for f, names in volumes.items() for v in rng.choice(names, size=len(names)) for s in by_volume[(f, v)]]
        samples.append(FewShotScoreTable(drawn).mean())
    low, high = np.quantile(samples, [0.025, 0.975]) if samples else (math.nan, math.nan)
    return PairedDifference(
        mean=FewShotScoreTable(differences).mean(), low=float(low), high=float(high),
        wins=sum(s.dice > 0 for s in differences), losses=sum(s.dice < 0 for s in differences), pairs=len(differences),
    )


def compare_tables(tables: Mapping[str, FewShotScoreTable], title: str = "Dice (%)") -> str:
    """Markdown: one row per model (per-class protocol means and their mean), then each model against the first.

    Only the (fold, class, volume) scores that every table holds are compared, so a model evaluated on more
    folds than another is cut to the shared ones; the folds used are named in the table.

    Args:
        tables: ``{model name: its evaluation}``; the first is the reference of the paired differences.
        title: the top-left cell.

    Raises:
        ValueError: with fewer than one table or no score shared by all.
    """
    if not tables:
        raise ValueError("compare_tables needs at least one evaluation.")
    shared = set.intersection(*(_keys(t) for t in tables.values()))
    if not shared:
        raise ValueError(f"the evaluations {list(tables)} share no (fold, class, volume) score.")
    restricted = {name: _restricted(table, shared) for name, table in tables.items()}
    reference_name, reference = next(iter(restricted.items()))
    classes = reference.classes()
    folds = reference.folds()
    lines = [
        f"| {title}, fold{'s' if len(folds) > 1 else ''} {', '.join(str(f) for f in folds)} | " + " | ".join(classes) + " | mean |",
        "|---" * (len(classes) + 2) + "|",
    ]
    for name, table in restricted.items():
        per_class = table.per_class()
        lines.append(f"| {name} | " + " | ".join(f"{100 * per_class[c]:.2f}" for c in classes)
                     + f" | {100 * table.mean():.2f} |")
    if len(restricted) > 1:
        lines += ["", f"| against {reference_name} | mean difference | 95 % bootstrap interval | wins / losses of "
                  f"{len(shared)} volume scores |", "|---|---|---|---|"]
        for name, table in list(restricted.items())[1:]:
            d = paired_difference(table, reference)
            lines.append(f"| {name} | {100 * d.mean:+.2f} | {100 * d.low:+.2f} .. {100 * d.high:+.2f} | "
                         f"{d.wins} / {d.losses} |")
    return "\n".join(lines) + "\n"
