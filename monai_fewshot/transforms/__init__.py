"""Dictionary transforms (MONAI MapTransform subclasses and compositions of MONAI's): episode augmentations,
support-to-query alignment and restoration degradations, and the one intensity normalisation."""

from monai_fewshot.transforms.augment import RandDenseElasticd, lineage_augmentations
from monai_fewshot.transforms.degradation import (
    NOISES,
    RESTORATION_TASKS,
    RandNoiseCopyd,
    SliceDownsampleCopyd,
    restoration_degradation,
)
from monai_fewshot.transforms.intensity import CLIP_PERCENTILES, robust_zscore
from monai_fewshot.transforms.registration import AlignSupportd

__all__ = [
    "AlignSupportd",
    "CLIP_PERCENTILES",
    "NOISES",
    "RESTORATION_TASKS",
    "RandDenseElasticd",
    "RandNoiseCopyd",
    "SliceDownsampleCopyd",
    "lineage_augmentations",
    "restoration_degradation",
    "robust_zscore",
]
