from monai_fewshot.networks.backbones import BACKBONES, build_backbone, register_backbone
from monai_fewshot.networks.nets import (
    CATNet,
    CATNetOutput,
    ChannelPackedFewShot,
    FewShotWrapper,
    ResizedFewShot,
    SupportMaskCopy,
    catnet_light,
    catnet_paper,
)
