"""Nodes of the download pipeline."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from superres.data.ingest import REPORT_COLUMNS, ingest
from superres.data.sources import PAIRS_FILE, RawItem, fetch_embedded, fetch_folder, fetch_paired_folder, fetch_url
from superres.errors import ConfigError

log = logging.getLogger(__name__)

SOURCES = ("embedded", "folder", "paired_folder", "url")


def _required_path(data: Mapping[str, Any]) -> str:
    if not data.get("path"):
        raise ConfigError(f"data.path is required for the {data['source']!r} source: set it in params.yaml")
    return str(data["path"])


def fetch_images(data: Mapping[str, Any]) -> Callable[[Path], None]:
    """What to write into ``data/01_raw/<source>/``: the images as found.

    Returns the writer; the ``raw_images`` dataset calls it on a fresh folder and swaps that
    folder in only once it is complete.
    """
    source = data.get("source")
    if source not in SOURCES:
        raise ConfigError(f"data.source: {source!r} is not a known source; choose one of {', '.join(SOURCES)}")
    path = None if source == "embedded" else _required_path(data)

    def write(folder: Path) -> None:
        dest = folder / source
        if source == "embedded":
            fetch_embedded(dest, names=data.get("names"))
        elif source == "folder":
            fetch_folder(Path(path), dest)
        elif source == "paired_folder":
            pairs, unmatched = fetch_paired_folder(Path(path), dest)
            rows = [(hr.path.relative_to(dest).as_posix(), lr.path.relative_to(dest).as_posix(), "") for hr, lr in pairs]
            rows += [(str(file), "", reason) for file, reason in unmatched]
            pd.DataFrame(rows, columns=["hr", "lr", "unpaired"]).to_csv(folder / PAIRS_FILE, index=False)
        else:
            cache_dir = Path(data["cache_dir"]).expanduser() if data.get("cache_dir") else None  # None: the default
            fetch_url(path, dest, cache_dir=cache_dir, sha256=data.get("sha256"))

    return write


def ingest_images(raw: Path, data: Mapping[str, Any]) -> pd.DataFrame:
    """Validate every file fetched: accepted (with the normalisation it will get) or rejected
    (with the reason). One bad file never stops the run, and none is dropped silently."""
    root = raw / data["source"]
    items = [
        RawItem(name=file.relative_to(root).as_posix().replace("/", "__"), path=file,
                origin=file.relative_to(root).as_posix(), note="")
        for file in sorted(p for p in root.rglob("*") if p.is_file())
    ]
    records = [dataclasses.asdict(r) for r in ingest(items, max_pixels=int(data["max_pixels"]))]
    if (raw / PAIRS_FILE).is_file():
        unpaired = pd.read_csv(raw / PAIRS_FILE, keep_default_na=False).query("unpaired != ''")
        records += [{"name": Path(row.hr).name, "origin": row.hr, "status": "rejected", "reason": row.unpaired}
                    for row in unpaired.itertuples()]
    report = pd.DataFrame(records, columns=list(REPORT_COLUMNS)).fillna({"width": 0, "height": 0, "channels": 0})
    return report.sort_values("name", kind="stable").reset_index(drop=True)
