import numpy as np
import pytest
import torch

from monai_fewshot.inferers import FewShotSliceInferer, chunk_assignment, nearest_assignment


class SupportIndexNet(torch.nn.Module):
    """Answers with the mean of the support image: tells which support each query slice was given."""

    def forward(self, query, support, mask):
        assert query.shape[0] == support.shape[0] == mask.shape[0]
        return support.mean(dim=(1, 2, 3, 4)).view(-1, 1, 1, 1).expand(query.shape[0], 1, *query.shape[2:]) + query


def test_chunk_assignment_is_the_lineage_split():
    assignment = chunk_assignment(20, list(range(5, 15)), 3)
    assert assignment.tolist() == [-1] * 5 + [0] * 3 + [1] * 3 + [2] * 4 + [-1] * 5


def test_nearest_assignment():
    assert nearest_assignment(6, [1, 4]).tolist() == [0, 0, 0, 1, 1, 1]
    assert nearest_assignment(6, [4], query_slices=[3, 4, 5]).tolist() == [-1, -1, -1, 0, 0, 0]
    with pytest.raises(ValueError, match="at least one annotated slice"):
        nearest_assignment(6, [])


@pytest.mark.parametrize("batch_size", [1, 2, 8])
def test_every_slice_gets_its_support(batch_size):
    volume = torch.zeros(1, 4, 4, 7)
    volume[..., 3] = 0.5  # query content reaches the output
    support = torch.stack([torch.full((1, 4, 4), 10.0 * (i + 1)) for i in range(3)])
    mask = torch.ones(3, 1, 4, 4)
    assignment = np.array([-1, 0, 0, 1, 1, 2, -1])
    logits = FewShotSliceInferer(batch_size=batch_size)(volume, SupportIndexNet(), support, mask, assignment)
    assert logits.shape == (1, 4, 4, 7)
    per_slice = logits[0, 0, 0].tolist()
    assert per_slice == [-1e4, 10.0, 10.0, 20.5, 20.0, 30.0, -1e4]


def test_bad_arguments():
    inferer = FewShotSliceInferer()
    volume, support, mask = torch.zeros(1, 4, 4, 3), torch.zeros(1, 1, 4, 4), torch.ones(1, 1, 4, 4)
    with pytest.raises(ValueError, match="one entry per slice"):
        inferer(volume, SupportIndexNet(), support, mask, [0, 0])
    with pytest.raises(ValueError, match="refers to support 1"):
        inferer(volume, SupportIndexNet(), support, mask, [0, 1, 0])
    with pytest.raises(ValueError, match="support must be"):
        inferer(volume, SupportIndexNet(), torch.zeros(1, 1, 5, 4), mask, [0, 0, 0])
    with pytest.raises(ValueError, match=r"\(C, X, Y, Z\)"):
        inferer(volume[0], SupportIndexNet(), support, mask, [0, 0, 0])


def test_output_names_keep_same_named_queries_apart(tmp_path):
    from pathlib import Path

    from monai_fewshot.inferers import output_names

    assert output_names([Path("x/image_2.nii.gz"), Path("x/image_3.nii")]) == ["image_2_seg.nii.gz", "image_3_seg.nii.gz"]
    assert output_names([tmp_path / "a" / "img.nii.gz", tmp_path / "b" / "img.nii.gz"]) == ["a_img_seg.nii.gz", "b_img_seg.nii.gz"]
    assert output_names([tmp_path / "p" / "a" / "img.nii.gz", tmp_path / "q" / "a" / "img.nii.gz"]) == [
        "p_a_img_seg.nii.gz", "q_a_img_seg.nii.gz"]
    with pytest.raises(ValueError, match="given twice"):
        output_names([tmp_path / "img.nii.gz", tmp_path / "." / "img.nii.gz"])


def test_segment_volumes_reads_every_query_before_writing(tmp_path):
    """Queries [good, truncated]: the truncated one fails and nothing is written, not even the good one's mask."""
    import nibabel as nib

    from monai_fewshot.inferers import segment_volumes

    class Copy(torch.nn.Module):
        def forward(self, query, support, mask):
            return mask[:, 0] * 2 - 1

    image = np.random.default_rng(0).normal(size=(16, 16, 6)).astype(np.float32)
    label = np.zeros((16, 16, 6), np.uint8)
    label[4:10, 4:10, 1:5] = 1
    for name, array in (("support", image), ("support_label", label), ("good", image)):
        nib.save(nib.Nifti1Image(array, np.eye(4)), tmp_path / f"{name}.nii.gz")
    raw = (tmp_path / "good.nii.gz").read_bytes()
    (tmp_path / "cut.nii.gz").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(Exception, match="cut.nii.gz"):
        segment_volumes(Copy(), tmp_path / "support.nii.gz", tmp_path / "support_label.nii.gz", 1,
                        [tmp_path / "good.nii.gz", tmp_path / "cut.nii.gz"], tmp_path / "out", propagate=False)
    assert not (tmp_path / "out").exists()
    written = segment_volumes(Copy(), tmp_path / "support.nii.gz", tmp_path / "support_label.nii.gz", 1,
                              [tmp_path / "good.nii.gz"], tmp_path / "out", propagate=False)
    assert [p.name for p in written] == ["good_seg.nii.gz"] and np.asanyarray(nib.load(written[0]).dataobj).sum() > 0


class _CopySupport(torch.nn.Module):
    """The floor: the support's mask as the query's logits."""

    def forward(self, query, support, mask):
        return mask[:, 0] * 2 - 1


def _example_support(tmp_path):
    import nibabel as nib

    from monai_fewshot.data.example_volumes import example_volume

    image_path, label_path = example_volume("mr")
    image, label = nib.load(str(image_path)), nib.load(str(label_path))
    nib.save(image, tmp_path / "support.nii.gz")
    nib.save(nib.Nifti1Image((np.asanyarray(label.dataobj) == 5).astype(np.uint8), label.affine), tmp_path / "label.nii.gz")
    return image


def test_segment_volumes_reads_a_flipped_query_in_the_support_orientation(tmp_path):
    """The same MR stored mirrored along x (another affine, the same anatomy) gets the same mask, in its own grid."""
    import nibabel as nib

    from monai_fewshot.inferers import segment_volumes

    image = _example_support(tmp_path)
    data, affine = np.asanyarray(image.dataobj), image.affine
    flip = np.eye(4)
    flip[0, 0], flip[0, 3] = -1, data.shape[0] - 1
    nib.save(nib.Nifti1Image(data[::-1].copy(), affine @ flip), tmp_path / "flipped.nii.gz")
    assert nib.aff2axcodes(affine) != nib.aff2axcodes(affine @ flip)
    same, flipped = segment_volumes(_CopySupport(), tmp_path / "support.nii.gz", tmp_path / "label.nii.gz", 1,
                                    [tmp_path / "support.nii.gz", tmp_path / "flipped.nii.gz"], tmp_path / "out")
    reference, mirrored = np.asanyarray(nib.load(same).dataobj), np.asanyarray(nib.load(flipped).dataobj)
    assert reference.sum() > 0
    np.testing.assert_array_equal(mirrored, reference[::-1])
    np.testing.assert_allclose(nib.load(flipped).affine, affine @ flip)


def test_segment_volumes_refuses_another_spacing_and_existing_outputs(tmp_path):
    import nibabel as nib

    from monai_fewshot.inferers import segment_volumes

    image = _example_support(tmp_path)
    coarse = image.affine.copy()
    coarse[:3, 0] *= 1.5
    nib.save(nib.Nifti1Image(np.asanyarray(image.dataobj), coarse), tmp_path / "coarse.nii.gz")
    with pytest.raises(ValueError, match=r"coarse.nii.gz has in-plane spacing .* the support .*support.nii.gz"):
        segment_volumes(_CopySupport(), tmp_path / "support.nii.gz", tmp_path / "label.nii.gz", 1,
                        [tmp_path / "coarse.nii.gz"], tmp_path / "out")
    args = (_CopySupport(), tmp_path / "support.nii.gz", tmp_path / "label.nii.gz", 1, [tmp_path / "support.nii.gz"])
    (written,) = segment_volumes(*args, tmp_path / "out")
    written.chmod(0o600)
    with pytest.raises(FileExistsError, match="support_seg.nii.gz exist"):
        segment_volumes(*args, tmp_path / "out")
    segment_volumes(*args, tmp_path / "out", overwrite=True)
    assert written.stat().st_mode & 0o777 == 0o600  # replaced atomically, permissions kept
