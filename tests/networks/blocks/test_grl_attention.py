import math

import pytest
import torch
from monai.networks.nets.swin_unetr import compute_mask, window_partition

from monai_fewshot.networks.blocks import (
    AnchoredStripeAttention,
    ChannelAttentionBlock,
    CosineAttention,
    MixedAttention,
    MixedAttentionTransformerLayer,
    ShiftMasks,
    WindowAttention,
    group_windows,
    relative_coordinates,
    shift_masks,
    stripe_shape,
    window_layout,
)

CPU = torch.device("cpu")


def test_relative_coordinates_are_swin_v2_log_spaced_and_cached():
    table, index = relative_coordinates((4, 4), (4, 4), CPU)
    assert table.shape == (7 * 7, 2) and index.shape == (16, 16)
    edge = math.log2(9) / math.log2(8)  # offset w - 1 -> 8 -> log2(1 + 8) / log2(8)
    torch.testing.assert_close(table.abs().amax(0), torch.tensor([edge, edge]))
    torch.testing.assert_close(table[index.diagonal()], torch.zeros(16, 2))  # a token with itself: offset 0
    again = relative_coordinates((4, 4), (4, 4), CPU)
    assert again[0] is table and again[1] is index


def test_stripe_anchor_coordinates_are_symmetric():
    """Stripe -> anchors and anchors -> stripe use the same centred offsets, negated."""
    table_sa, index_sa = relative_coordinates((8, 4), (2, 1), CPU)
    table_as, index_as = relative_coordinates((2, 1), (8, 4), CPU)
    torch.testing.assert_close(table_sa[index_sa], -table_as[index_as].transpose(0, 1))


def _explicit_attention(attention, q, k, v, query_shape, key_shape, per_window):
    """softmax(cos(q, k) * 10 + bias + mask) v written out, (B, W, heads, N, d) -> (B, W, N, heads, d)."""
    cos = torch.nn.functional.normalize(q, dim=-1) @ torch.nn.functional.normalize(k, dim=-1).transpose(-1, -2)
    logits = cos * attention.logit_scale.exp() + attention.position_bias(query_shape, key_shape, CPU) + per_window[:, None]
    return (torch.softmax(logits, -1) @ v).transpose(2, 3)


@pytest.mark.parametrize("training", [False, True])
def test_cosine_attention_matches_explicit_softmax(training):
    """Grouped windows (3 without a mask, then 2 with one) against the softmax written out; in training the
    chunked backward (one window per chunk here) gives autograd's gradients for q, k, v and the bias MLP."""
    torch.manual_seed(0)
    attention = CosineAttention(2, num_heads=2)
    q, k, v = torch.randn(3, 2, 5, 2, 6, 4).unbind(0)  # (B, W, heads, N, d) with a 2x3 window
    blocked = torch.zeros(6, 6)
    blocked[:3, 3:] = -100.0
    mask = ShiftMasks((torch.zeros(6, 6), blocked), (3, 2))
    per_window = torch.stack([torch.zeros(6, 6)] * 3 + [blocked] * 2)
    inputs = [t.clone().requires_grad_(training) for t in (q, k, v)]
    with torch.set_grad_enabled(training), pytest.MonkeyPatch.context() as patch:
        patch.setattr("monai_fewshot.networks.blocks.cosine_attention.BACKWARD_CHUNK_ELEMENTS", 2 * 6 * 6)
        out = attention(*inputs, (2, 3), (2, 3), mask)
        expected = _explicit_attention(attention, q, k, v, (2, 3), (2, 3), per_window)
    assert out.shape == (2, 5, 6, 2, 4)
    torch.testing.assert_close(out, expected, rtol=1e-4, atol=1e-5)
    if training:
        weights = torch.randn_like(out)
        grads = torch.autograd.grad((out * weights).sum(), [*inputs, *attention.parameters()])
        reference_inputs = [t.clone().requires_grad_(True) for t in (q, k, v)]
        reference = _explicit_attention(attention, *reference_inputs, (2, 3), (2, 3), per_window)
        expected_grads = torch.autograd.grad((reference * weights).sum(), [*reference_inputs, *attention.parameters()])
        for grad, expected_grad in zip(grads, expected_grads):
            torch.testing.assert_close(grad, expected_grad, rtol=1e-4, atol=1e-5)


def test_window_layout_is_roll_partition_and_grouping():
    """The gather equals torch.roll, MONAI's window_partition and the grouped window order; scatter undoes it."""
    spatial, window, shift = (4, 8, 6), (2, 4, 3), (1, 2, 1)
    tokens = torch.randn(2, *spatial, 5)
    layout = window_layout(spatial, window, shift, (True, True, True), CPU)
    rolled = torch.roll(tokens, shifts=tuple(-s for s in shift), dims=(1, 2, 3))
    windows = window_partition(rolled, window).reshape(2, -1, 2 * 4 * 3, 5)  # (B, W, N, C)
    order = [w for _, members in group_windows((2, 2, 2), (True, True, True)) for w in members]
    gathered = layout.windows(tokens)
    torch.testing.assert_close(gathered, windows[:, order].reshape(2, -1, 5))
    torch.testing.assert_close(layout.to_map(gathered, spatial), tokens)


@pytest.mark.parametrize(
    "spatial,window", [((8, 12), (4, 4)), ((4, 8, 8), (2, 4, 4)), ((8, 8, 8), (4, 4, 4)), ((4, 4), (4, 4))]
)
def test_grouped_shift_masks_equal_monai_compute_mask(spatial, window):
    """Per window, the mask of its group is the one MONAI's Swin builds; at most 2^D groups."""
    shift = tuple(w // 2 for w in window)
    grid = tuple(s // w for s, w in zip(spatial, window))
    grouped = shift_masks(grid, window, shift, window, shift, CPU)
    reference = compute_mask(spatial, window, shift, CPU)  # (W, N, N)
    assert len(grouped.masks) <= 2 ** len(spatial)
    per_window = torch.empty_like(reference)
    groups = group_windows(grid, tuple(s > 0 for s in shift))
    assert grouped.sizes == tuple(len(windows) for _, windows in groups)
    for mask, (_, windows) in zip(grouped.masks, groups):
        per_window[windows] = mask
    torch.testing.assert_close(per_window, reference)


def test_grouped_anchor_masks_keep_each_token_with_its_region():
    """Stripe <-> anchor masks: a token and an anchor attend iff both came from the same side of the wrap."""
    spatial, stripe, shift, down = (8, 16), (4, 8), (2, 4), (2, 2)
    anchor, anchor_shift = (2, 4), (1, 2)

    def region(size, window, roll):  # which wrapped region each token of the rolled map came from, per window
        labels = torch.zeros(1, *size, 1)
        for axis, (n, s) in enumerate(zip(size, roll)):
            wrapped = torch.zeros(n)
            wrapped[n - s :] = 1 << axis  # after a roll by -s, the last s positions came from the start
            labels += wrapped.reshape([1] + [n if a == axis else 1 for a in range(len(size))] + [1])
        return window_partition(labels, window).squeeze(-1)

    anchors = region(tuple(s // f for s, f in zip(spatial, down)), anchor, anchor_shift)
    tokens = region(spatial, stripe, shift)
    reference = torch.where(anchors[:, :, None] == tokens[:, None, :], 0.0, -100.0)
    grouped = shift_masks((2, 2), anchor, anchor_shift, stripe, shift, CPU)
    for mask, (_, windows) in zip(grouped.masks, group_windows((2, 2), (True, True))):
        torch.testing.assert_close(reference[windows], mask.expand(len(windows), -1, -1))


def test_logit_scale_is_clamped_at_log_100():
    attention = CosineAttention(2, num_heads=1)
    with torch.no_grad():
        attention.logit_scale.fill_(10.0)
        attention.cpb_mlp[-1].weight.zero_()
    q = torch.tensor([1.0, 0.0]).expand(1, 1, 1, 1, 2)
    k = torch.tensor([[1.0, 0.0], [0.0, 1.0]]).expand(1, 1, 1, 2, 2)
    v = torch.tensor([[1.0], [0.0]]).expand(1, 1, 1, 2, 1)
    out = attention(q, k, v, (1, 1), (1, 2))
    expected = 1 / (1 + math.exp(-100.0))  # cos 1 vs 0, times 100: the clamp, not e^10
    torch.testing.assert_close(out.flatten(), torch.tensor([expected]))


def _changed(module, inputs, index, tol=1e-6):
    """Boolean map of output tokens that change when one input token's k and v (qkv[..., C:]) change."""
    with torch.no_grad():
        base = module(*inputs)
        perturbed = [t.clone() for t in inputs]
        c = perturbed[0].shape[-1] // 3
        perturbed[0][(0, *index, slice(c, None))] += 5.0
        return (module(*perturbed) - base).abs().amax(-1)[0] > tol


def test_shifted_windows_do_not_attend_across_the_wrap():
    torch.manual_seed(0)
    module = WindowAttention(2, num_heads=2, window_size=4, shift=True)
    qkv = torch.randn(1, 8, 8, 3 * 8)
    changed = _changed(module, (qkv,), (0, 0))
    expected = torch.zeros(8, 8, dtype=torch.bool)
    expected[:2, :2] = True  # the shifted window holds rows/cols {6, 7, 0, 1}; only the (0..1, 0..1) region is shared
    assert torch.equal(changed, expected)
    unshifted = _changed(WindowAttention(2, 2, 4, shift=False), (qkv,), (0, 0))
    expected = torch.zeros(8, 8, dtype=torch.bool)
    expected[:4, :4] = True  # the whole first window
    assert torch.equal(unshifted, expected)


def test_shifted_stripes_and_anchors_do_not_mix_wrapped_regions():
    torch.manual_seed(0)
    module = AnchoredStripeAttention(2, num_heads=2, stripe_size=(4, 8), anchor_window_down_factor=2, shift=True)
    qkv, anchors = torch.randn(1, 8, 16, 3 * 8), torch.randn(1, 4, 8, 8)
    changed = _changed(module, (qkv, anchors), (0, 0))
    expected = torch.zeros(8, 16, dtype=torch.bool)
    expected[:2, :4] = True  # shifted stripe rows {6, 7, 0, 1} x cols {12..15, 0..3}; same region: rows 0-1, cols 0-3
    assert torch.equal(changed, expected)


def test_stripe_attention_3d_reaches_the_whole_stripe_through_anchors():
    torch.manual_seed(0)
    module = AnchoredStripeAttention(3, num_heads=1, stripe_size=(8, 4, 4), anchor_window_down_factor=2)
    qkv, anchors = torch.randn(1, 8, 8, 8, 3 * 4), torch.randn(1, 4, 4, 4, 4)
    changed = _changed(module, (qkv, anchors), (0, 0, 0))
    expected = torch.zeros(8, 8, 8, dtype=torch.bool)
    expected[:, :4, :4] = True
    assert torch.equal(changed, expected)


def test_stripe_shape_cycles_orientations():
    assert [stripe_shape((64, 128), k) for k in range(3)] == [(64, 128), (128, 64), (64, 128)]
    assert [stripe_shape((32, 16, 16), k) for k in range(4)] == [(32, 16, 16), (16, 32, 16), (16, 16, 32), (32, 16, 16)]
    # an anisotropic slice axis (0) left out of the rotation keeps its own size
    assert [stripe_shape((2, 8, 32), k, stripe_axes=(1, 2)) for k in range(2)] == [(2, 8, 32), (2, 32, 8)]


@pytest.mark.parametrize("spatial_dims,spatial", [(2, (8, 16)), (3, (8, 8, 8))])
def test_mixed_attention_and_layer_shapes(spatial_dims, spatial):
    stripe = (8, 4) if spatial_dims == 2 else (8, 4, 4)
    attention = MixedAttention(spatial_dims, 16, 2, 2, window_size=4, stripe_size=stripe, anchor_window_down_factor=2)
    assert attention.qkv.out_features == 48 and attention.anchor_proj.out_features == 8
    assert attention(torch.randn(2, *spatial, 16)).shape == (2, *spatial, 16)
    layer = MixedAttentionTransformerLayer(
        spatial_dims, 36, 2, 2, 4, stripe, 2, window_shift=True, stripe_shift=True, use_cab=True
    )
    x = torch.randn(2, *spatial, 36)
    assert layer(x).shape == x.shape
    assert [layer.mlp.linear1.in_features, layer.mlp.linear1.out_features] == [36, 72]


def test_cab_shape_and_widths():
    cab = ChannelAttentionBlock(3, 36)
    assert cab(torch.randn(1, 36, 4, 5, 6)).shape == (1, 36, 4, 5, 6)
    assert cab.body[0].out_channels == 9 and cab.body[3].fc[0].out_features == 2


def test_bad_block_arguments():
    with pytest.raises(ValueError, match="anchor_window_down_factor"):
        AnchoredStripeAttention(2, 2, (6, 8), anchor_window_down_factor=4)
    with pytest.raises(ValueError, match="num_heads_window"):
        MixedAttention(2, 18, 2, 3, 4, (8, 8))
    with pytest.raises(ValueError, match="spatial_dims"):
        CosineAttention(1, 2)


def test_position_bias_is_kept_without_autograd_until_the_weights_change():
    torch.manual_seed(0)
    attention = CosineAttention(3, num_heads=2)
    calls = []
    attention.cpb_mlp.register_forward_hook(lambda *_: calls.append(1))
    with torch.no_grad():
        first = attention.position_bias((4, 4, 2), (4, 4, 2), CPU)
        again = attention.position_bias((4, 4, 2), (4, 4, 2), CPU)
        assert len(calls) == 1 and torch.equal(first, again)
        attention.cpb_mlp[-1].weight.mul_(2.0)  # an in-place update, as an optimizer step makes
        changed = attention.position_bias((4, 4, 2), (4, 4, 2), CPU)
    assert len(calls) == 2 and not torch.equal(first, changed)
    with_grad = attention.position_bias((4, 4, 2), (4, 4, 2), CPU)  # training: always recomputed, differentiable
    assert len(calls) == 3 and with_grad.requires_grad
    torch.testing.assert_close(with_grad.detach(), changed)
