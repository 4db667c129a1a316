"""Upscaling throughput of every architecture, per engine: PyTorch in fp32 NCHW, PyTorch in the precision
``superres upscale`` picks (:func:`superres.precision.inference_precision`), and ONNX Runtime (CPU
provider) on the graph ``superres export`` writes.

Each case upscales one random image (2048 x 2048 at x2 and 1024 x 1024 at x4 by default) tile by tile
as ``superres upscale`` does by default (128-pixel tiles, 32 pixels of overlap), so the three engines
run the same tiles through the same blending, in one process, one after the other. The models have the
default profile's sizes and random weights (speed does not depend on the values). Model FLOPs are
counted on one tile by ``FlopCounterMode`` and multiplied by the number of tiles (edge tiles are
smaller: the count is an upper bound of at most a few percent).

ONNX Runtime is the optional ``export`` extra: without it the torch engines run and each ONNX Runtime row
says it was skipped.
"""

from __future__ import annotations

import copy
import logging
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from superres.bench.precision import mfu, tflops
from superres.bench.timing import Plan
from superres.bench.training import FP32_NCHW
from superres.errors import SuperresError
from superres.inference import Inference, iter_tiled_bands, tile_spans
from superres.models import create_model
from superres.precision import inference_precision

log = logging.getLogger(__name__)

TILE, OVERLAP = 128, 32  # superres upscale's defaults
ENGINES = ("torch fp32", "torch auto", "onnxruntime")


class OnnxModel(nn.Module):
    """An ONNX Runtime session (CPU provider, torch's thread count) that takes and gives NCHW tensors."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        (y,) = self.session.run(["output"], {"input": x.detach().cpu().numpy()})
        return torch.from_numpy(y)


def cases(plan: Plan) -> list[tuple[int, int]]:
    """(LR side, scale) of each upscale: 2048 x 2048 x2 and 1024 x 1024 x4 (64 and 32 with ``--quick``)."""
    return [(64, 2), (32, 4)] if plan.quick else [(2048, 2), (1024, 4)]


def tile_flops(model: nn.Module, side: int) -> int:
    """FLOPs of one forward of a ``side`` x ``side`` RGB tile."""
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.rand(1, 3, side, side))
    return int(counter.get_total_flops())


def _upscale(model: nn.Module, image: np.ndarray) -> float:
    """Seconds to upscale ``image`` tile by tile, as ``superres upscale`` does by default."""
    start = time.perf_counter()
    for _ in iter_tiled_bands(model, image, tile=TILE, overlap=OVERLAP, device=torch.device("cpu")):
        pass
    return time.perf_counter() - start


def measure_engines(archs: dict[str, dict[str, Any]], plan: Plan, peak: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per architecture, case and engine: seconds, output MP/s, model TFLOP/s and MFU (against the
    measured peak of the precision it ran in). ``archs`` maps each architecture to its constructor arguments."""
    from superres.export import INSTALL_EXPORT, ExportError, export_onnx, missing_onnx_packages

    missing = missing_onnx_packages()
    cpu = torch.device("cpu")
    rows = []
    with tempfile.TemporaryDirectory(prefix="superres-bench-") as tmp:
        for arch, config in archs.items():
            for side, scale in cases(plan):
                image = np.random.default_rng(0).integers(0, 256, (side, side, 3), dtype=np.uint8)
                tiles = len(tile_spans(side, TILE, OVERLAP)) ** 2
                base = {"arch": arch, "scale": scale, "input": f"{side}x{side}", "tiles": tiles}
                try:
                    torch.manual_seed(0)
                    model = create_model(arch, scale=scale, **config).eval()
                except SuperresError as exc:  # an architecture without this scale
                    rows.append({**base, "engine": "all", "error": str(exc)})
                    continue
                flops = tile_flops(model, min(side, TILE + 2 * OVERLAP)) * tiles
                auto = inference_precision(arch, cpu)
                # each engine its own copy: Inference converts a model's weights to its memory layout in place
                engines: dict[str, tuple[nn.Module, Any]] = {
                    "torch fp32": (Inference(copy.deepcopy(model), FP32_NCHW, cpu), FP32_NCHW),
                    "torch auto": (Inference(copy.deepcopy(model), auto, cpu), auto),
                }
                if missing:  # the `export` extra is not installed: the torch engines alone
                    rows.append({**base, "engine": "onnxruntime",
                                 "skipped": f"{', '.join(missing)} not installed: {INSTALL_EXPORT}"})
                else:
                    try:
                        path = export_onnx(model, Path(tmp) / f"{arch}_x{scale}.onnx")
                        engines["onnxruntime"] = (OnnxModel(path), FP32_NCHW)
                    except ExportError as exc:
                        rows.append({**base, "engine": "onnxruntime", "error": str(exc)})
                for engine, (net, precision) in engines.items():
                    _upscale(net, image[: TILE + 2 * OVERLAP, : TILE + 2 * OVERLAP])  # warm up on a tile or so
                    seconds = _upscale(net, image)
                    rows.append({**base, "engine": engine, "precision": precision.describe(), "seconds": seconds,
                                 "output_mp_per_s": (side * scale) ** 2 / 1e6 / seconds,
                                 "tflops": tflops(flops, seconds), "mfu": mfu(flops, seconds, precision, peak)})
                    log.info("bench: %s x%d %s: %.1f s", arch, scale, engine, seconds)
    return rows
