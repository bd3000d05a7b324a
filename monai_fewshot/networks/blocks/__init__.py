from monai_fewshot.networks.blocks.cmat import CMATBlock
from monai_fewshot.networks.blocks.masked_attention import MaskedCrossAttention
from monai_fewshot.networks.blocks.local_prototypes import AdaptiveLocalPrototypes
from monai_fewshot.networks.blocks.mife import MIFE, MIFEOutput, prior_mask
from monai_fewshot.networks.blocks.prototype import PrototypeSegmentation, masked_average_pooling, shot_prototype
from monai_fewshot.networks.blocks.attnconv import AttnConv
from monai_fewshot.networks.blocks.capped_conv import CappedConv
from monai_fewshot.networks.blocks.clo_block import CloAttention, CloBlock
from monai_fewshot.networks.blocks.convffn import ConvFFN
from monai_fewshot.networks.blocks.global_attention import PooledGlobalAttention
from monai_fewshot.networks.blocks.anchored_stripe_attention import AnchoredStripeAttention, stripe_shape
from monai_fewshot.networks.blocks.channel_attention_block import ChannelAttentionBlock
from monai_fewshot.networks.blocks.cosine_attention import CosineAttention, relative_coordinates
from monai_fewshot.networks.blocks.mixed_attention import MixedAttention
from monai_fewshot.networks.blocks.transformer_layer import MixedAttentionTransformerLayer
from monai_fewshot.networks.blocks.shift_masks import ShiftMasks, group_windows, shift_masks
from monai_fewshot.networks.blocks.window_layout import WindowLayout, window_layout
from monai_fewshot.networks.blocks.window_attention import WindowAttention
