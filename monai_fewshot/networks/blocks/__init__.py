from monai_fewshot.networks.blocks.cmat import CMATBlock
from monai_fewshot.networks.blocks.masked_attention import MaskedCrossAttention
from monai_fewshot.networks.blocks.mife import MIFE, MIFEOutput, prior_mask
from monai_fewshot.networks.blocks.prototype import PrototypeSegmentation, masked_average_pooling, shot_prototype
