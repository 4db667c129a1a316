"""The user's image files as ``superres upscale`` reads and writes them: metadata and alpha kept.

:func:`collect_images` lists the files to upscale (files given, and the images under folders given,
with the path each output keeps); :func:`read_source` reads one with the project's checks
(:func:`superres.data.imageio.read_image`) and keeps what is still true after upscaling (its
transparent alpha channel apart, its ICC profile, its EXIF with the orientation reset);
:func:`write_result` assembles the upscaled rows into one file of the chosen format, atomically.
Pixels are uint8 H x W x C (C = 1 or 3), as at every file edge of the project.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from superres.atomic import atomic_path
from superres.data.imageio import IMAGE_SUFFIXES, read_image
from superres.errors import SuperresError

__all__ = ["FORMATS", "Source", "collect_images", "format_of", "read_source", "write_result"]

log = logging.getLogger(__name__)

# format name -> (Pillow format, suffix, save options)
FORMATS: dict[str, tuple[str, str, dict[str, object]]] = {
    "png": ("PNG", ".png", {}),
    "jpg": ("JPEG", ".jpg", {"quality": 95}),
    "webp": ("WEBP", ".webp", {"lossless": True}),
    "tiff": ("TIFF", ".tif", {"compression": "tiff_lzw"}),
}
_FORMAT_OF_SUFFIX = {".png": "png", ".jpg": "jpg", ".jpeg": "jpg", ".webp": "webp", ".tif": "tiff", ".tiff": "tiff"}
_ALPHA_FORMATS = {"png", "webp", "tiff"}
_ORIENTATION_TAG = 0x0112


@dataclass
class Source:
    """An input image: upright uint8 pixels (H x W x 1 or 3), its alpha (H x W) if it has a
    transparent one, and the metadata still true after upscaling."""

    pixels: np.ndarray
    alpha: np.ndarray | None = None
    icc_profile: bytes | None = None
    exif: bytes | None = None


def format_of(path: Path) -> str:
    """The format (a key of :data:`FORMATS`) of ``path`` by its suffix when it is one of them, else ``png``."""
    return _FORMAT_OF_SUFFIX.get(path.suffix.lower(), "png")


def collect_images(inputs: Iterable[Path]) -> list[tuple[Path, Path]]:
    """``(file, path relative to the output folder)`` for every input file (by its name) and every image under
    an input folder (searched recursively, sorted; by its path under that folder)."""
    files: list[tuple[Path, Path]] = []
    for item in inputs:
        if item.is_dir():
            files += [(f, f.relative_to(item)) for f in sorted(item.rglob("*")) if f.suffix.lower() in IMAGE_SUFFIXES]
        else:
            files.append((item, Path(item.name)))
    return files


def read_source(path: Path, max_pixels: int, setting: str = "--max-pixels") -> Source:
    """Read ``path`` with the project's checks (at most ``max_pixels`` pixels, read from the header before
    decoding; the error names ``setting``), EXIF orientation applied, 16-bit reduced to 8-bit; keep its alpha
    channel apart, and its ICC profile and EXIF (orientation reset). Metadata that cannot be read is left out
    (logged): the pixels are what matters. Raises InvalidImageError for a file that is not a usable image."""
    source = Source(read_image(path, max_pixels=max_pixels, setting=setting)[0])
    try:
        with warnings.catch_warnings(), Image.open(path) as img:  # read_image has checked its size and format
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            exif = img.getexif()
            if _ORIENTATION_TAG in exif:
                exif[_ORIENTATION_TAG] = 1  # the pixels are upright now
            source.icc_profile, source.exif = img.info.get("icc_profile"), exif.tobytes() if len(exif) else None
            if "A" in img.getbands() or "transparency" in img.info:
                gray = source.pixels.shape[2] == 1
                upright = np.asarray(ImageOps.exif_transpose(img).convert("LA" if gray else "RGBA"))
                if (upright[..., -1] < 255).any():  # the colour itself, not read_image's composite on white
                    source.pixels = np.ascontiguousarray(upright[..., :-1])
                    source.alpha = np.ascontiguousarray(upright[..., -1])
    except Exception as exc:  # Pillow raises many types on odd metadata; read_image already vouched for the pixels
        log.warning("%s: metadata and alpha not kept (%s)", path, exc)
    return source


def write_result(
    target: Path, source: Source, bands: Iterable[tuple[int, np.ndarray]], size: tuple[int, int], fmt: str
) -> None:
    """Assemble the SR bands (``(top row, uint8 rows)``) into one image of ``size`` (width, height), add the
    alpha channel upscaled with bicubic (composited on white for JPEG), and save it atomically as ``fmt`` (a key
    of :data:`FORMATS`) with the source's ICC profile and EXIF. Raises SuperresError when the file cannot be
    written in that format."""
    gray = source.pixels.shape[2] == 1
    result = Image.new("L" if gray else "RGB", size)
    for top, band in bands:
        result.paste(Image.fromarray(band[:, :, 0] if gray else band), (0, top))
    if source.alpha is not None:
        alpha = Image.fromarray(source.alpha).resize(size, Image.Resampling.BICUBIC)
        if fmt in _ALPHA_FORMATS:
            result.putalpha(alpha)
        else:
            result = Image.composite(result, Image.new(result.mode, size, 255), alpha)
    pillow_format, _, options = FORMATS[fmt]
    metadata = {k: v for k, v in (("icc_profile", source.icc_profile), ("exif", source.exif)) if v}
    with atomic_path(target) as tmp:
        try:
            result.save(tmp, format=pillow_format, **options, **metadata)
        except (OSError, ValueError) as exc:
            raise SuperresError(f"{target}: cannot be written as {fmt} ({exc}); choose another --format") from None
