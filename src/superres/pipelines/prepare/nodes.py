"""Nodes of the prepare pipeline. Images travel as ``{name: loader}`` (Kedro partitions):
each image is decoded when a node needs it, never all at once. The ``data`` and ``prepare``
parameters are checked into typed objects (:mod:`superres.params`) as each node starts."""

from __future__ import annotations

import logging
import zlib
from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from superres.data.degrade import SCALES, Degradation, degrade, modcrop
from superres.data.imageio import IMAGE_SUFFIXES, read_image
from superres.data.patches import extract_patches
from superres.data.sources import EMBEDDED_GROUPS, PAIRS_FILE
from superres.data.split import split_images
from superres.errors import ConfigError, SuperresError
from superres.params.data import DataParams
from superres.params.prepare import PrepareParams

log = logging.getLogger(__name__)

Lazy = Mapping[str, Callable[[], np.ndarray]]
REPORT_COLUMNS = ["name", "status", "reason", "width", "height", "channels"]


def _load_hr(path: Path, max_pixels: int, scale: int) -> np.ndarray:
    return modcrop(read_image(path, max_pixels=max_pixels)[0], scale)


def _load_lr(path: Path, max_pixels: int) -> np.ndarray:
    return read_image(path, max_pixels=max_pixels)[0]


def select_images(
    raw: Path, ingest_report: pd.DataFrame, data: Mapping[str, Any], prepare: Mapping[str, Any]
) -> tuple[dict[str, Callable[[], np.ndarray]], dict[str, Callable[[], np.ndarray]], pd.DataFrame]:
    """Keep the accepted images that hold at least one training patch once modcropped.

    Returns the HR images (normalised: RGB or gray, 8-bit, EXIF-upright, modcropped), the LR
    images given by a ``paired_folder`` source, and a report of what was kept and why not. The
    parameters are checked before any image is read.
    """
    data, prepare = DataParams.from_params(data), PrepareParams.from_params(prepare)
    scale, patch, max_pixels = prepare.scale, prepare.patch_size, data.max_pixels
    root = raw / data.source
    accepted = ingest_report[ingest_report["status"] == "accepted"]
    paired = data.source == "paired_folder"
    lr_of_hr = {}
    if paired:
        pairs = pd.read_csv(raw / PAIRS_FILE, keep_default_na=False).query("lr != ''")
        usable_lr = set(accepted["origin"])
        lr_of_hr = {row.hr: row.lr for row in pairs.itertuples() if row.lr in usable_lr}
    size_of = {r.origin: (int(r.width), int(r.height)) for r in accepted.itertuples()}

    hr_images, lr_images, rows, wrong_lr = {}, {}, [], []
    for record in accepted.itertuples():
        if paired and Path(record.origin).parts[0] != "hr":
            continue
        name = Path(record.name).stem.removeprefix("hr__") if paired else Path(record.name).stem
        w, h = int(record.width) // scale * scale, int(record.height) // scale * scale
        row = {"name": name, "status": "kept", "reason": "", "width": w, "height": h,
               "channels": int(record.channels)}
        if min(w, h) < patch:
            row.update(status="rejected",
                       reason=f"{w}x{h} after modcrop is smaller than one training patch ({patch} px)")
        elif paired and record.origin not in lr_of_hr:
            row.update(status="rejected", reason="its low-resolution partner was rejected (see the ingest report)")
        elif paired and size_of[lr_of_hr[record.origin]] != (w // scale, h // scale):
            lw, lh = size_of[lr_of_hr[record.origin]]
            row.update(status="rejected",
                       reason=f"its low-resolution partner is {lw}x{lh}, not {w // scale}x{h // scale} (x{scale})")
            wrong_lr.append((name, (int(record.width), int(record.height)), (w // scale, h // scale), (lw, lh)))
        else:
            hr_images[name] = partial(_load_hr, root / record.origin, max_pixels, scale)
            if paired:
                lr_images[name] = partial(_load_lr, root / lr_of_hr[record.origin], max_pixels)
        rows.append(row)
    report = pd.DataFrame(rows, columns=REPORT_COLUMNS).sort_values("name", kind="stable")
    if not hr_images:
        raise _nothing_kept(report, wrong_lr, data, scale)
    log.info("prepare: %d images kept, %d rejected", len(hr_images), int((report["status"] == "rejected").sum()))
    return hr_images, lr_images, report


Size = tuple[int, int]


def _nothing_kept(report: pd.DataFrame, wrong_lr: list[tuple[str, Size, Size, Size]], data: DataParams,
                  scale: int) -> ConfigError:
    """The error when no image is usable: where the images came from, why they were rejected
    (with an example and the sizes), and what to change."""
    where = f"data.path: {data.path}" if data.path else f"data.source: {data.source}"
    if report.empty:
        return ConfigError(f"{where}: no image was accepted by the download stage; "
                           "data/01_raw/ingest_report.csv gives the reason for every file")
    if len(wrong_lr) == len(report):
        name, (hw, hh), (ew, eh), (fw, fh) = wrong_lr[0]
        factor = next((k for k in SCALES if k != scale and (hw // k, hh // k) == (fw, fh)), None)
        if factor:
            todo = f"they look like x{factor}: set prepare.scale to {factor}"
        else:
            todo = f"make the low-resolution images {scale} times smaller, or set prepare.scale to their factor"
        return ConfigError(
            f"{where}: every pair is rejected ({len(wrong_lr)}): a low-resolution image must be the high-resolution "
            f"one (cropped to a multiple of prepare.scale={scale}) divided by {scale}, e.g. {name}: high resolution "
            f"{hw}x{hh}, so {ew}x{eh} expected, but its low-resolution image is {fw}x{fh}; {todo}")
    counts = report["reason"].str.replace(r"\d+x\d+", "WxH", regex=True).value_counts()
    reasons = "; ".join(f"{count} x {reason}" for reason, count in counts.items())
    return ConfigError(f"{where}: none of the {len(report)} accepted images can be used ({reasons}); "
                       "give larger images, or lower prepare.patch_size")


def validation_folder(prepare: PrepareParams | Mapping[str, Any]) -> list[Path]:
    """The HR images of ``prepare.val_folder`` (e.g. Set5), sorted; [] when it is not set."""
    prepare = PrepareParams.from_params(prepare)
    if not prepare.val_folder:
        return []
    folder = Path(prepare.val_folder).expanduser()
    if not folder.is_dir():
        raise ConfigError(f"prepare.val_folder: {folder} is not a folder; give a folder of HR images (e.g. Set5) "
                          "or null")
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ConfigError(f"prepare.val_folder: {folder} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    return files


def _val_name(path: Path) -> str:
    return f"val__{path.stem}"


def split_dataset(hr_images: Lazy, data: Mapping[str, Any], prepare: Mapping[str, Any]) -> pd.DataFrame:
    """The manifest image -> train/val/test, by image, seeded; byte-identical across runs.

    The names are those of the prepared images (partition names are strings, so ``0001`` stays
    ``0001``). Images of one scene (the groups the source declares) go to one split. With
    ``prepare.val_folder`` the validation images are that folder's (named ``val__<stem>``) and
    the source is split into train and test only, in the proportion of their fractions."""
    data, prepare = DataParams.from_params(data), PrepareParams.from_params(prepare)
    fractions = prepare.split.model_dump()
    external = validation_folder(prepare)
    if external and fractions["train"] > 0:  # train 0 is refused by split_images
        rest = fractions["train"] + fractions["test"]
        fractions = {"train": fractions["train"] / rest, "val": 0.0, "test": fractions["test"] / rest}
    groups = EMBEDDED_GROUPS if data.source == "embedded" else None
    assignment = split_images(hr_images, fractions, prepare.seed, groups=groups)
    assignment.update({_val_name(p): "val" for p in external})
    manifest = pd.DataFrame(sorted(assignment.items()), columns=["image", "split"])
    log.info("split: %s", manifest["split"].value_counts().to_dict())
    return manifest


def _names(split: pd.DataFrame, which: str, available: Mapping[str, Any]) -> list[str]:
    """The images of split ``which``; every one must be a prepared image."""
    names = [str(n) for n in split.loc[split["split"] == which, "image"]]
    missing = [n for n in names if n not in available]
    if missing:
        raise SuperresError(f"data/03_primary/split.csv lists {which} image(s) that were not prepared "
                            f"({', '.join(missing[:5])}); run the prepare stage again (`dvc repro prepare`)")
    return names


def _degraded(hr: Callable[[], np.ndarray], scale: int, degradation: Degradation, seed: int) -> np.ndarray:
    return degrade(hr(), scale, degradation, seed)


def make_lr_images(
    hr_images: Lazy, given_lr: Lazy, prepare: Mapping[str, Any]
) -> dict[str, Callable[[], np.ndarray]]:
    """The LR image of every HR image: given by the source, else made by the degradation."""
    prepare = PrepareParams.from_params(prepare)
    scale, degradation, seed = prepare.scale, prepare.degradation.to_degradation(), prepare.seed
    return {
        name: given_lr[name] if name in given_lr
        else partial(_degraded, hr, scale, degradation, zlib.crc32(name.encode()) ^ seed)
        for name, hr in hr_images.items()
    }


def make_training_patches(
    hr_images: Lazy, lr_images: Lazy, split: pd.DataFrame, prepare: Mapping[str, Any]
) -> dict[str, np.ndarray]:
    """Aligned LR/HR patches of the train split, on a grid of ``prepare.stride``."""
    prepare = PrepareParams.from_params(prepare)
    scale, patch, stride = prepare.scale, prepare.patch_size, prepare.stride
    names = _names(split, "train", hr_images)
    lr, hr = extract_patches(((lr_images[n](), hr_images[n]()) for n in names), scale, patch, stride)
    log.info("training patches: %d of %dx%d HR pixels from %d images", len(hr), patch, patch, len(names))
    return {"lr": lr, "hr": hr}


def select_split(
    hr_images: Lazy, lr_images: Lazy, split: pd.DataFrame, data: Mapping[str, Any], prepare: Mapping[str, Any]
) -> tuple[dict, dict, dict, dict]:
    """Whole LR/HR images of the val and test splits (the val images of ``prepare.val_folder``
    degraded like the others)."""
    data, prepare = DataParams.from_params(data), PrepareParams.from_params(prepare)
    external = {_val_name(path): partial(_load_hr, path, data.max_pixels, prepare.scale)
                for path in validation_folder(prepare)}
    hr_images = {**hr_images, **external}
    lr_images = {**lr_images, **make_lr_images(external, {}, prepare)}
    out = []
    for which in ("val", "test"):
        names = _names(split, which, hr_images)
        out += [{n: hr_images[n] for n in names}, {n: lr_images[n] for n in names}]
    return tuple(out)
