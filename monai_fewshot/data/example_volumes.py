"""The example volumes that ship inside the package: TotalSegmentator's abdominal CT and MR test cases.

They are the offline default data of ``monai-fewshot demo``; ``examples/README.md`` beside this file gives
their source, licence (Apache-2.0) and attribution. Their labels are TotalSegmentator's output, not manual.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["EXAMPLE_ORGANS", "EXAMPLE_VOLUMES", "example_volume"]

FOLDER = Path(__file__).parent / "examples"

#: name -> (image file, label file) in ``examples/``
EXAMPLE_VOLUMES = {
    "ct": ("example_ct_sm.nii.gz", "example_seg.nii.gz"),
    "mr": ("example_mr_sm.nii.gz", "example_seg_mr.nii.gz"),
}

#: the abdominal organs, numbered alike in TotalSegmentator's ``total`` (CT) and ``total_mr`` (MR) label maps
EXAMPLE_ORGANS = {1: "spleen", 2: "right kidney", 3: "left kidney", 4: "gallbladder", 5: "liver", 6: "stomach", 7: "pancreas"}


def example_volume(name: str) -> tuple[Path, Path]:
    """The (image, label) NIfTI paths of example ``name`` (``"ct"`` or ``"mr"``).

    Raises:
        ValueError: an unknown name. FileNotFoundError: the package was installed without its data files.
    """
    if name not in EXAMPLE_VOLUMES:
        raise ValueError(f"unknown example volume {name!r}; choose one of {sorted(EXAMPLE_VOLUMES)}.")
    paths = tuple(FOLDER / file for file in EXAMPLE_VOLUMES[name])
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"example file(s) {missing} are missing: reinstall monai-fewshot with its package data.")
    return paths
