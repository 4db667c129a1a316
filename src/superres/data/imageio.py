"""Reading and writing image files: the only place where files become arrays and back.

``read_image`` turns whatever a user drops in (PNG, JPEG, TIFF, BMP, WebP, GIF, PNM) into the
project's HR convention, a uint8 ``H x W x 3`` (RGB) or ``H x W x 1`` (gray) array, and reports
every normalisation it applied:

* the pixel count in the header is checked against ``max_pixels`` before anything is decoded;
* the EXIF orientation is applied (the array is upright, as a viewer shows it);
* ``1`` (bilevel) becomes gray; ``L`` stays gray; ``RGB`` stays RGB;
* transparency (``RGBA``, ``LA``, ``PA``, a palette or colour key with transparency) is
  composited on white, giving RGB or gray; a fully opaque alpha channel is just dropped;
* ``P`` (palette) becomes RGB; ``CMYK``, ``YCbCr``, ``LAB``, ``HSV`` become RGB;
* 16-bit gray (``I;16*``, or ``I`` with values in 0..65535) becomes 8-bit by
  ``round(value / 257)``; 32-bit values above 65535 and floating-point (``F``) are refused;
* 16-bit-per-channel colour PNGs are reduced to 8 bits by Pillow itself (high byte kept);
* of a multi-frame file (animated GIF, multi-page TIFF) the first frame is used.

A file that cannot be used raises :class:`~superres.errors.InvalidImageError` whose message
names the file, says why, and what to do; the short reason alone is in its ``reason``
attribute (the ingest report uses it).
"""

from __future__ import annotations

import logging
import os
import struct
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from superres.atomic import atomic_path
from superres.errors import ConfigError, InvalidImageError

__all__ = ["IMAGE_SUFFIXES", "image_size", "read_image", "write_png"]

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES: frozenset[str] = frozenset(
    {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".gif", ".ppm", ".pgm", ".pnm"}
)

# The Pillow decoders a file may be opened with: those of IMAGE_SUFFIXES (JPEG includes the MPO
# files of many cameras). Anything else (EPS would run Ghostscript, for one) is refused.
_FORMATS = ("PNG", "JPEG", "BMP", "TIFF", "WEBP", "GIF", "PPM")

# Pillow's limits are process-wide globals; they are changed only while this lock is held.
_PILLOW_LOCK = threading.Lock()

# Exceptions Pillow raises on a file it cannot decode (truncated, corrupt, unsupported variant).
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error, IndexError)

_ORIENTATION_TAG = 0x0112
_TO_RGB_MODES = {"CMYK", "YCbCr", "LAB", "HSV"}
_ALPHA_MODES = {"LA", "La", "PA", "RGBA", "RGBa"}


def _invalid(path: Path, reason: str, advice: str) -> InvalidImageError:
    """An InvalidImageError whose message is ``"<path>: <reason>; <advice>"``."""
    err = InvalidImageError(f"{path}: {reason}; {advice}")
    err.reason = reason  # type: ignore[attr-defined]
    return err


def _check_max_pixels(max_pixels: object, setting: str) -> int:
    if isinstance(max_pixels, bool) or not isinstance(max_pixels, int) or max_pixels <= 0:
        raise ConfigError(f"{setting} must be a positive integer, got {max_pixels!r}")
    return max_pixels


def _too_large(path: Path, width: int, height: int, max_pixels: int, setting: str) -> InvalidImageError:
    return _invalid(
        path,
        f"image is {width} x {height} = {width * height} pixels, above the limit of {max_pixels} ({setting})",
        f"raise {setting} or resize the image",
    )


def _check_file(path: Path) -> None:
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise _invalid(path, "file does not exist", "check the path") from None
    except OSError as exc:
        raise _invalid(path, f"cannot read the file ({exc.strerror or exc})", "check its permissions") from exc
    if not path.is_file():
        raise _invalid(path, "not a regular file", "give the path of an image file")
    if size == 0:
        raise _invalid(path, "empty file (0 bytes)", "re-download or re-export it, or remove it")


@contextmanager
def _pillow_limits(limit: int | None) -> Iterator[None]:
    """Set Pillow's decompression-bomb limit (``None``: off) and refuse truncated files, restoring
    the previous settings after. Pillow's bomb warning is made an error meanwhile."""
    with _PILLOW_LOCK:
        saved = Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES
        Image.MAX_IMAGE_PIXELS = limit
        ImageFile.LOAD_TRUNCATED_IMAGES = False
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                yield
        finally:
            Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES = saved


def _open(path: Path) -> Image.Image:
    """Open ``path`` (header only); call inside ``_pillow_limits(None)``, then check the size."""
    try:
        return Image.open(path, formats=_FORMATS)
    except UnidentifiedImageError:
        raise _invalid(
            path,
            "not a supported image file (Pillow cannot identify it as " + ", ".join(_FORMATS) + ")",
            "convert it to PNG or remove it",
        ) from None
    except Image.DecompressionBombError as exc:
        raise _invalid(path, f"image too large ({exc})", "raise data.max_pixels or resize the image") from exc
    except _DECODE_ERRORS as exc:
        raise _invalid(path, f"corrupt image header ({exc})", "re-download or re-export the file") from exc


def image_size(path: str | os.PathLike[str]) -> tuple[int, int]:
    """``(width, height)`` of an image file, read from its header (nothing is decoded).

    The size is the stored one, before any EXIF orientation (orientations 5 to 8 swap the two
    in what :func:`read_image` returns).
    """
    path = Path(path)
    _check_file(path)
    with _pillow_limits(None), _open(path) as img:
        width, height = img.size
    return int(width), int(height)


def _rawmode(img: Image.Image) -> str:
    """The raw mode of the first decoder tile (``"RGB;16B"`` for a 16-bit RGB PNG), or ``""``."""
    tile = getattr(img, "tile", None) or []
    if not tile:
        return ""
    args = tile[0][3] if len(tile[0]) > 3 else None
    if isinstance(args, tuple):
        args = args[0] if args else None
    return args if isinstance(args, str) else ""


def _frame_count(img: Image.Image) -> int:
    """How many frames the file has (1 for most); 1 when later frames cannot be read, since only
    the first one, already decoded, is used."""
    try:
        return int(getattr(img, "n_frames", 1) or 1)
    except _DECODE_ERRORS as exc:
        logger.debug("cannot count the frames of %s: %s", img.filename, exc)
        return 1


def _exif_transpose(img: Image.Image, notes: list[str]) -> Image.Image:
    try:
        orientation = img.getexif().get(_ORIENTATION_TAG, 1)
    except Exception as exc:  # malformed EXIF is metadata trouble, not a reason to refuse pixels
        logger.debug("unreadable EXIF in %s: %s", img.filename, exc)
        notes.append("EXIF data unreadable, orientation not applied")
        return img
    if orientation in (2, 3, 4, 5, 6, 7, 8):
        try:
            transposed = ImageOps.exif_transpose(img)
        except Exception as exc:  # as above: keep the stored orientation
            logger.debug("EXIF orientation of %s not applied: %s", img.filename, exc)
            notes.append(f"EXIF orientation {orientation} could not be applied")
            return img
        notes.append(f"EXIF orientation {orientation} applied")
        return transposed
    return img


def _composite_on_white(array: np.ndarray) -> np.ndarray:
    """``H x W x (C+1)`` uint8 with straight alpha last -> ``H x W x C`` on a white background."""
    colour = array[..., :-1].astype(np.uint32)
    alpha = array[..., -1:].astype(np.uint32)
    out = (colour * alpha + 255 * (255 - alpha) + 127) // 255
    return out.astype(np.uint8)


def _from_16bit(values: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(values.astype(np.float64) / 257.0), 0, 255).astype(np.uint8)


def _to_array(img: Image.Image, path: Path, notes: list[str]) -> np.ndarray:
    """Convert a loaded image to uint8 ``H x W x C`` (C = 1 or 3), appending to ``notes``."""
    mode = img.mode
    if mode == "1":
        img = img.convert("L")
        notes.append("1-bit converted to gray")
        mode = "L"

    if mode.startswith("I;16"):
        notes.append("16-bit scaled to 8-bit")
        return _from_16bit(np.asarray(img))[:, :, None]
    if mode == "I":
        values = np.asarray(img)
        low, high = (int(values.min()), int(values.max())) if values.size else (0, 0)
        if low < 0 or high > 65535:
            raise _invalid(
                path,
                f"32-bit integer pixels with values {low}..{high}, outside the 16-bit range 0..65535",
                "save the image as 8-bit or 16-bit",
            )
        notes.append("16-bit scaled to 8-bit")
        return _from_16bit(values)[:, :, None]
    if mode == "F":
        raise _invalid(path, "floating-point pixels (mode F) are not supported", "save the image as 8-bit or 16-bit")

    if mode == "P" and not img.has_transparency_data:
        notes.append("palette converted to RGB")
        return np.asarray(img.convert("RGB"))

    if mode in _ALPHA_MODES or (mode in {"L", "RGB", "P"} and img.has_transparency_data):
        if mode in {"P", "PA"}:
            notes.append("palette converted to RGB")
        gray = mode in {"L", "LA", "La"}
        array = np.asarray(img.convert("LA" if gray else "RGBA"))
        if (array[..., -1] < 255).any():
            notes.append("alpha composited on white")
            return _composite_on_white(array)
        notes.append("fully opaque alpha channel dropped")
        return np.ascontiguousarray(array[..., :-1])

    if mode == "L":
        return np.asarray(img)[:, :, None]
    if mode == "RGB":
        return np.asarray(img)
    if mode in _TO_RGB_MODES:
        notes.append(f"{mode} converted to RGB")
        return np.asarray(img.convert("RGB"))
    try:
        converted = img.convert("RGB")
    except ValueError:
        raise _invalid(path, f"unsupported pixel mode {mode}", "convert the image to 8-bit RGB or gray") from None
    notes.append(f"{mode} converted to RGB")
    return np.asarray(converted)


def read_image(
    path: str | os.PathLike[str], *, max_pixels: int, setting: str = "data.max_pixels"
) -> tuple[np.ndarray, list[str]]:
    """Decode an image file to a uint8 ``H x W x 3`` (RGB) or ``H x W x 1`` (gray) array.

    Returns ``(array, notes)``; ``notes`` lists, in order, every normalisation applied
    (``"EXIF orientation 6 applied"``, ``"16-bit scaled to 8-bit"``...), empty for a plain
    8-bit RGB or gray file. Files with more than ``max_pixels`` pixels are refused from their
    header, before decoding. Raises ``InvalidImageError`` for a file that cannot be used; a message
    about the limit names ``setting``, the parameter or option the user sets it with.
    """
    path = Path(path)
    max_pixels = _check_max_pixels(max_pixels, setting)
    _check_file(path)
    notes: list[str] = []
    with _pillow_limits(None):
        img = _open(path)
        try:
            width, height = img.size
            if width <= 0 or height <= 0:
                raise _invalid(path, f"image has no pixels ({width} x {height})", "re-export it")
            if width * height > max_pixels:
                raise _too_large(path, width, height, max_pixels, setting)
            rawmode = _rawmode(img)
            # From here Pillow's own guard covers what the header did not say (GIF frames, tiles).
            Image.MAX_IMAGE_PIXELS = max_pixels
            try:
                img.load()
                if ";16" in rawmode and not img.mode.startswith("I"):
                    notes.append("16-bit per channel reduced to 8-bit (high byte kept)")
                upright = _exif_transpose(img, notes)
                array = np.array(_to_array(upright, path, notes), dtype=np.uint8, copy=True)
                frames = _frame_count(img)  # counted last: it seeks
            except InvalidImageError:
                raise
            except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
                raise _invalid(
                    path,
                    f"part of the image is larger than the limit of {max_pixels} pixels ({exc})",
                    f"raise {setting} or resize the image",
                ) from exc
            except _DECODE_ERRORS as exc:
                raise _invalid(
                    path,
                    f"cannot decode the image ({exc})",
                    "the file is truncated or corrupt: re-download or re-export it",
                ) from exc
        finally:
            img.close()
    if frames > 1:
        notes.append(f"first of {frames} frames used")
    if array.ndim == 2:
        array = array[:, :, None]
    logger.debug("read %s: %s %s", path, array.shape, "; ".join(notes))
    return array, notes


def write_png(path: str | os.PathLike[str], array: np.ndarray) -> None:
    """Write a uint8 ``H x W``, ``H x W x 1`` (gray) or ``H x W x 3`` (RGB) array as a PNG.

    The file is written atomically (a temporary file in the same folder, then a rename); missing
    parent folders are created.
    """
    array = np.asarray(array)
    if array.dtype != np.uint8:
        raise ValueError(f"write_png({path}): expected a uint8 array, got {array.dtype}")
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if not (array.ndim == 2 or (array.ndim == 3 and array.shape[2] == 3)):
        raise ValueError(f"write_png({path}): expected H x W, H x W x 1 or H x W x 3, got shape {array.shape}")
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(f"write_png({path}): empty image of shape {array.shape}")
    img = Image.fromarray(np.ascontiguousarray(array))  # H x W -> L, H x W x 3 -> RGB
    with atomic_path(path) as tmp:
        img.save(tmp, format="PNG")
