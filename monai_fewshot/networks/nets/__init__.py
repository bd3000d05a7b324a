from monai_fewshot.networks.nets.alpnet import ALPNet, alpnet_light
from monai_fewshot.networks.nets.catnet import CATNet, CATNetOutput, catnet_light, catnet_paper
from monai_fewshot.networks.nets.channel_packed import ChannelPackedFewShot
from monai_fewshot.networks.nets.cloformer import (
    CLOFORMER_VARIANTS,
    CloFormer,
    cloformer_s,
    cloformer_xs,
    cloformer_xxs,
)
from monai_fewshot.networks.nets.cloformer_unet import CloFormerUNet
from monai_fewshot.networks.nets.resized import ResizedFewShot
from monai_fewshot.networks.nets.support_mask_copy import SupportMaskCopy
from monai_fewshot.networks.nets.wrapper import FewShotWrapper
from monai_fewshot.networks.nets.grl import GRL, GRLStage, grl_base, grl_small, grl_tiny
