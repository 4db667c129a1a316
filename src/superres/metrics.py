"""Image-quality metrics computed the way the SR literature reports them.

Conventions, as in the MATLAB evaluation code released with the SR papers (SRCNN, VDSR, EDSR...):

* images are compared as 8-bit values, ``[0, 255]``, computed in float64;
* ``shave`` pixels are cropped from every border before measuring (usually ``shave = scale``),
  because the borders of an upscaled image depend on the padding more than on the method;
* the "Y" metrics use the luma of ITU-R BT.601 in studio range ``[16, 235]``
  (MATLAB's ``rgb2ycbcr``), not rounded, and PSNR keeps ``data_range = 255``;
* SSIM is Wang et al. (2004) with an 11x11 Gaussian window, ``sigma = 1.5``, population
  covariances and ``data_range = 255``, via :func:`skimage.metrics.structural_similarity`
  (its ``reflect``-filtered map with the window radius cropped equals MATLAB's ``valid``
  filtering); an RGB SSIM is the mean of the per-channel SSIMs.

Images are numpy arrays ``HW``, ``HW1`` or ``HWC`` (RGB), at the file edge of the project.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from skimage.metrics import structural_similarity

from superres.errors import ConfigError, InvalidImageError

__all__ = ["METRICS", "aggregate", "image_metrics", "json_safe", "psnr", "rgb_to_y", "ssim"]

METRICS = ("psnr_y", "ssim_y", "psnr_rgb", "mae", "mse")  # the keys of image_metrics, in its order

# ITU-R BT.601 luma for R, G, B in [0, 1], giving Y in [16, 235].
_Y_WEIGHTS = np.array([65.481, 128.553, 24.966], dtype=np.float64)
_Y_OFFSET = 16.0

# skimage's window with gaussian_weights=True, sigma=1.5: 2 * int(3.5 * 1.5 + 0.5) + 1 = 11.
_SSIM_SIGMA = 1.5
_SSIM_WINDOW = 11


def _as_image(img: np.ndarray, name: str) -> np.ndarray:
    """``img`` as float64, checked to be HW, HW1 or HW3."""
    arr = np.asarray(img)
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (1, 3)):
        raise InvalidImageError(
            f"{name}: expected an HW, HW1 or HW3 (RGB) image, got shape {arr.shape}"
        )
    if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise InvalidImageError(f"{name}: expected a numeric image, got dtype {arr.dtype}")
    return arr.astype(np.float64)


def _prepare(
    sr: np.ndarray, hr: np.ndarray, shave: int, y_channel: bool, min_size: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """Check a pair, crop ``shave`` pixels off every border, optionally keep Y only."""
    a = _as_image(sr, "sr")
    b = _as_image(hr, "hr")
    if a.shape != b.shape:
        raise InvalidImageError(
            f"images differ in shape: sr is {a.shape}, hr is {b.shape}"
        )
    if isinstance(shave, bool) or not isinstance(shave, (int, np.integer)) or shave < 0:
        raise ConfigError(f"shave must be a non-negative integer, got {shave!r}")
    h, w = a.shape[:2]
    if h - 2 * shave < min_size or w - 2 * shave < min_size:
        if min_size <= 1:
            raise InvalidImageError(
                f"image of {h}x{w} is too small to shave {shave} pixels from each border"
            )
        raise InvalidImageError(
            f"image of {h}x{w} is too small: after shaving {shave} pixels from each border "
            f"it must be at least {min_size}x{min_size}"
        )
    if shave:
        a = a[shave:-shave, shave:-shave]
        b = b[shave:-shave, shave:-shave]
    if y_channel:
        a = rgb_to_y(a)
        b = rgb_to_y(b)
    return a, b


def rgb_to_y(img: np.ndarray) -> np.ndarray:
    """BT.601 luma of an RGB image in ``[0, 255]``, in ``[16, 235]`` (MATLAB's ``rgb2ycbcr``).

    ``Y = (65.481 R + 128.553 G + 24.966 B) / 255 + 16`` for R, G, B in ``[0, 255]``, in float64
    and not rounded. A one-channel image (``HW`` or ``HW1``) is already gray: its values are
    returned unchanged. The result is always ``HW`` float64.
    """
    arr = _as_image(img, "rgb_to_y")
    if arr.ndim == 2:
        return arr
    if arr.shape[2] == 1:
        return arr[:, :, 0]
    return arr @ _Y_WEIGHTS / 255.0 + _Y_OFFSET


def psnr(
    sr: np.ndarray,
    hr: np.ndarray,
    *,
    shave: int = 0,
    y_channel: bool = False,
    data_range: float = 255.0,
) -> float:
    """Peak signal-to-noise ratio in dB: ``10 log10(data_range^2 / MSE)``.

    ``sr`` and ``hr`` are uint8 (or float in ``[0, 255]``) images of the same shape, HW, HW1 or
    HWC. ``shave`` pixels are cropped from every border first; with ``y_channel`` only the
    BT.601 luma is compared (still with ``data_range`` 255). Identical images give ``math.inf``.

    Raises:
        InvalidImageError: the shapes differ, or the image is no larger than ``2 * shave``.
    """
    a, b = _prepare(sr, hr, shave, y_channel)
    mse = float(np.mean((a - b) ** 2))
    if mse == 0:
        return math.inf
    return 10.0 * math.log10(data_range**2 / mse)


def ssim(sr: np.ndarray, hr: np.ndarray, *, shave: int = 0, y_channel: bool = False) -> float:
    """Structural similarity (Wang et al. 2004) as the SR literature reports it.

    Same inputs as :func:`psnr`. Computed by :func:`skimage.metrics.structural_similarity` with
    ``gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255`` on float64
    values in ``[0, 255]``; an RGB image gives the mean SSIM of its three channels.

    Raises:
        InvalidImageError: the shapes differ, or the image is smaller than the 11x11 window
            after ``shave``.
    """
    a, b = _prepare(sr, hr, shave, y_channel, min_size=_SSIM_WINDOW)
    if a.ndim == 3 and a.shape[2] == 1:
        a, b = a[:, :, 0], b[:, :, 0]
    return float(
        structural_similarity(
            a,
            b,
            gaussian_weights=True,
            sigma=_SSIM_SIGMA,
            use_sample_covariance=False,
            data_range=255.0,
            channel_axis=-1 if a.ndim == 3 else None,
        )
    )


def image_metrics(sr: np.ndarray, hr: np.ndarray, scale: int) -> dict[str, float]:
    """All metrics of one super-resolved image against its ground truth.

    ``sr`` and ``hr`` are uint8 images, HWC RGB or HW / HW1 gray: quantise the model's output to
    8 bits first, as the literature does. Every metric shaves ``scale`` pixels from each border.

    Returns ``psnr_y``, ``ssim_y`` (BT.601 luma), ``psnr_rgb`` (all channels; for a gray image,
    the gray channel, so it equals ``psnr_y``), and ``mae`` and ``mse`` over all channels of
    the values scaled to ``[0, 1]``.

    Raises:
        InvalidImageError: the images are not uint8, differ in shape, or are too small for
            the shave and the SSIM window.
        ConfigError: ``scale`` is not a non-negative integer.
    """
    for name, img in (("sr", sr), ("hr", hr)):
        dtype = np.asarray(img).dtype
        if dtype != np.uint8:
            raise InvalidImageError(
                f"image_metrics: {name} must be a uint8 image, got {dtype}; "
                "round and clip the output to 8 bits first"
            )
    shave = scale
    a, b = _prepare(sr, hr, shave, y_channel=False)
    diff = (a - b) / 255.0
    return {
        "psnr_y": psnr(sr, hr, shave=shave, y_channel=True),
        "ssim_y": ssim(sr, hr, shave=shave, y_channel=True),
        "psnr_rgb": psnr(sr, hr, shave=shave),
        "mae": float(np.mean(np.abs(diff))),
        "mse": float(np.mean(diff**2)),
    }


def aggregate(per_image: Sequence[Mapping[str, float]]) -> dict[str, float]:
    """The mean of each metric over images.

    Plain arithmetic means, as papers report (not the PSNR of the mean MSE). A PSNR of
    ``inf`` (an image reproduced exactly) makes the mean ``inf``: it is kept, not skipped, so
    that a perfect image is visible in the result; :func:`json_safe` writes it as ``"inf"``.

    Raises:
        ConfigError: ``per_image`` is empty (no images were evaluated).
        ValueError: the dictionaries do not all have the same keys.
    """
    if len(per_image) == 0:
        raise ConfigError("no per-image metrics to aggregate: the evaluation saw no images")
    keys = list(per_image[0])
    for i, metrics in enumerate(per_image):
        if set(metrics) != set(keys):
            raise ValueError(
                f"per-image metrics differ in keys: image 0 has {sorted(keys)}, "
                f"image {i} has {sorted(metrics)}"
            )
    return {key: float(np.mean([float(m[key]) for m in per_image])) for key in keys}


def json_safe(value: Any) -> Any:
    """``value`` made valid for strict JSON, which has no infinity or NaN.

    ``nan`` becomes ``None`` (``null``), ``inf`` the string ``"inf"`` and ``-inf`` ``"-inf"``;
    numpy scalars become Python numbers; dicts, lists and tuples are converted recursively
    (tuples become lists). Everything else is returned unchanged.
    """
    if isinstance(value, Mapping):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
    return value
