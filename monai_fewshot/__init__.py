"""monai_fewshot: few-shot medical image segmentation as a MONAI plugin."""

__version__ = "0.1.0"
