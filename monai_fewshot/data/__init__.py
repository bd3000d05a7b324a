"""Episodic few-shot data: dataset layouts, class splits, episode samplers, supervoxels, the evaluation protocol."""

from monai_fewshot.data.demo import DEMO_CLASSES, write_mni152_cohort
from monai_fewshot.data.episodes import EpisodeDataset
from monai_fewshot.data.example_volumes import EXAMPLE_ORGANS, EXAMPLE_VOLUMES, example_volume
from monai_fewshot.data.layout import (
    CHAOS_CLASSES,
    CMR_CLASSES,
    Volume,
    VolumeRecord,
    VolumeStore,
    load_volume,
    read_datalist,
    read_folder,
)
from monai_fewshot.data.protocol import (
    ChunkEpisode,
    EpisodeProtocol,
    Fold,
    ProtocolEpisode3D,
    N_VAL_QUERIES,
    lineage_folds,
    query_chunks,
    scored_slices,
    support_slices,
)
from monai_fewshot.data.interleaved import InterleavedEpisodes
from monai_fewshot.data.readers import SimpleITKReader
from monai_fewshot.data.restoration import (
    RESTORATION_SPLITS,
    restoration_patches,
    restoration_split,
    restoration_volumes,
)
from monai_fewshot.data.sampler import DistributedEpisodeSampler, Episode, EpisodeSampler, SlabRef
from monai_fewshot.data.splits import CHAOS_SETTING2_TEST_CLASSES, ClassSplit, excluded_slices
from monai_fewshot.data.supervoxels import SupervoxelCache, SupervoxelEpisodeSampler, compute_supervoxels

__all__ = [
    "CHAOS_CLASSES",
    "CHAOS_SETTING2_TEST_CLASSES",
    "CMR_CLASSES",
    "DEMO_CLASSES",
    "EXAMPLE_ORGANS",
    "EXAMPLE_VOLUMES",
    "ChunkEpisode",
    "ClassSplit",
    "DistributedEpisodeSampler",
    "Episode",
    "EpisodeDataset",
    "EpisodeProtocol",
    "EpisodeSampler",
    "InterleavedEpisodes",
    "Fold",
    "ProtocolEpisode3D",
    "RESTORATION_SPLITS",
    "SimpleITKReader",
    "SlabRef",
    "SupervoxelCache",
    "SupervoxelEpisodeSampler",
    "Volume",
    "VolumeRecord",
    "VolumeStore",
    "compute_supervoxels",
    "excluded_slices",
    "example_volume",
    "N_VAL_QUERIES",
    "lineage_folds",
    "load_volume",
    "query_chunks",
    "read_datalist",
    "read_folder",
    "restoration_patches",
    "restoration_split",
    "restoration_volumes",
    "scored_slices",
    "support_slices",
    "write_mni152_cohort",
]
