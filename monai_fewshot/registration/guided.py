"""Registration-guided few-shot segmentation: align the support onto the query first, then let a network
correct what registration got wrong."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from monai_fewshot.networks.nets.wrapper import FewShotWrapper
from monai_fewshot.registration.episode_alignment import align_episode_batch
from monai_fewshot.registration.intensity_likelihood import intensity_corrected_logits, support_likelihood_ratio

__all__ = ["RegistrationGuided"]


class RegistrationGuided(FewShotWrapper):
    """Register each support shot onto the query, hand the aligned episode to ``network``, add the prior.

    With ``align`` the network sees the support image and mask warped onto the query's grid (affine, then
    demons: :func:`~monai_fewshot.registration.align_episode_batch`), so that support and query features
    correspond location by location. With ``prior_weight > 0`` the logit of the warped soft mask (averaged
    over shots) is added to every logit the network returns (final, per-step and initial), so the network
    learns a correction of the registration rather than the whole mask. With ``intensity_weight > 0`` the prior
    is the registered mask moved to where the support organ's intensities end on the query (the training-free
    :class:`~monai_fewshot.registration.SupportRegistration` with the same weight,
    :func:`~monai_fewshot.registration.intensity_corrected_logits`). A shot whose warped mask loses all its
    foreground (registered out of view) is handed over unaligned.

    The wrapper has no weights: its state dict is the network's, so ``model.pt`` files load either way.

    Args:
        network: ``network(query, support, support_mask)`` returning logits or an output with ``.logits``
            (e.g. :class:`~monai_fewshot.networks.CATNetOutput`, whose every field gets the prior).
        align: register the support onto the query before the network. Defaults to True.
        prior_weight: weight of the registration prior's logit (0 disables it). Defaults to 1.
        intensity_weight: weight of the intensity log-likelihood ratio that corrects the prior (0 disables it).
            Defaults to 0.
        ring: width of the organ's surroundings for the intensity model, a fraction of the image side.
        workers: worker processes for the batch's registrations. Defaults to 1.
        spacing: millimetres per spatial axis (default 1 per axis).
        registration: keyword arguments of :func:`~monai_fewshot.registration.register_support`
            (e.g. ``{"deformable": None}``), or ``seeds`` (:func:`~monai_fewshot.registration.align_episode_batch`:
            the prior averaged over several registrations).

    Shapes:
        query (B, C, *S), support (B, K, C, *S), support_mask (B, K, 1, *S) -> the network's output.
    """

    def __init__(
        self,
        network: nn.Module,
        align: bool = True,
        prior_weight: float = 1.0,
        intensity_weight: float = 0.0,
        ring: float = 0.05,
        workers: int = 1,
        spacing: Sequence[float] | None = None,
        registration: dict[str, Any] | None = None,
    ) -> None:
        if prior_weight < 0:
            raise ValueError(f"prior_weight must be >= 0, got {prior_weight}.")
        if intensity_weight < 0:
            raise ValueError(f"intensity_weight must be >= 0, got {intensity_weight}.")
        if prior_weight > 0 and not align:
            raise ValueError("prior_weight > 0 needs align=True: the prior is the registered support mask.")
        if intensity_weight > 0 and prior_weight == 0:
            raise ValueError("intensity_weight > 0 needs prior_weight > 0: the intensity ratio corrects the prior.")
        super().__init__(network)
        self.align, self.prior_weight, self.workers, self.spacing = align, float(prior_weight), int(workers), spacing
        self.intensity_weight, self.ring = float(intensity_weight), float(ring)
        self.registration = dict(registration or {})

    def forward(self, query: torch.Tensor, support: torch.Tensor, support_mask: torch.Tensor):
        if not self.align:
            return self.network(query, support, support_mask)
        episode = align_episode_batch(query, support, support_mask, self.workers, self.spacing, **self.registration)
        output = self.network(query, episode.support, episode.support_mask)
        if self.prior_weight == 0:
            return output
        if self.intensity_weight > 0:
            intensity = support_likelihood_ratio(query, support, support_mask, self.ring)
            prior = intensity_corrected_logits(episode.prior.mean(1), intensity, self.intensity_weight)
        else:
            prior = episode.prior_logit()
        prior = self.prior_weight * prior  # (B, 1, *S)
        if isinstance(output, torch.Tensor):
            return output + prior
        return type(output)(*(field + (prior if field.ndim == prior.ndim else prior[:, None]) for field in output))
