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
