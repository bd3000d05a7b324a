import pytest
import torch

from monai_fewshot.networks.blocks import CMATBlock


def _inputs(spatial=(4, 4), shots=2, channels=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    query = torch.randn(2, channels, *spatial, generator=g)
    support = torch.randn(2, shots, channels, *spatial, generator=g)
    mask = torch.zeros(2, shots, 1, *spatial)
    mask[..., :2, :2] = 1
    probability = torch.zeros(2, 1, *spatial)
    probability[..., :2] = 0.9
    return query, support, mask, probability


@pytest.mark.parametrize("spatial,shots", [((4, 4), 1), ((4, 4), 3), ((2, 3, 4), 1), ((2, 2, 2), 2)])
def test_shapes(spatial, shots):
    block = CMATBlock(16, 4)
    q, s, m, p = _inputs(spatial, shots)
    query, support, logits = block(q, s, m, p)
    assert query.shape == q.shape and support.shape == s.shape and logits.shape == (2, 1, *spatial)


def test_query_to_support_ignores_support_background():
    torch.manual_seed(0)
    block = CMATBlock(16, 4).eval()
    q, s, m, p = _inputs()
    tokens_q = q.flatten(2).transpose(1, 2)
    tokens_s = s.flatten(3).transpose(2, 3).reshape(2, -1, 16)
    allowed = m.flatten(1) > 0
    reference = block.query_to_support(tokens_q, tokens_s, allowed)
    changed = s.clone()
    changed = torch.where(m.bool().expand_as(changed), changed, torch.randn_like(changed) * 5)
    tokens_changed = changed.flatten(3).transpose(2, 3).reshape(2, -1, 16)
    torch.testing.assert_close(block.query_to_support(tokens_q, tokens_changed, allowed), reference)


def test_support_branch_uses_previous_query_prediction():
    torch.manual_seed(0)
    block = CMATBlock(16, 4).eval()
    q, s, m, p = _inputs()
    _, support_a, _ = block(q, s, m, p)
    # query tokens outside the predicted foreground do not reach the support branch...
    q_changed = q.clone()
    q_changed[..., 2:] = torch.randn_like(q_changed[..., 2:]) * 5
    q_same_foreground = torch.cat([q[..., :2], q_changed[..., 2:]], dim=-1)
    support_tokens = s.flatten(3).transpose(2, 3).reshape(2, -1, 16)
    query_tokens = lambda t: t.flatten(2).transpose(1, 2)  # noqa: E731
    allowed = p.flatten(1) >= 0.5
    a = block.support_to_query(support_tokens, query_tokens(q), allowed)
    b = block.support_to_query(support_tokens, query_tokens(q_same_foreground), allowed)
    torch.testing.assert_close(a, b)
    # ...and a different previous prediction changes the refined support features
    other = torch.zeros_like(p)
    other[..., 2:] = 0.9
    _, support_b, _ = block(q, s, m, other)
    assert not torch.allclose(support_a, support_b)


def test_gradients_reach_every_parameter():
    block = CMATBlock(16, 4)
    q, s, m, p = _inputs()
    query, support, logits = block(q, s, m, p)
    (logits.sum() + query.sum() + support.sum()).backward()
    missing = [n for n, w in block.named_parameters() if w.grad is None or not torch.isfinite(w.grad).all()]
    assert not missing
