from monai_fewshot.networks.backbones import BACKBONES, build_backbone, register_backbone
from monai_fewshot.networks.nets import CATNet, CATNetOutput, catnet_light, catnet_paper
from monai_fewshot.networks.nets import GRL, grl_base, grl_small, grl_tiny
