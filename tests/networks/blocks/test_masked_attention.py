import pytest
import torch

from monai_fewshot.networks.blocks import MaskedCrossAttention


def test_output_shape_and_masked_tokens_ignored():
    torch.manual_seed(0)
    block = MaskedCrossAttention(32, 4).eval()
    x, context = torch.randn(2, 10, 32), torch.randn(2, 12, 32)
    allowed = torch.zeros(2, 12, dtype=torch.bool)
    allowed[:, :5] = True
    out = block(x, context, allowed)
    assert out.shape == (2, 10, 32)
    changed = context.clone()
    changed[:, 5:] = torch.randn(2, 7, 32) * 10
    torch.testing.assert_close(block(x, changed, allowed), out)
    changed_allowed = context.clone()
    changed_allowed[:, :5] += 1.0
    assert not torch.allclose(block(x, changed_allowed, allowed), out)


def test_all_masked_row_falls_back_to_unmasked():
    torch.manual_seed(0)
    block = MaskedCrossAttention(16, 2).eval()
    x, context = torch.randn(2, 6, 16), torch.randn(2, 8, 16)
    allowed = torch.zeros(2, 8, dtype=torch.bool)
    allowed[0, :3] = True  # episode 1 allows nothing
    out = block(x, context, allowed)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out[1], block(x, context)[1])


def test_bad_heads():
    with pytest.raises(ValueError, match="divisible"):
        MaskedCrossAttention(30, 4)


def test_attention_dropout_only_in_training():
    torch.manual_seed(0)
    block = MaskedCrossAttention(16, 2, attention_dropout_rate=0.5)
    x = torch.randn(1, 6, 16)
    block.train()
    assert not torch.allclose(block(x, x), block(x, x))
    block.eval()
    torch.testing.assert_close(block(x, x), block(x, x), rtol=0, atol=0)
    with pytest.raises(ValueError, match="attention_dropout_rate"):
        MaskedCrossAttention(16, 2, attention_dropout_rate=1.5)
