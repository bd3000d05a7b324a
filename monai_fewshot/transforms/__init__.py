"""Episodic dictionary transforms (MONAI MapTransform subclasses and compositions of MONAI's)."""

from monai_fewshot.transforms.augment import RandDenseElasticd, lineage_augmentations

__all__ = ["RandDenseElasticd", "lineage_augmentations"]
