"""MONAI Label app of monai_fewshot: few-shot CAT-Net segmentation from the slices a user painted.

Start it (inside the label environment built by ``monai_fewshot/apps/setup_env.sh``)::

    monailabel start_server --app monai_fewshot/apps/fewshot_label --studies DIR \
        --conf zoo_source github --conf checkpoint PATH --host 127.0.0.1 --port 8000

or ``monai-fewshot label-app --studies DIR [--checkpoint PATH]``.

App config (``--conf KEY VALUE``):
    network: the registered few-shot network that serves ``support_image`` requests (``monai_fewshot.registry``:
        ``catnet``, the default, or ``alpnet``, or any network registered there).
    checkpoint: that network's weights as the bundle's training saves them (e.g. ``models/model.pt``, or
        ``models/alpnet/model_fold0.pt`` with ``network alpnet``); absent: the seeded initial weights.
    bundle: the catnet_fewshot bundle folder whose ``configs/inference.json`` defines the served network (read
        with MONAI's ``ConfigParser``: the network in the evaluator's working-size wrapper); its
        ``models/model.pt`` is the checkpoint when ``checkpoint`` is not given. Defaults to the package's bundle.
    label_name: name of the output segment. Defaults to ``organ``.
    slice_size: in-plane size the network sees, ``H,W``. Defaults to the bundle's working size.
"""

from __future__ import annotations

import logging
import os

from fastapi import HTTPException
from monailabel.interfaces.app import MONAILabelApp
from monailabel.interfaces.tasks.infer_v2 import InferTask

from monai_fewshot import __version__
from monai_fewshot.apps.fewshot_label.guard import (
    APP_SET_KEYS,
    contain_datastore,
    guard_endpoints,
    is_upload,
    remove_upload,
)
from monai_fewshot.apps.fewshot_label.infer import FewShotScribblesInfer
from monai_fewshot.registry import FEWSHOT_NETWORKS, trained_networks

logger = logging.getLogger(__name__)

MODEL_NAME = "catnet_fewshot"


class FewShotLabelApp(MONAILabelApp):
    """MONAI Label app with one ``scribbles`` infer task, :data:`MODEL_NAME`: the painted slices are the support."""

    def __init__(self, app_dir, studies, conf):
        self.checkpoint = conf.get("checkpoint") or None
        if not self.checkpoint and conf.get("bundle"):  # a MONAI bundle folder: its trained weights
            self.checkpoint = os.path.join(conf["bundle"], "models", "model.pt")
        self.label_name = conf.get("label_name", "organ")
        self.network = conf.get("network", "catnet")
        spec = FEWSHOT_NETWORKS.get(self.network)
        if spec is None or not spec.trained:
            raise ValueError(
                f"--conf network {self.network!r}: expected a registered network with weights, one of {trained_networks()}."
            )
        self.bundle = conf.get("bundle") or None
        size = conf.get("slice_size")
        self.working_size = tuple(int(s) for s in str(size).split(",")) if size else None
        super().__init__(
            app_dir=app_dir,
            studies=studies,
            conf=conf,
            name="monai_fewshot",
            description="Few-shot segmentation (CAT-Net): paint one or a few slices, get the whole volume",
            version=__version__,
        )
        from monailabel.app import app as server  # the FastAPI app that serves this instance
        from monailabel.config import settings

        guard_endpoints(server, self.datastore, settings.MONAI_LABEL_API_STR)

    def init_datastore(self):
        """monailabel's datastore for the studies folder, refusing ids and tags that are not plain names."""
        return contain_datastore(super().init_datastore())

    def init_infers(self) -> dict[str, InferTask]:
        task = FewShotScribblesInfer(self.checkpoint, {self.label_name: 1}, self.working_size, self.network, self.bundle)
        logger.info(f"{MODEL_NAME}: {task.weights}")
        return {MODEL_NAME: task}

    def infer(self, request, datastore=None):
        """:meth:`_checked_infer`; a failed request's uploaded files are removed (monailabel removes them only
        after a successful response)."""
        try:
            return self._checked_infer(request, datastore)
        except BaseException:
            remove_upload(request.get("label"))  # the guard refuses a client-set label path and image uploads
            raise

    def _checked_infer(self, request, datastore=None):
        """Check the request's model and image id (HTTP 404 for unknown ones, where the stock server answers 500),
        refuse server paths a client names, resolve ``support_image`` to its image and final label, then run the task.

        A client names images by datastore id only: a path (``image=/etc/passwd``, a NIfTI outside the studies
        folder) is answered 404 without being opened. ``label`` must be the label map uploaded with the request
        (the server's own temporary file), and ``support_image_path`` / ``support_label_path`` are set by the app
        alone; a client that sets them gets a 400.
        """
        model = request.get("model")
        if model not in self._infers:
            raise HTTPException(status_code=404, detail=f"unknown model {model!r}; this app serves {sorted(self._infers)}.")
        datastore = datastore if datastore else self.datastore()
        image = request.get("image")
        uri = datastore.get_image_uri(image) if isinstance(image, str) and image else ""
        if not uri:
            raise HTTPException(status_code=404, detail=f"image {image!r} is not in the datastore.")
        for key in APP_SET_KEYS:
            if key in request:
                raise HTTPException(
                    status_code=400, detail=f"{key} is set by the server; name a support by its datastore id in support_image."
                )
        label = request.get("label")
        if label and not is_upload(label):
            raise HTTPException(status_code=400, detail="label must be the label map uploaded with the request, not a path on the server.")
        request = {**request, "image": uri}
        support_id = str(request.get("support_image") or "").strip()
        if support_id:
            support_image = datastore.get_image_uri(support_id)
            if not support_image:
                raise HTTPException(status_code=404, detail=f"support_image {support_id!r} is not in the datastore.")
            support_label = datastore.get_label_uri(support_id, "final")
            if not support_label:
                raise HTTPException(
                    status_code=400, detail=f"support_image {support_id!r} has no saved (final) label to use as the support."
                )
            request = {**request, "support_image_path": support_image, "support_label_path": support_label}
        return super().infer(request, datastore)
