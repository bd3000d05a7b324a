from monai_fewshot.metrics.comparison import PairedDifference, compare_tables, paired_difference
from monai_fewshot.metrics.fewshot_dice import FewShotScoreTable, VolumeScore, volume_scores
from monai_fewshot.metrics.protocol_dice import ProtocolDice
