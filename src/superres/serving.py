"""A trained network as an MLflow Model: what MLflow's own tools register, load and serve.

Each training run logs its weights as a pyfunc Model of the run (:func:`log_model`; the runs table's
Models column), written as a model from code: loading it runs the three lines of :data:`MODEL_CODE`,
which import :class:`Upscaler`, and unpickles nothing. ``mlflow models serve -m
models:/superres-x2@champion`` then answers as ``superres upscale`` computes.

This module and :mod:`superres.tracking` are the two that import MLflow: :class:`Upscaler` must be an
MLflow class, and the inference code it runs is no concern of the stages that only track runs.
"""

from __future__ import annotations

import re
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any

import mlflow.pyfunc
import numpy as np
from mlflow.exceptions import MlflowException
from mlflow.models import Model, ModelSignature
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE
from mlflow.types import ParamSchema, ParamSpec, Schema, TensorSpec

from superres.inference import OVERLAP, TILE, for_inference, pick_device, super_resolve, super_resolve_tiled
from superres.interrupts import deferred
from superres.models.weights import load_weights
from superres.tracking import LOGGED_MODEL, Tracker

MODEL_CODE = """\
# The MLflow Model of a superres training run: superres.serving.Upscaler over the weights in artifacts/.
import mlflow.models

from superres.serving import Upscaler

mlflow.models.set_model(Upscaler())
"""


class Upscaler(mlflow.pyfunc.PythonModel):
    """A trained network as MLflow serves it: a batch of uint8 images (N x H x W x 3, one size per
    request) in, the upscaled uint8 images (N x sH x sW x 3) out, computed as ``superres upscale``
    computes them (the same precision policy, tile by tile with the same ``tile`` and ``overlap``,
    both parameters of the request; ``tile`` 0: the whole image at once)."""

    def load_context(self, context: Any) -> None:
        self.device = pick_device("auto")
        weights = load_weights(context.artifacts["weights"], self.device)
        self.net = for_inference(weights.build(self.device), weights.config.get("architecture"), self.device)

    def predict(self, context: Any, model_input: np.ndarray, params: dict[str, Any] | None = None) -> np.ndarray:
        params = {"tile": TILE, "overlap": OVERLAP, **(params or {})}
        images = np.asarray(model_input)
        if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
            raise MlflowException(f"expected uint8 RGB images, N x H x W x 3; got {images.dtype} {images.shape}",
                                  error_code=INVALID_PARAMETER_VALUE)
        tile, overlap = int(params["tile"]), int(params["overlap"])
        return np.stack([
            super_resolve_tiled(self.net, image, tile=tile, overlap=overlap, device=self.device) if tile
            else super_resolve(self.net, image, self.device)
            for image in images
        ])


def signature() -> ModelSignature:
    """uint8 images in and out (N x H x W x 3); ``tile`` and ``overlap`` as ``superres upscale`` has them."""
    image = np.dtype(np.uint8)
    return ModelSignature(inputs=Schema([TensorSpec(image, (-1, -1, -1, 3))]),
                          outputs=Schema([TensorSpec(image, (-1, -1, -1, 3))]),
                          params=ParamSchema([ParamSpec("tile", "long", TILE), ParamSpec("overlap", "long", OVERLAP)]))


def pinned_requirements() -> list[str]:
    """superres and what it installs, at the versions installed here (torch without its local build
    tag, as requirements.lock pins it)."""
    pins = {"superres": metadata.version("superres")}
    for requirement in metadata.requires("superres") or []:
        if "extra ==" in requirement:
            continue
        name = re.split(r"[\s\[<>=~!;]", requirement, maxsplit=1)[0]
        try:
            pins[name] = metadata.version(name).split("+")[0]
        except metadata.PackageNotFoundError:
            continue
    return [f"{name}=={version}" for name, version in pins.items()]


def log_model(tracker: Tracker, run_id: str, folder: str | Path) -> str:
    """Log the weights in ``folder`` (``weights.safetensors`` and ``config.json``) as the MLflow Model
    of run ``run_id`` in ``tracker``'s store (an :class:`Upscaler`, with its signature, an input example
    and the pinned requirements); returns its model id."""
    example = np.linspace(0, 255, 16 * 16 * 3).astype(np.uint8).reshape(1, 16, 16, 3)
    with tracker.default_store(), tempfile.TemporaryDirectory() as tmp, deferred():
        code = Path(tmp) / "upscaler.py"
        code.write_text(MODEL_CODE)
        info = Model.log(artifact_path=None, name=LOGGED_MODEL, flavor=mlflow.pyfunc, run_id=run_id,
                         python_model=str(code), artifacts={"weights": str(folder)}, signature=signature(),
                         input_example=example, pip_requirements=pinned_requirements())
    return info.model_id
