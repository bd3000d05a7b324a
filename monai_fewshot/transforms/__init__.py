"""Dictionary transforms (MONAI MapTransform subclasses and compositions of MONAI's): episode augmentations and
restoration degradations."""

from monai_fewshot.transforms.augment import RandDenseElasticd, lineage_augmentations
from monai_fewshot.transforms.degradation import (
    NOISES,
    RESTORATION_TASKS,
    RandNoiseCopyd,
    SliceDownsampleCopyd,
    restoration_degradation,
)

__all__ = [
    "NOISES",
    "RESTORATION_TASKS",
    "RandDenseElasticd",
    "RandNoiseCopyd",
    "SliceDownsampleCopyd",
    "lineage_augmentations",
    "restoration_degradation",
]
