"""Support-to-query registration (SimpleITK): align the support image and mask onto each query, 2D or 3D."""

from monai_fewshot.registration.episode_alignment import AlignedEpisode, align_episode_batch
from monai_fewshot.registration.guided import RegistrationGuided
from monai_fewshot.registration.intensity_likelihood import (
    IntensityLikelihood,
    SupportIntensity,
    corrected_region,
    intensity_corrected_logits,
    is_solid,
    support_likelihood_ratio,
)
from monai_fewshot.registration.organ_location import OrganLocation, locate_organ
from monai_fewshot.registration.pairwise import DEFORMABLE_STAGES, RegistrationResult, demons_transform, register_support
from monai_fewshot.registration.parallel import register_pairs
from monai_fewshot.registration.support_registration import (
    INTENSITY_WEIGHT,
    SupportRegistration,
    intensity_corrected_registration,
)

__all__ = [
    "DEFORMABLE_STAGES",
    "INTENSITY_WEIGHT",
    "AlignedEpisode",
    "IntensityLikelihood",
    "OrganLocation",
    "RegistrationGuided",
    "RegistrationResult",
    "SupportIntensity",
    "SupportRegistration",
    "align_episode_batch",
    "corrected_region",
    "demons_transform",
    "intensity_corrected_registration",
    "intensity_corrected_logits",
    "is_solid",
    "locate_organ",
    "register_pairs",
    "register_support",
    "support_likelihood_ratio",
]
