from monai_fewshot.metrics.fewshot_dice import FewShotScoreTable, VolumeScore, volume_scores
from monai_fewshot.metrics.protocol_dice import ProtocolDice
