"""Few-shot infer task of the MONAI Label app: the slices a user painted are the support.

A ``scribbles`` task: MONAI Label's clients upload the user's label map with the request (3D Slicer's
scribbles panel uploads all painted segments). The painted mask of the chosen label value is carried slice by
slice through the image until the organ ends (:func:`monai_fewshot.inferers.propagate_annotation`); the
response names the slice to paint next, so that a user can paint it and run again. With ``support_image`` the
saved label of another datastore image is the support and the few-shot network segments every slice
(:func:`monai_fewshot.inferers.segment_from_annotated_slices`).
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import torch
from fastapi import HTTPException
from monailabel.interfaces.tasks.infer_v2 import InferType
from monailabel.tasks.infer.basic_infer import BasicInferTask

from monai_fewshot.inferers import propagate_annotation, segment_from_annotated_slices

__all__ = ["MAX_VOXELS", "FewShotScribblesInfer", "load_network", "read_volume"]

logger = logging.getLogger(__name__)

CONFIG_DEFAULTS = {
    "label_value": 0,  # painted value used as the support; 0: the largest painted value
    "batch_size": 8,  # query slices per forward pass (support_image only)
    "support_image": "",  # datastore id of another image whose saved (final) label is the support
}


def load_network(
    checkpoint: str | None,
    network_name: str = "catnet",
    bundle: str | Path | None = None,
    working_size: Sequence[int] | None = None,
    seed: int = 0,
) -> tuple[torch.nn.Module, str]:
    """The network the bundle's ``inference.json`` defines, read with MONAI's ``ConfigParser``: the registered
    few-shot network ``network_name`` (:mod:`monai_fewshot.registry`) in the working-size wrapper the evaluator
    runs it in (``ResizedFewShot``; slices of any size in, logits of that size out), with the weights of
    ``checkpoint`` loaded as the bundle loads them; the seeded initial weights when ``checkpoint`` is empty.

    Args:
        checkpoint: what the bundle's training saves (``model_fold{F}.pt``), or None / "".
        network_name: a registered few-shot network with weights.
        bundle: the catnet_fewshot bundle folder. Defaults to the package's.
        working_size: in-plane size the network sees; None: the bundle's (the network's registered size).
        seed: seeds the initial weights.

    Returns:
        the network in eval mode and a description of the weights.
    """
    from monai.bundle import ConfigParser

    from monai_fewshot.bundle_runner import BUNDLES

    root = Path(bundle) if bundle else BUNDLES / "catnet_fewshot"
    parser = ConfigParser()
    parser.read_config(str(root / "configs" / "inference.json"))
    parser.update({"bundle_root": str(root), "network_name": network_name, "checkpoint": checkpoint or "",
                   "device": "$torch.device('cpu')"})
    if working_size is not None:
        parser["working_size"] = [int(s) for s in working_size]
    torch.manual_seed(seed)
    packed = parser.get_parsed_content("network" if checkpoint else "network_def")  # "network": weights loaded
    weights = f"checkpoint {os.path.abspath(checkpoint)}" if checkpoint else f"initial weights (seed {seed}; no checkpoint configured)"
    return packed.network.eval(), f"{network_name}, {weights}"


MAX_VOXELS = 512 * 512 * 1024  # the largest volume the server reads (2^28 voxels)


def read_volume(path: str, what: str, shape: tuple[int, ...] | None = None) -> tuple[np.ndarray, np.ndarray | None, Any]:
    """A 3D volume as (array (X, Y, Z), affine, nibabel header); NIfTI through nibabel, other formats (NRRD from
    Slicer) through SimpleITK in the same voxel order.

    The header is checked before any voxel is read: a volume of more than :data:`MAX_VOXELS` voxels, or of
    another ``shape`` than the one expected (a label map must match its image), is refused, so that a small
    compressed upload that declares a huge grid costs nothing. Raises HTTP 400 for these and for an unreadable
    file.
    """

    def check(size: tuple[int, ...]) -> None:
        if int(np.prod(size, dtype=np.int64)) > MAX_VOXELS:
            raise HTTPException(status_code=400, detail=f"the {what} declares {size} voxels, more than the server reads ({MAX_VOXELS}).")
        if shape is not None and tuple(size) != tuple(shape):
            raise HTTPException(status_code=400, detail=f"the {what} has shape {tuple(size)}, the image {tuple(shape)}: they must match.")

    try:
        if path.endswith((".nii", ".nii.gz")):
            image = nib.load(path)
            check(tuple(image.shape))
            return np.asanyarray(image.dataobj), image.affine, image.header
        import SimpleITK as sitk

        reader = sitk.ImageFileReader()
        reader.SetFileName(path)
        reader.ReadImageInformation()
        check(tuple(reader.GetSize()))
        return sitk.GetArrayFromImage(reader.Execute()).transpose(), None, None
    except HTTPException:
        raise
    except Exception as error:  # noqa: BLE001 - any reader failure is a bad upload
        raise HTTPException(status_code=400, detail=f"cannot read the {what} ({os.path.basename(path)}): {error}") from error


def _int(value: Any, name: str) -> int:
    try:
        return int(str(value).strip() or 0)
    except ValueError as error:
        raise HTTPException(status_code=400, detail=f"config {name} must be an integer, got {value!r}.") from error


class FewShotScribblesInfer(BasicInferTask):
    """Segment the whole organ from the slice(s) the user painted in the image (propagation), or the image from
    another datastore image's saved label (``support_image``: CAT-Net, 1-way).

    The response's ``suggested_slice`` is the slice to paint next and ``confidence`` the per-slice confidence
    (:class:`~monai_fewshot.inferers.Propagation`).

    Request keys (besides ``image``): ``label`` (path of the uploaded label map, the image's shape), and the
    config keys of :data:`CONFIG_DEFAULTS`, which MONAI Label clients show as options. With ``support_image``
    the app adds ``support_image_path``/``support_label_path`` and the support comes from that volume.

    Bad input (no label, nothing painted, a label of another shape, an unreadable file) raises
    ``HTTPException(400)`` with the reason, which the server returns as is.

    Args:
        checkpoint: weights of the network (what the bundle's training saves); None or "" for the initial weights.
        labels: output label names to values. Defaults to ``{"organ": 1}``.
        working_size: in-plane size the network sees. Defaults to None: the bundle's working size (the network's
            registered one, 128 x 128 for CAT-Net).
        network: a registered few-shot network with weights (:mod:`monai_fewshot.registry`). Defaults to
            ``"catnet"``.
        bundle: the catnet_fewshot bundle whose ``inference.json`` defines the network. Defaults to the package's.
    """

    def __init__(
        self,
        checkpoint: str | None = None,
        labels: dict[str, int] | None = None,
        working_size: Sequence[int] | None = None,
        network: str = "catnet",
        bundle: str | Path | None = None,
    ):
        super().__init__(
            path=None,
            network=None,
            type=InferType.SCRIBBLES,
            labels=labels or {"organ": 1},
            dimension=3,
            description="Paint the organ on one or a few axial slices, get the whole organ and the slice to paint next",
            config=dict(CONFIG_DEFAULTS),
        )
        self.checkpoint = checkpoint
        self._lock = threading.Lock()
        self._network, self.weights = load_network(checkpoint, network, bundle, working_size)

    def is_valid(self) -> bool:
        return True

    def pre_transforms(self, data=None):
        return []

    def post_transforms(self, data=None):
        return []

    def run_inferer(self, data: dict[str, Any], convert_to_batch=True, device="cpu"):
        image_path = data.get("image")
        if not image_path or not os.path.exists(str(image_path)):
            raise HTTPException(status_code=404, detail=f"image {data.get('image')!r} not found.")
        image, affine, header = read_volume(str(image_path), "image")
        if image.ndim != 3:
            raise HTTPException(status_code=400, detail=f"the image must be a 3D volume, got shape {image.shape}.")

        support_image = support_label = None
        if data.get("support_image_path"):
            support_image, _, _ = read_volume(data["support_image_path"], "support image")
            support_label, _, _ = read_volume(data["support_label_path"], "support label", shape=support_image.shape)

        annotation = None
        if data.get("label"):
            annotation, label_affine, _ = read_volume(str(data["label"]), "label", shape=image.shape)
            if affine is not None and label_affine is not None and not np.allclose(label_affine, affine, atol=1e-3):
                logger.warning("the label's affine differs from the image's; voxels are matched by index")
        elif support_image is None:
            raise HTTPException(
                status_code=400,
                detail="no label map in the request: paint the organ on at least one slice and send it as 'label' "
                "(or set support_image to a datastore image with a saved label).",
            )

        label_value = _int(data.get("label_value", 0), "label_value") or None
        if support_image is None:
            return self._propagate(data, image, annotation, label_value, affine, header)
        batch_size = max(_int(data.get("batch_size", 8), "batch_size"), 1)
        device = device if str(device).startswith("cuda") and torch.cuda.is_available() else "cpu"
        try:
            with self._lock, torch.inference_mode():
                result = segment_from_annotated_slices(
                    image.astype(np.float32),
                    annotation,
                    self._network,
                    label_value=label_value,
                    slice_size=None,  # the bundle's network resizes to its working size
                    batch_size=batch_size,
                    support_image=support_image.astype(np.float32),
                    support_annotation=support_label,
                    device=device,
                )
        except ValueError as error:  # the input checks of segment_from_annotated_slices
            raise HTTPException(status_code=400, detail=str(error)) from error
        data["pred"] = result.mask
        data["affine"], data["header"] = affine, header
        data["result"] = {
            "method": "few-shot network",
            "label_value": result.label_value,
            "support_slices": result.support_slices,
            "predicted_slices": [result.predicted_slices[0], result.predicted_slices[-1]],
            "foreground_voxels": int(result.mask.sum()),
            "weights": self.weights,
        }
        return data

    def _propagate(self, data, image, annotation, label_value, affine, header):
        """The painted slices carried through the image; the response holds the confidence and the next slice."""
        spacing = tuple(float(z) for z in header.get_zooms()[:3]) if header is not None else None
        try:
            result = propagate_annotation(image.astype(np.float32), annotation, label_value, spacing=spacing)
        except ValueError as error:  # the input checks of propagate_annotation
            raise HTTPException(status_code=400, detail=str(error)) from error
        filled = np.flatnonzero(result.mask.any((0, 1)))
        data["pred"] = result.mask
        data["affine"], data["header"] = affine, header
        data["result"] = {
            "method": "propagation",
            "label_value": result.label_value,
            "support_slices": result.support_slices,
            "predicted_slices": [int(filled[0]), int(filled[-1])],
            "likely_extent": list(result.likely_extent),
            "suggested_slice": result.suggested_slice,
            "confidence": [round(float(c), 4) for c in result.confidence],
            "foreground_voxels": int(result.mask.sum()),
        }
        return data

    def writer(self, data: dict[str, Any], extension=None, dtype=None):
        """The mask as uint8 NIfTI with the image's affine (and header geometry)."""
        path = tempfile.NamedTemporaryFile(suffix=".nii.gz", delete=False).name
        affine = data["affine"] if data.get("affine") is not None else np.eye(4)
        header = data["header"].copy() if data.get("header") is not None else None
        mask = nib.Nifti1Image(data["pred"].astype(np.uint8), affine, header)
        mask.set_data_dtype(np.uint8)
        mask.header.set_slope_inter(1, 0)
        nib.save(mask, path)
        return path, data["result"]
