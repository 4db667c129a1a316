"""Nodes of the prepare pipeline. Images travel as ``{name: loader}`` (Kedro partitions):
each image is decoded when a node needs it, never all at once."""

from __future__ import annotations

import logging
import zlib
from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from superres.data.degrade import Degradation, check_scale, degrade, modcrop
from superres.data.imageio import IMAGE_SUFFIXES, read_image
from superres.data.patches import extract_patches
from superres.data.sources import PAIRS_FILE
from superres.data.split import split_images
from superres.errors import ConfigError

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
    images given by a ``paired_folder`` source, and a report of what was kept and why not.
    """
    scale = check_scale(int(prepare["scale"]))
    patch = int(prepare["patch_size"])
    max_pixels = int(data["max_pixels"])
    root = raw / data["source"]
    accepted = ingest_report[ingest_report["status"] == "accepted"]
    paired = data["source"] == "paired_folder"
    lr_of_hr = {}
    if paired:
        pairs = pd.read_csv(raw / PAIRS_FILE, keep_default_na=False).query("lr != ''")
        usable_lr = set(accepted["origin"])
        lr_of_hr = {row.hr: row.lr for row in pairs.itertuples() if row.lr in usable_lr}
    size_of = {r.origin: (int(r.width), int(r.height)) for r in accepted.itertuples()}

    hr_images, lr_images, rows = {}, {}, []
    for record in accepted.itertuples():
        if paired and Path(record.origin).parts[0] != "hr":
            continue
        name = Path(record.name).stem.removeprefix("hr__") if paired else Path(record.name).stem
        w, h = int(record.width) // scale * scale, int(record.height) // scale * scale
        row = {"name": name, "status": "kept", "reason": "", "width": w, "height": h, "channels": int(record.channels)}
        if min(w, h) < patch:
            row.update(status="rejected", reason=f"{w}x{h} after modcrop is smaller than one training patch ({patch} px)")
        elif paired and record.origin not in lr_of_hr:
            row.update(status="rejected", reason="its low-resolution partner was rejected (see the ingest report)")
        elif paired and size_of[lr_of_hr[record.origin]] != (w // scale, h // scale):
            lw, lh = size_of[lr_of_hr[record.origin]]
            row.update(status="rejected", reason=f"its low-resolution partner is {lw}x{lh}, not {w // scale}x{h // scale} (x{scale})")
        else:
            hr_images[name] = partial(_load_hr, root / record.origin, max_pixels, scale)
            if paired:
                lr_images[name] = partial(_load_lr, root / lr_of_hr[record.origin], max_pixels)
        rows.append(row)
    report = pd.DataFrame(rows, columns=REPORT_COLUMNS).sort_values("name", kind="stable")
    log.info("prepare: %d images kept, %d rejected", len(hr_images), int((report["status"] == "rejected").sum()))
    return hr_images, lr_images, report


def validation_folder(prepare: Mapping[str, Any]) -> list[Path]:
    """The HR images of ``prepare.val_folder`` (e.g. Set5), sorted; [] when it is not set."""
    if not prepare.get("val_folder"):
        return []
    folder = Path(prepare["val_folder"]).expanduser()
    if not folder.is_dir():
        raise ConfigError(f"prepare.val_folder: {folder} is not a folder; give a folder of HR images (e.g. Set5) or null")
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ConfigError(f"prepare.val_folder: {folder} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    return files


def _val_name(path: Path) -> str:
    return f"val__{path.stem}"


def split_dataset(prepare_report: pd.DataFrame, prepare: Mapping[str, Any]) -> pd.DataFrame:
    """The manifest image -> train/val/test, by image, seeded; byte-identical across runs.

    With ``prepare.val_folder`` the validation images are that folder's (named ``val__<stem>``)
    and the source is split into train and test only."""
    kept = prepare_report.loc[prepare_report["status"] == "kept", "name"]
    external = validation_folder(prepare)
    fractions = {**prepare["split"], "val": 0.0} if external else prepare["split"]
    assignment = split_images(kept, fractions, int(prepare["seed"]))
    assignment.update({_val_name(p): "val" for p in external})
    manifest = pd.DataFrame(sorted(assignment.items()), columns=["image", "split"])
    log.info("split: %s", manifest["split"].value_counts().to_dict())
    return manifest


def _degraded(hr: Callable[[], np.ndarray], scale: int, degradation: Degradation, seed: int) -> np.ndarray:
    return degrade(hr(), scale, degradation, seed)


def make_lr_images(hr_images: Lazy, given_lr: Lazy, prepare: Mapping[str, Any]) -> dict[str, Callable[[], np.ndarray]]:
    """The LR image of every HR image: given by the source, else made by the degradation."""
    scale = check_scale(int(prepare["scale"]))
    degradation = Degradation.from_params(prepare.get("degradation"))
    seed = int(prepare["seed"])
    return {
        name: given_lr[name] if name in given_lr
        else partial(_degraded, hr, scale, degradation, zlib.crc32(name.encode()) ^ seed)
        for name, hr in hr_images.items()
    }


def make_training_patches(hr_images: Lazy, lr_images: Lazy, split: pd.DataFrame, prepare: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Aligned LR/HR patches of the train split, on a grid of ``prepare.stride``."""
    scale, patch, stride = int(prepare["scale"]), int(prepare["patch_size"]), int(prepare["stride"])
    if patch % scale or stride % scale or stride < scale:
        raise ConfigError(f"prepare.patch_size ({patch}) and prepare.stride ({stride}) must be positive multiples of prepare.scale ({scale})")
    names = split.loc[split["split"] == "train", "image"]
    lr, hr = extract_patches(((lr_images[n](), hr_images[n]()) for n in names), scale, patch, stride)
    log.info("training patches: %d of %dx%d HR pixels from %d images", len(hr), patch, patch, len(names))
    return {"lr": lr, "hr": hr}


def select_split(
    hr_images: Lazy, lr_images: Lazy, split: pd.DataFrame, data: Mapping[str, Any], prepare: Mapping[str, Any]
) -> tuple[dict, dict, dict, dict]:
    """Whole LR/HR images of the val and test splits (the val images of ``prepare.val_folder``
    degraded like the others)."""
    scale = check_scale(int(prepare["scale"]))
    external = {_val_name(path): partial(_load_hr, path, int(data["max_pixels"]), scale) for path in validation_folder(prepare)}
    hr_images = {**hr_images, **external}
    lr_images = {**lr_images, **make_lr_images(external, {}, prepare)}
    out = []
    for which in ("val", "test"):
        names = split.loc[split["split"] == which, "image"]
        out += [{n: hr_images[n] for n in names}, {n: lr_images[n] for n in names}]
    return tuple(out)
