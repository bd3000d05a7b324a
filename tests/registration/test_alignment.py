"""Episode alignment on a real CHAOS slice: the dictionary transform, the training-free method, the guided wrapper."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from monai_fewshot.networks import catnet_light
from monai_fewshot.networks.nets import SupportMaskCopy
from monai_fewshot.registration import (
    RegistrationGuided,
    SupportRegistration,
    align_episode_batch,
    intensity_corrected_logits,
    support_likelihood_ratio,
)
from monai_fewshot.transforms import AlignSupportd



def dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2 * float((a & b).sum()) / max(float(a.sum() + b.sum()), 1.0)


@pytest.fixture(scope="module")
def episode(liver_slice, known_warp):
    """A support slice with its liver mask, and the same slice under a known warp as the query (with its truth)."""
    image, mask = liver_slice
    query = known_warp(image, (1.0, 1.0), linear=True, seed=7)
    truth = known_warp(mask.astype(np.float32), (1.0, 1.0), linear=False, seed=7) > 0.5
    return {
        "query": torch.from_numpy(query)[None],
        "support": torch.from_numpy(image)[None, None],
        "support_mask": torch.from_numpy(mask.astype(np.float32))[None, None],
        "truth": truth,
    }


def test_aligned_episodes_keep_image_and_mask_together(episode):
    """A second channel holding the mask is warped exactly as the mask is: one transform moves both."""
    two_channels = {
        "query": torch.cat([episode["query"], torch.zeros_like(episode["query"])]),
        "support": torch.cat([episode["support"], 100 * episode["support_mask"]], dim=1),
        "support_mask": episode["support_mask"],
    }
    out = AlignSupportd()(two_channels)
    assert out["support"].shape == (1, 2, 256, 256)
    assert out["support_mask"].shape == out["support_prior"].shape == (1, 1, 256, 256)
    torch.testing.assert_close(out["support"][:, 1:] / 100, out["support_prior"], atol=1e-5, rtol=0)
    assert torch.equal(out["support_mask"], (out["support_prior"] >= 0.5).float())
    assert dice(out["support_mask"][0, 0].numpy() > 0, episode["truth"]) >= 0.9
    assert dice(episode["support_mask"][0, 0].numpy() > 0, episode["truth"]) < 0.8


def test_several_seeds_average_their_warped_masks_into_the_prior(episode):
    """With seeds (0, 1, 2) the prior is the mean of the three one-seed priors; image and mask stay the first seed's."""
    args = episode["query"][None], episode["support"][None], episode["support_mask"][None]
    single = [align_episode_batch(*args, seed=seed) for seed in (0, 1, 2)]
    several = align_episode_batch(*args, seeds=(0, 1, 2))
    assert not torch.equal(single[0].prior, single[1].prior)  # the seeds move the affine stage
    torch.testing.assert_close(several.prior, torch.stack([one.prior for one in single]).mean(0))
    assert torch.equal(several.support, single[0].support) and torch.equal(several.support_mask, single[0].support_mask)
    with pytest.raises(ValueError, match="at least one seed"):
        align_episode_batch(*args, seeds=())
    with pytest.raises(ValueError, match="seeds or seed, not both"):
        align_episode_batch(*args, seeds=(1,), seed=2)


def test_a_shot_registered_out_of_view_keeps_its_original_support():
    yy, xx = torch.meshgrid(torch.arange(48.0), torch.arange(48.0), indexing="ij")
    blob = lambda cy, cx: torch.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 60.0)  # noqa: E731
    query, support = blob(18.0, 18.0)[None, None], blob(26.0, 26.0)[None, None, None]
    mask = torch.zeros(1, 1, 1, 48, 48)
    mask[..., :4, :4] = 1.0  # the support moves 8 px towards this corner: it leaves the query's view
    episode = align_episode_batch(query, support, mask)
    assert episode.prior.max() < 0.5
    assert torch.equal(episode.support_mask, mask)
    assert torch.equal(episode.support, support)


def test_a_blank_query_slice_gets_an_empty_prediction_beside_a_registered_one(episode):
    """A volume's edge slices can be blank (one intensity): no organ there, and the batch's other episodes are
    registered as alone."""
    query = torch.cat([episode["query"][None], torch.zeros_like(episode["query"])[None]])
    support, mask = episode["support"][None].expand(2, -1, -1, -1, -1), episode["support_mask"][None].expand(2, -1, -1, -1, -1)
    logits = SupportRegistration()(query, support, mask)
    alone = SupportRegistration()(query[:1], support[:1], mask[:1])
    assert not (logits[1] > 0).any()
    torch.testing.assert_close(logits[:1], alone)
    aligned = align_episode_batch(query, support, mask)
    assert torch.equal(aligned.support[1], support[1]) and torch.equal(aligned.support_mask[1], mask[1])


def test_support_registration_predicts_the_warped_mask_in_2d_and_3d(episode, chaos_volume):
    method = SupportRegistration()
    logits = method(episode["query"][None], episode["support"][None], episode["support_mask"][None])
    assert logits.shape == (1, 1, 256, 256)
    assert dice(logits[0, 0].numpy() > 0, episode["truth"]) >= 0.9

    volume = torch.from_numpy(chaos_volume.image[:, 96:160, 96:160, 8:24].astype(np.float32))
    mask = torch.from_numpy((chaos_volume.label[96:160, 96:160, 8:24] == 1).astype(np.float32))[None]
    logits_3d = SupportRegistration(deformable=None)(volume[None], volume[None, None], mask[None, None])
    assert logits_3d.shape == (1, 1, 64, 64, 16)
    assert dice(logits_3d[0, 0].numpy() > 0, mask[0].numpy() > 0) >= 0.95  # a volume onto itself


def test_registration_guided_aligns_for_the_network_and_adds_the_prior(episode):
    query, support, mask = episode["query"][None], episode["support"][None], episode["support_mask"][None]
    aligned_only = RegistrationGuided(SupportMaskCopy(), prior_weight=0.0)(query, support, mask)
    unaligned = RegistrationGuided(SupportMaskCopy(), align=False, prior_weight=0.0)(query, support, mask)
    assert dice(aligned_only[0, 0].numpy() > 0, episode["truth"]) > dice(unaligned[0, 0].numpy() > 0, episode["truth"]) + 0.1

    torch.manual_seed(0)
    network = catnet_light(2).eval()
    guided = RegistrationGuided(network, prior_weight=2.0).eval()
    small = [torch.nn.functional.interpolate(x.flatten(0, -4), size=(64, 64)).view(*x.shape[:-2], 64, 64) for x in (query, support, mask)]
    with torch.no_grad():
        output = guided(*small)
        aligned = align_episode_batch(*small)
        plain = network(small[0], aligned.support, aligned.support_mask)
    prior = 2.0 * torch.logit(aligned.prior.mean(1).clamp(0.01, 0.99))
    torch.testing.assert_close(output.logits, plain.logits + prior)
    torch.testing.assert_close(output.iteration_logits, plain.iteration_logits + prior[:, None])
    torch.testing.assert_close(output.initial_logits, plain.initial_logits + prior)
    assert guided.state_dict().keys() == network.state_dict().keys()


def test_registration_guided_with_intensity_corrects_the_registered_prior(episode):
    """The prior becomes the training-free method's intensity-corrected logits; the network's output is added."""
    query, support, mask = episode["query"][None], episode["support"][None], episode["support_mask"][None]
    torch.manual_seed(0)
    network = catnet_light(2).eval()
    small = [torch.nn.functional.interpolate(x.flatten(0, -4), size=(64, 64)).view(*x.shape[:-2], 64, 64) for x in (query, support, mask)]
    with torch.no_grad():
        output = RegistrationGuided(network, intensity_weight=2.0).eval()(*small)
        aligned = align_episode_batch(*small)
        plain = network(small[0], aligned.support, aligned.support_mask)
    prior = intensity_corrected_logits(aligned.prior.mean(1), support_likelihood_ratio(*small), 2.0)
    torch.testing.assert_close(prior, SupportRegistration(intensity_weight=2.0)(*small))
    torch.testing.assert_close(output.logits, plain.logits + prior)
    torch.testing.assert_close(output.iteration_logits, plain.iteration_logits + prior[:, None])
    with pytest.raises(ValueError, match="intensity_weight must be >= 0"):
        RegistrationGuided(SupportMaskCopy(), intensity_weight=-1.0)
    with pytest.raises(ValueError, match="intensity_weight > 0 needs prior_weight > 0"):
        RegistrationGuided(SupportMaskCopy(), prior_weight=0.0, intensity_weight=1.0)
    with pytest.raises(ValueError, match="intensity_weight must be >= 0"):
        SupportRegistration(intensity_weight=-1.0)


def test_registration_guided_refuses_a_prior_without_alignment():
    with pytest.raises(ValueError, match="prior_weight > 0 needs align=True"):
        RegistrationGuided(SupportMaskCopy(), align=False, prior_weight=1.0)
    with pytest.raises(ValueError, match="prior_weight must be >= 0"):
        RegistrationGuided(SupportMaskCopy(), prior_weight=-1.0)
