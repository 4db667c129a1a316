"""What the web app does with images, as plain functions the page calls and the tests call directly.

An upload arrives as bytes: it is checked against a size limit, then decoded by
:func:`superres.data.imageio.read_image` (which refuses too many pixels from the header, before
decoding). The image is upscaled by bicubic interpolation and by the chosen model; when the user
also gives the HR original, both are measured against it the way the literature does (PSNR and
SSIM on Y, ``scale`` pixels shaved).
"""

from __future__ import annotations

import io
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path, PurePath

import numpy as np
import torch
from PIL import Image
from torch import nn

from superres.data.degrade import modcrop
from superres.data.imageio import IMAGE_SUFFIXES, read_image
from superres.errors import InvalidImageError
from superres.inference import super_resolve, super_resolve_tiled
from superres.metrics import image_metrics
from superres.models import create_model
from superres.modelstore import StoredModel, list_models

MiB = 1024 * 1024
# The model runs tile by tile so memory stays bounded whatever the upload; the overlap hides the seams.
TILE, OVERLAP = 256, 32


@dataclass(frozen=True)
class Comparison:
    """Bicubic and model outputs (uint8 H x W x C) and, with an HR original, their metrics."""

    bicubic: np.ndarray
    sr: np.ndarray
    hr: np.ndarray | None
    metrics: dict[str, dict[str, float]] | None  # {"bicubic": {...}, "model": {...}}
    seconds: float


def find_models(models_dir: str | Path, seeds: tuple[int, ...] | None = None, *,
                include_baseline: bool = False) -> list[StoredModel]:
    """The trained models under ``models_dir``: every subfolder holding weights and a config, and every
    seed folder ``<arch>/seed<s>/`` of a seed in ``seeds`` (all seeds when None).

    Bicubic is left out unless ``include_baseline`` (the app always shows it as the baseline); a
    folder whose config cannot be read is skipped with a warning in the log.
    """
    found = list_models(Path(models_dir), seeds)
    return [m for m in found if include_baseline or m.architecture != "bicubic"]


def decode_upload(data: bytes, name: str, *, max_bytes: int, max_pixels: int) -> np.ndarray:
    """Decode an uploaded file to uint8 H x W x C, refusing it with a friendly message when it is
    larger than ``max_bytes`` or has more than ``max_pixels`` pixels (checked before decoding)."""
    if len(data) > max_bytes:
        raise InvalidImageError(
            f"{name} is {len(data) / MiB:.1f} MB, above the limit of {max_bytes / MiB:.1f} MB; "
            "upload a smaller file (crop it, or save it as JPEG)"
        )
    suffix = PurePath(name).suffix.lower()
    with tempfile.TemporaryDirectory(prefix="superres-upload-") as folder:
        path = Path(folder) / f"upload{suffix if suffix in IMAGE_SUFFIXES else '.img'}"
        path.write_bytes(data)
        try:
            image, _ = read_image(path, max_pixels=max_pixels, setting="superres app --max-pixels")
        except InvalidImageError as exc:  # it names the temporary file: name the upload instead
            raise InvalidImageError(str(exc).replace(str(path), name)) from None
    return image


def match_original(hr: np.ndarray, lr_shape: tuple[int, ...], scale: int) -> np.ndarray:
    """The HR original cut to ``scale`` times the LR size (a modcrop), with the LR's channels.

    Raises InvalidImageError when its size does not correspond to the LR image.
    """
    height, width = lr_shape[0] * scale, lr_shape[1] * scale
    if modcrop(hr, scale).shape[:2] != (height, width):
        raise InvalidImageError(
            f"the HR original is {hr.shape[1]} x {hr.shape[0]} pixels, but x{scale} of the "
            f"{lr_shape[1]} x {lr_shape[0]} image is {width} x {height}; give the original the image was shrunk from"
        )
    hr = modcrop(hr, scale)
    if hr.shape[2] != lr_shape[2]:  # compare gray with gray, colour with colour
        hr = np.repeat(hr, 3, axis=2) if hr.shape[2] == 1 else hr.mean(axis=2, keepdims=True).round().astype(np.uint8)
    return hr


def compare(model: nn.Module, scale: int, lr: np.ndarray, hr: np.ndarray | None = None,
            device: torch.device | None = None, tile: int = TILE) -> Comparison:
    """Upscale ``lr`` (uint8 H x W x C) by bicubic and by ``model`` (``tile`` x ``tile`` input pixels at a
    time); measure both against ``hr`` if given."""
    if hr is not None:
        hr = match_original(hr, lr.shape, scale)
    bicubic = super_resolve(create_model("bicubic", scale=scale), lr)
    start = time.perf_counter()
    sr = super_resolve_tiled(model, lr, tile=tile, overlap=OVERLAP, device=device)
    seconds = time.perf_counter() - start
    metrics = None
    if hr is not None:
        metrics = {"bicubic": image_metrics(bicubic, hr, scale), "model": image_metrics(sr, hr, scale)}
    return Comparison(bicubic, sr, hr, metrics, seconds)


def png_bytes(image: np.ndarray) -> bytes:
    """A uint8 H x W x C (C = 1 or 3) image encoded as PNG."""
    buffer = io.BytesIO()
    Image.fromarray(image[:, :, 0] if image.shape[2] == 1 else image).save(buffer, format="PNG")
    return buffer.getvalue()


def zoom(image: np.ndarray, centre: tuple[float, float], size: int, display: int) -> np.ndarray:
    """A ``size`` x ``size`` crop of ``image`` around ``centre`` (fractions of width and height),
    enlarged without smoothing to ``display`` pixels so individual pixels stay visible."""
    height, width = image.shape[:2]
    size = min(size, height, width)
    left = int(np.clip(round(centre[0] * width - size / 2), 0, width - size))
    top = int(np.clip(round(centre[1] * height - size / 2), 0, height - size))
    crop = image[top:top + size, left:left + size]
    crop = crop[:, :, 0] if crop.shape[2] == 1 else crop
    return np.asarray(Image.fromarray(crop).resize((display, display), Image.Resampling.NEAREST))
