from monai_fewshot.networks.nets.catnet import CATNet, CATNetOutput, catnet_light, catnet_paper
from monai_fewshot.networks.nets.channel_packed import ChannelPackedFewShot
from monai_fewshot.networks.nets.resized import ResizedFewShot
from monai_fewshot.networks.nets.support_mask_copy import SupportMaskCopy
from monai_fewshot.networks.nets.wrapper import FewShotWrapper
