from monai_fewshot.utils.atomic import atomic_path, write_text_atomic
from monai_fewshot.utils.precision import native_bf16
