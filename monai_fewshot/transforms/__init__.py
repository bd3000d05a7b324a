"""Dictionary transforms (MONAI MapTransform subclasses and compositions of MONAI's): episode augmentations,
support-to-query alignment and restoration degradations."""

from monai_fewshot.transforms.augment import RandDenseElasticd, lineage_augmentations
from monai_fewshot.transforms.degradation import (
    NOISES,
    RESTORATION_TASKS,
    RandNoiseCopyd,
    SliceDownsampleCopyd,
    restoration_degradation,
)
from monai_fewshot.transforms.registration import AlignSupportd

__all__ = [
    "AlignSupportd",
    "NOISES",
    "RESTORATION_TASKS",
    "RandDenseElasticd",
    "RandNoiseCopyd",
    "SliceDownsampleCopyd",
    "lineage_augmentations",
    "restoration_degradation",
]
