from monai_fewshot.engines.checkpointing import (
    BestModelSaver,
    RandomStates,
    ResumableCheckpointing,
    latest_checkpoint,
    load_network_weights,
    load_submodule_weights,
    save_atomic,
)
from monai_fewshot.engines.episode_epoch import EpisodeEpochSetter
from monai_fewshot.engines.episode_batch import EPISODE_KEYS, prepare_episode_batch
from monai_fewshot.engines.episodic import EpisodicEvaluator, EpisodicTrainer
from monai_fewshot.engines.gradient_clipping import GradientClipping
from monai_fewshot.engines.propagation_evaluation import propagation_scores
from monai_fewshot.engines.protocol_evaluation import evaluate_protocol
from monai_fewshot.engines.restoration_evaluation import evaluate_restoration
