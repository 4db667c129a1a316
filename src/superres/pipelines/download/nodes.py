"""Nodes of the download pipeline. The ``data`` parameters are checked into a
:class:`~superres.params.data.DataParams` as each node starts."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping
from pathlib import Path, PurePosixPath
from typing import Any

import pandas as pd

from superres.data.ingest import REPORT_COLUMNS, ingest
from superres.data.sources import (
    PAIRS_FILE,
    SKIPPED_FILE,
    RawItem,
    fetch_embedded,
    fetch_folder,
    fetch_paired_folder,
    fetch_url,
    hidden_reason,
)
from superres.params.data import DataParams

log = logging.getLogger(__name__)


def fetch_images(data: Mapping[str, Any]) -> Callable[[Path], None]:
    """What to write into ``data/01_raw/<source>/``: the images as found.

    Returns the writer; the ``raw_images`` dataset calls it on a fresh folder and swaps that
    folder in only once it is complete.
    """
    data = DataParams.from_params(data)
    source, path = data.source, data.path

    def write(folder: Path) -> None:
        dest = folder / source
        if source == "embedded":
            fetch_embedded(dest, names=data.names)
        elif source == "folder":
            skipped = [(item.name, Path(item.origin).relative_to(path).as_posix(), item.rejected)
                       for item in fetch_folder(Path(path), dest) if item.rejected]
            if skipped:
                pd.DataFrame(skipped, columns=["name", "origin", "reason"]).to_csv(folder / SKIPPED_FILE, index=False)
        elif source == "paired_folder":
            pairs, unmatched = fetch_paired_folder(Path(path), dest)
            rows = [(hr.path.relative_to(dest).as_posix(), lr.path.relative_to(dest).as_posix(), "")
                    for hr, lr in pairs]
            rows += [(str(file), "", reason) for file, reason in unmatched]
            pd.DataFrame(rows, columns=["hr", "lr", "unpaired"]).to_csv(folder / PAIRS_FILE, index=False)
        else:
            cache_dir = Path(data.cache_dir).expanduser() if data.cache_dir else None  # None: the default
            fetch_url(path, dest, cache_dir=cache_dir, sha256=data.sha256)

    return write


def ingest_images(raw: Path, data: Mapping[str, Any]) -> pd.DataFrame:
    """Validate every file found at the source: accepted (with the normalisation it will get) or
    rejected (with the reason), including the files that were found but not fetched (hidden
    files, broken links, link loops, unpaired files). One bad file never stops the run, and none
    is dropped silently."""
    data = DataParams.from_params(data)
    root = raw / data.source
    items = []
    for file in sorted(p for p in root.rglob("*") if p.is_file()):
        relative = PurePosixPath(file.relative_to(root).as_posix())
        items.append(RawItem(name="__".join(relative.parts), path=file, origin=relative.as_posix(),
                             rejected=hidden_reason(relative)))  # hidden files extracted from an archive
    if (raw / SKIPPED_FILE).is_file():
        skipped = pd.read_csv(raw / SKIPPED_FILE, dtype=str, keep_default_na=False)
        items += [RawItem(name=row.name, path=root / row.origin, origin=row.origin, rejected=row.reason)
                  for row in skipped.itertuples()]
    if (raw / PAIRS_FILE).is_file():
        unpaired = pd.read_csv(raw / PAIRS_FILE, dtype=str, keep_default_na=False).query("unpaired != ''")
        items += [RawItem(name=Path(row.hr).name, path=Path(row.hr), origin=row.hr, rejected=row.unpaired)
                  for row in unpaired.itertuples()]
    records = [dataclasses.asdict(r) for r in ingest(items, max_pixels=data.max_pixels)]
    report = pd.DataFrame(records, columns=list(REPORT_COLUMNS))
    return report.sort_values("name", kind="stable").reset_index(drop=True)
