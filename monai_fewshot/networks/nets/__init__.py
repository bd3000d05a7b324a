from monai_fewshot.networks.nets.catnet import CATNet, CATNetOutput, catnet_light, catnet_paper
from monai_fewshot.networks.nets.channel_packed import ChannelPackedFewShot
