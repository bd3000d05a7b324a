from monai_fewshot.networks.nets.catnet import CATNet, CATNetOutput, catnet_light, catnet_paper
from monai_fewshot.networks.nets.grl import GRL, GRLStage, grl_base, grl_small, grl_tiny
