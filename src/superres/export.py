"""Export a model for other runtimes: ONNX with dynamic batch, height and width.

The graph takes ``input`` (N x 3 x h x w, float32 in [0, 1]) and gives ``output``
(N x 3 x scale*h x scale*w), as the PyTorch model does. The file is written atomically and
checked with ``onnx.checker``. :func:`check_onnx` runs it with onnxruntime on random input and
returns the largest difference from PyTorch.

The ONNX packages are the optional ``export`` extra: they are imported only inside the functions
that use them, and :func:`require_onnx` names the extra when one is missing.
"""

from __future__ import annotations

import importlib.util
import logging
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from superres.atomic import atomic_path
from superres.errors import SuperresError

log = logging.getLogger(__name__)

OPSET = 18
ONNX_PACKAGES = ("onnx", "onnxruntime", "onnxscript")  # the `export` extra; torch.onnx's exporter needs onnxscript
INSTALL_EXPORT = "pip install 'superres[export]' (in a checkout: pip install -e '.[export]')"


class ExportError(SuperresError):
    """A model cannot be exported to the requested format."""


def missing_onnx_packages() -> list[str]:
    """The packages of the ``export`` extra that are not installed (found without importing them)."""
    missing = []
    for name in ONNX_PACKAGES:
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            missing.append(name)
    return missing


def require_onnx(what: str) -> None:
    """Raise a :class:`SuperresError` naming the extra to install when an ONNX package is missing."""
    missing = missing_onnx_packages()
    if missing:
        raise SuperresError(f"{what} needs the ONNX packages ({', '.join(missing)} not installed): {INSTALL_EXPORT}")


def _summary(exc: Exception) -> str:
    """The line of an exporter error that says what went wrong (it wraps the cause in advice)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    if "## Exception summary" in lines:
        following = lines[lines.index("## Exception summary") + 1 :]
        if following:
            return following[0]
    return lines[0] if lines else type(exc).__name__


def export_onnx(model: nn.Module, path: str | Path, *, sample_size: int = 32) -> Path:
    """Write ``model`` as ONNX to ``path`` with dynamic batch, height and width axes."""
    require_onnx("ONNX export")
    import onnx

    path = Path(path)
    model = model.cpu().eval()
    sample = torch.rand(1, 3, sample_size, sample_size + 8)  # unequal sides: height and width stay distinct
    dims = {0: torch.export.Dim("batch", max=1024), 2: torch.export.Dim("height", min=4, max=65536),
            3: torch.export.Dim("width", min=4, max=65536)}
    # torch.onnx warns through logging about every optional torchvision operator it cannot register
    logging.getLogger("torch.onnx._internal.exporter._registration").setLevel(logging.ERROR)
    with atomic_path(path) as tmp:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the exporter's deprecation and tracer chatter
                program = torch.onnx.export(model, (sample,), dynamo=True, input_names=["input"],
                                            output_names=["output"], dynamic_shapes=(dims,),
                                            opset_version=OPSET, verbose=False)
            program.save(str(tmp), external_data=False)
            onnx.checker.check_model(str(tmp), full_check=True)
        except Exception as exc:  # the exporter raises many types; any of them means "cannot export"
            raise ExportError(f"{type(model).__name__} cannot be exported to ONNX with dynamic height and width: "
                              f"{_summary(exc)}") from exc
    log.info("exported %s to %s", type(model).__name__, path)
    return path


def check_onnx(model: nn.Module, path: str | Path, height: int = 23, width: int = 37, seed: int = 0) -> float:
    """Largest absolute difference between onnxruntime on ``path`` and ``model`` on one random
    N x 3 x ``height`` x ``width`` input (sides other than the export's, to exercise dynamic axes)."""
    require_onnx("The ONNX check")
    import onnxruntime

    x = torch.rand(1, 3, height, width, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        expected = model.cpu().eval()(x).numpy()
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (got,) = session.run(["output"], {"input": x.numpy()})
    if got.shape != expected.shape:
        raise ExportError(f"{path}: ONNX output shape {got.shape} differs from PyTorch's {expected.shape}")
    return float(np.abs(got - expected).max())
