"""Apply a super-resolution model to whole images, at once or tile by tile.

Models see 3-channel NCHW float tensors in [0, 1]. A grayscale image is repeated on three
channels on the way in and averaged back to one on the way out, so it stays grayscale.

Tiled inference (:func:`iter_tiled_bands`) bounds memory by the tile, not by the image: the LR
image is cut into a grid of ``tile`` x ``tile`` cores, each given ``overlap`` pixels of context from
its neighbours (at the image border the model pads exactly as it would for the whole image, so
border pixels match an untiled run). The SR tiles are blended with a separable linear-ramp
window across every overlap, accumulated and normalised, so there are no seams. Output rows are
accumulated one band of tiles at a time and handed out as uint8 as soon as no later tile touches
them: the float accumulator never holds more than about two tile rows of the output.
"""

from __future__ import annotations

import itertools
import logging
import math
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch
from torch import nn

from superres.errors import ConfigError
from superres.precision import Precision, inference_precision

log = logging.getLogger(__name__)


def pick_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA, then Apple's MPS, then the CPU; any other name is used as given."""
    if name != "auto":
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


class Inference(nn.Module):
    """A model as it infers: in eval mode on its device, in the memory layout and precision of
    ``precision`` (bf16 autocast or fp32), returning fp32 NCHW whatever it computed in, so that the
    rounding to uint8 and the metrics stay in fp32. The model itself is moved and converted (as
    ``nn.Module.to`` does), not copied."""

    def __init__(self, model: nn.Module, precision: Precision, device: torch.device) -> None:
        super().__init__()
        self.model = model.to(device, memory_format=precision.memory_format).eval()
        self.precision, self.device = precision, device

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with self.precision.autocast(self.device):
            y = self.model(x.contiguous(memory_format=self.precision.memory_format))
        return y.float().contiguous()


def for_inference(model: nn.Module, architecture: str | None, device: torch.device,
                  precision: str = "auto") -> Inference:
    """``model`` wrapped to infer on ``device`` in the precision that :func:`superres.precision.inference_precision`
    picks for ``architecture`` (``precision``: auto | bf16 | fp32); logged once."""
    chosen = inference_precision(architecture, device, precision)
    log.info("%s infers in %s (%s)", architecture or "the model", chosen.describe(), chosen.reason)
    return Inference(model, chosen, device)


def to_tensor(image: np.ndarray) -> torch.Tensor:
    """uint8 H x W x C (C = 1 or 3) -> float32 C x H x W in [0, 1]."""
    if image.ndim == 2:
        image = image[:, :, None]
    return torch.from_numpy(image.transpose(2, 0, 1).astype(np.float32)).div_(255.0)


def to_uint8(tensor: torch.Tensor) -> np.ndarray:
    """float C x H x W in [0, 1] -> uint8 H x W x C, rounded half to even and clipped."""
    array = tensor.detach().clamp(0, 1).mul(255.0).round().to(torch.uint8).cpu().numpy()
    return array.transpose(1, 2, 0)


TILE, OVERLAP = 128, 32  # `superres upscale`'s defaults: input pixels per tile, and the context around it
_CHUNK_ROWS = 128  # output rows normalised and handed out at once by iter_tiled_bands


def _model_device(model: nn.Module) -> torch.device:
    tensors = [*model.parameters(), *model.buffers()]
    return tensors[0].device if tensors else torch.device("cpu")


def _forward(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """C x h x w (C = 1 or 3) -> C x H x W through ``model``, gray kept gray."""
    channels = x.shape[0]
    if channels == 1:
        x = x.expand(3, -1, -1)
    y = model(x.unsqueeze(0)).squeeze(0)
    if channels == 1:
        y = y.mean(dim=0, keepdim=True)
    return y


@torch.no_grad()
def super_resolve(model: nn.Module, image: np.ndarray, device: torch.device | None = None) -> np.ndarray:
    """Upscale one uint8 H x W x C image (C = 1 or 3) with ``model``; returns uint8 H' x W' x C."""
    device = device or _model_device(model)
    return to_uint8(_forward(model, to_tensor(image).to(device)))


def tile_spans(size: int, tile: int, overlap: int) -> list[tuple[int, int, int, int]]:
    """Cut ``size`` pixels into cores of at most ``tile``; each span is ``(start, stop, core_start,
    core_stop)`` where ``start:stop`` is the core widened by ``overlap`` on each side, within the image."""
    if tile < 1 or overlap < 0:
        raise ConfigError(f"--tile must be at least 1 and --overlap at least 0, got {tile} and {overlap}")
    count = math.ceil(size / tile)
    cuts = [round(i * size / count) for i in range(count + 1)]  # even cores, none much smaller than the rest
    return [(max(a - overlap, 0), min(b + overlap, size), a, b) for a, b in itertools.pairwise(cuts)]


def _ramp(span: tuple[int, int, int, int], scale: int) -> np.ndarray:
    """1-D blending weights of one SR span: 1 over the core, falling linearly to 0 across the middle
    half of each overlap shared with a neighbour (the outer half, whose context is short, is not
    used). Over an overlap the two neighbours' ramps sum to one; every core pixel has weight > 0."""
    start, stop, core_start, core_stop = span
    positions = np.arange(start * scale, stop * scale, dtype=np.float64) + 0.5
    weight = np.ones_like(positions)
    if start < core_start:  # a neighbour before
        half = (core_start - start) * scale / 2
        weight = np.minimum(weight, np.clip((positions - core_start * scale + half) / (2 * half), 0, 1))
    if core_stop < stop:  # a neighbour after
        half = (stop - core_stop) * scale / 2
        weight = np.minimum(weight, np.clip((core_stop * scale + half - positions) / (2 * half), 0, 1))
    return weight.astype(np.float32)


def _total_weight(spans: list[tuple[int, int, int, int]], size: int, scale: int) -> np.ndarray:
    """Sum of the 1-D windows of all ``spans`` at each of the ``size * scale`` SR positions."""
    total = np.zeros(size * scale, np.float32)
    for span in spans:
        total[span[0] * scale : span[1] * scale] += _ramp(span, scale)
    return total


def _normalised(acc: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """C x h x W float accumulator / its weights -> uint8 h x W x C, rounded as :func:`to_uint8`.
    Works in place: ``acc`` is spent."""
    np.divide(acc, weight, out=acc)
    np.clip(acc, 0, 1, out=acc)
    acc *= 255.0
    np.rint(acc, out=acc)
    return np.ascontiguousarray(acc.astype(np.uint8).transpose(1, 2, 0))


@torch.no_grad()
def iter_tiled_bands(
    model: nn.Module,
    image: np.ndarray,
    *,
    tile: int,
    overlap: int,
    device: torch.device | None = None,
    on_tile: Callable[[], object] | None = None,
) -> Iterator[tuple[int, np.ndarray]]:
    """Upscale a uint8 H x W x C image tile by tile; yields ``(first_row, band)`` pairs whose uint8
    ``h x W' x C`` bands, stacked in order, make the whole SR image. ``on_tile`` is called after
    each tile (a progress bar's ``update``)."""
    device = device or _model_device(model)
    height, width = image.shape[:2]
    rows, cols = tile_spans(height, tile, overlap), tile_spans(width, tile, overlap)
    band = max(stop - start for start, stop, _, _ in rows)  # LR rows of the tallest tile row
    scale, acc_top = 0, 0  # acc_top: the output row acc[:, 0] stands for, the top of the current tile row
    acc = row_weight = col_weight = np.empty(0, np.float32)
    for r, row in enumerate(rows):
        for col in cols:
            x = to_tensor(image[row[0] : row[1], col[0] : col[1]]).to(device)
            y = _forward(model, x).float().cpu().numpy()
            if not scale:
                scale = y.shape[1] // x.shape[1]
                if scale < 1 or y.shape[1] != scale * x.shape[1] or y.shape[2] != scale * x.shape[2]:
                    raise ConfigError(f"the model maps a {tuple(x.shape[1:])} tile to {tuple(y.shape[1:])}, "
                                      "not an integer upscale: it cannot run tile by tile")
                acc = np.zeros((y.shape[0], band * scale, width * scale), np.float32)
                # The windows are outer products, so their sum is too: one weight per row, one per column.
                row_weight = _total_weight(rows, height, scale)[:, None]
                col_weight = _total_weight(cols, width, scale)[None, :]
            y *= np.outer(_ramp(row, scale), _ramp(col, scale))
            top, left = row[0] * scale - acc_top, col[0] * scale
            acc[:, top : top + y.shape[1], left : left + y.shape[2]] += y
            if on_tile is not None:
                on_tile()
        done = rows[r + 1][0] * scale if r + 1 < len(rows) else height * scale  # no later tile reaches above
        finished, carried = done - acc_top, row[1] * scale - done
        for start in range(0, finished, _CHUNK_ROWS):  # a few rows at a time: small temporaries
            stop = min(start + _CHUNK_ROWS, finished)
            weight = row_weight[acc_top + start : acc_top + stop] * col_weight
            yield acc_top + start, _normalised(acc[:, start:stop], weight)
        if finished > 0:
            acc[:, :carried] = acc[:, finished : finished + carried]
            acc[:, carried:] = 0
            acc_top = done


def super_resolve_tiled(model: nn.Module, image: np.ndarray, **options: Any) -> np.ndarray:
    """:func:`super_resolve` tile by tile, ``options`` (``tile``, ``overlap``, ``device``, ``on_tile``) as
    for :func:`iter_tiled_bands`: the same uint8 result within 1/255 when half the ``overlap`` covers
    the model's receptive field, seam-free in any case."""
    return np.concatenate([band for _, band in iter_tiled_bands(model, image, **options)], axis=0)


@torch.no_grad()
def measure_latency(model: nn.Module, device: torch.device, size: int = 256, repeats: int = 5) -> float:
    """Median seconds to upscale one ``size`` x ``size`` RGB input on ``device`` (after a warm-up)."""
    model = model.to(device).eval()
    x = torch.rand(1, 3, size, size, device=device)
    timings = []
    for i in range(repeats + 1):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        model(x)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if i:  # the first call warms up
            timings.append(time.perf_counter() - start)
    return float(np.median(timings))
