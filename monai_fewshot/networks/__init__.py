from monai_fewshot.networks.backbones import BACKBONES, build_backbone, register_backbone
from monai_fewshot.networks.nets import (
    CATNet,
    CATNetOutput,
    ChannelPackedFewShot,
    CloFormer,
    CloFormerUNet,
    FewShotWrapper,
    ResizedFewShot,
    SupportMaskCopy,
    catnet_light,
    catnet_paper,
    cloformer_s,
    cloformer_xs,
    cloformer_xxs,
)
