from monai_fewshot.metrics.comparison import PairedDifference, compare_tables, paired_difference
from monai_fewshot.metrics.fewshot_dice import FewShotScoreTable, VolumeScore, volume_scores
from monai_fewshot.metrics.protocol_dice import ProtocolDice
from monai_fewshot.metrics.whole_organ import copy_over_extent, middle_slice, paint_slices, volume_dice
