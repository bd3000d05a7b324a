from monai_fewshot.networks.blocks.cmat import CMATBlock
from monai_fewshot.networks.blocks.masked_attention import MaskedCrossAttention
from monai_fewshot.networks.blocks.mife import MIFE, MIFEOutput, prior_mask
from monai_fewshot.networks.blocks.prototype import PrototypeSegmentation, masked_average_pooling, shot_prototype
from monai_fewshot.networks.blocks.attnconv import AttnConv
from monai_fewshot.networks.blocks.capped_conv import CappedConv
from monai_fewshot.networks.blocks.clo_block import CloAttention, CloBlock
from monai_fewshot.networks.blocks.convffn import ConvFFN
from monai_fewshot.networks.blocks.global_attention import PooledGlobalAttention
