"""From a high-resolution image to its low-resolution counterpart.

``modcrop`` trims HR so its sides are multiples of the scale; ``degrade`` shrinks it with the
MATLAB-compatible antialiased bicubic (the convention of the SR literature), rounds to 8 bits,
then optionally blurs, adds noise, drops colour and compresses as JPEG, in that order.
Everything is uint8 H x W x C at the edges, and seeded: the same image, parameters and seed
always give the same bytes.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image
from scipy.ndimage import gaussian_filter

from superres.data.resize import imresize
from superres.errors import ConfigError

SCALES = (2, 3, 4, 8)


def modcrop(image: np.ndarray, scale: int) -> np.ndarray:
    """Crop the bottom and right edges so height and width are multiples of ``scale``."""
    h, w = image.shape[:2]
    return image[: h - h % scale, : w - w % scale]


def bicubic_resize(image: np.ndarray, scale: float) -> np.ndarray:
    """uint8 H x W x C -> uint8, MATLAB bicubic by ``scale`` (antialiased when shrinking)."""
    x = torch.from_numpy(image.transpose(2, 0, 1).astype(np.float64))
    y = imresize(x, scale=scale)
    return y.round().clamp(0, 255).to(torch.uint8).numpy().transpose(1, 2, 0)


@dataclass(frozen=True)
class Degradation:
    """The ``prepare.degradation`` parameters, checked."""

    blur_sigma: float = 0.0
    noise_sigma: float = 0.0
    grayscale: bool = False
    jpeg_quality: int | None = None

    def __post_init__(self) -> None:
        if self.blur_sigma < 0 or self.noise_sigma < 0:
            raise ConfigError("prepare.degradation: blur_sigma and noise_sigma must be >= 0")
        if self.jpeg_quality is not None and not 1 <= self.jpeg_quality <= 95:
            raise ConfigError(f"prepare.degradation.jpeg_quality must be null or 1..95, got {self.jpeg_quality}")

    @classmethod
    def from_params(cls, params: dict[str, Any] | None) -> Degradation:
        params = dict(params or {})
        known = {"blur_sigma", "noise_sigma", "grayscale", "jpeg_quality"}
        unknown = sorted(set(params) - known)
        if unknown:
            raise ConfigError(
                f"prepare.degradation: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
            )
        return cls(**params)


def check_scale(scale: int) -> int:
    if scale not in SCALES:
        raise ConfigError(f"prepare.scale must be one of {SCALES}, got {scale!r}")
    return scale


def degrade(hr: np.ndarray, scale: int, degradation: Degradation = Degradation(), seed: int = 0) -> np.ndarray:
    """Make the LR image of a modcropped uint8 HR image (H x W x C, C = 1 or 3)."""
    lr = bicubic_resize(hr, 1.0 / scale)
    if degradation.blur_sigma > 0:
        lr = np.stack([gaussian_filter(lr[..., c].astype(np.float64), degradation.blur_sigma, mode="reflect")
                       for c in range(lr.shape[2])], axis=-1)
        lr = np.clip(np.round(lr), 0, 255).astype(np.uint8)
    if degradation.noise_sigma > 0:
        rng = np.random.default_rng(seed)
        noisy = lr.astype(np.float64) + rng.normal(0.0, degradation.noise_sigma, lr.shape)
        lr = np.clip(np.round(noisy), 0, 255).astype(np.uint8)
    if degradation.grayscale and lr.shape[2] == 3:
        gray = lr.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
        lr = np.repeat(np.clip(np.round(gray), 0, 255).astype(np.uint8)[..., None], 3, axis=2)
    if degradation.jpeg_quality is not None:
        buffer = io.BytesIO()
        picture = Image.fromarray(lr[..., 0] if lr.shape[2] == 1 else lr)
        picture.save(buffer, format="JPEG", quality=degradation.jpeg_quality)
        decoded = np.asarray(Image.open(buffer))
        lr = decoded[..., None] if decoded.ndim == 2 else decoded
    return lr
