"""The example volumes that ship inside the package (the demo's offline default data)."""

import nibabel as nib
import numpy as np
import pytest

from monai_fewshot.data import EXAMPLE_ORGANS, example_volume


@pytest.mark.parametrize("name, shape, values", [("ct", (122, 101, 30), 42), ("mr", (117, 91, 20), 24)])
def test_examples_ship_with_the_package(name, shape, values):
    image_path, label_path = example_volume(name)
    image, label = nib.load(image_path), nib.load(label_path)
    assert image.shape == label.shape == shape and np.allclose(image.header.get_zooms(), 3.0)
    np.testing.assert_allclose(image.affine, label.affine, atol=1e-4)
    present = np.unique(np.asanyarray(label.dataobj))
    assert len(present) == values and set(EXAMPLE_ORGANS) <= set(present.tolist())
    assert (image_path.parent / "README.md").read_text().count("Apache") >= 1


def test_unknown_example():
    with pytest.raises(ValueError, match="unknown example volume 'pet'"):
        example_volume("pet")
