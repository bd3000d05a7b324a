"""Class splits: which classes train and which test, and which training slices Setting 1 and Setting 2 keep.

Setting 1: test classes may appear, unlabelled, in training images; every slice stays.
Setting 2: every training slice that contains ANY test class is removed (the ``"any"`` rule, ours).
The ADNet / Q-Net / RPT lineage combined the excluded labels with a logical AND, which removes only the
slices holding ALL of them: a weaker Setting 2 (with test classes {left kidney, right kidney}, a slice with
one kidney stays). ``rule="and"`` reproduces it for comparison only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from monai_fewshot.registry import CHAOS_SETTING2_TEST_CLASSES  # noqa: F401 - defined once there, re-exported here

__all__ = ["CHAOS_SETTING2_TEST_CLASSES", "ClassSplit", "excluded_slices"]



def excluded_slices(label: np.ndarray, test_classes: Iterable[int], rule: str = "any") -> np.ndarray:
    """Boolean (D,) over the axial slices of an (H, W, D) label: True where Setting 2 removes the slice.

    Args:
        label: integer label volume (H, W, D).
        test_classes: the class values held out for testing.
        rule: ``"any"`` (default: a slice with any test class goes) or ``"and"`` (the lineage's: only a slice
            with all of them goes).
    """
    if rule not in ("any", "and"):
        raise ValueError(f"rule must be 'any' or 'and', got {rule!r}.")
    test_classes = tuple(test_classes)
    if not test_classes:
        return np.zeros(label.shape[-1], dtype=bool)
    present = np.stack([(label == c).any(axis=(0, 1)) for c in test_classes])
    return present.any(axis=0) if rule == "any" else present.all(axis=0)


@dataclass(frozen=True)
class ClassSplit:
    """Train and test classes of a dataset and the setting that filters training slices.

    Args:
        classes: the dataset's class map ``{value: name}``.
        test_classes: values held out for testing.
        setting: 1 (keep every training slice) or 2 (remove training slices with test classes).
        rule: Setting 2's rule, ``"any"`` (default) or ``"and"`` (the lineage's weaker rule; comparison only).
    """

    classes: Mapping[int, str]
    test_classes: tuple[int, ...]
    setting: int = 2
    rule: str = "any"

    def __post_init__(self) -> None:
        if self.setting not in (1, 2):
            raise ValueError(f"setting must be 1 or 2, got {self.setting}.")
        if self.rule not in ("any", "and"):
            raise ValueError(f"rule must be 'any' or 'and', got {self.rule!r}.")
        unknown = sorted(set(self.test_classes) - set(self.classes))
        if unknown:
            raise ValueError(f"test_classes {unknown} are not in the class map {dict(self.classes)}.")
        object.__setattr__(self, "test_classes", tuple(sorted(self.test_classes)))

    @property
    def train_classes(self) -> tuple[int, ...]:
        return tuple(sorted(set(self.classes) - set(self.test_classes)))

    def allowed_slices(self, label: np.ndarray) -> np.ndarray:
        """Boolean (D,) of the training slices of an (H, W, D) label this split keeps."""
        if self.setting == 1:
            return np.ones(label.shape[-1], dtype=bool)
        return ~excluded_slices(label, self.test_classes, self.rule)
