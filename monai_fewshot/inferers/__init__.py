from monai_fewshot.inferers.annotated_slices import (
    AnnotatedSegmentation,
    choose_label_value,
    segment_from_annotated_slices,
)
from monai_fewshot.inferers.painted_volume import confidence_path, propagation_report, segment_painted_volume
from monai_fewshot.inferers.propagation import Propagation, StopRule, propagate_annotation
from monai_fewshot.inferers.support_propagation import SEED_FRACTIONS, seed_slices, segment_from_support_volume
from monai_fewshot.inferers.slice_inferer import FewShotSliceInferer, chunk_assignment, nearest_assignment
from monai_fewshot.inferers.volume_segmentation import output_names, segment_volumes
from monai_fewshot.inferers.restoration_methods import NetworkRestorer, restoration_baselines
from monai_fewshot.inferers.volume_restoration import intensity_range, restore_volume
