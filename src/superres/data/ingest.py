"""Validate what was fetched: every file becomes an accepted or a rejected record, with why.

``ingest`` never raises on a bad file: unreadable, truncated, too large, not an image, a
duplicate of another image, or a file the source found but did not fetch (hidden, a broken link,
a link loop: ``RawItem.rejected``), each becomes a *rejected* record with its reason. Accepted images
get a name whose stem is unique (the later of ``x.png`` and ``x.jpg`` becomes ``x-2.jpg``), and
their reason lists the normalisations that reading them applied.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path, PurePosixPath

from superres.data.imageio import IMAGE_SUFFIXES, image_size, read_image
from superres.data.sources import RawItem
from superres.errors import ConfigError, InvalidImageError

__all__ = ["ACCEPTED", "REJECTED", "REPORT_COLUMNS", "IngestRecord", "ingest"]

logger = logging.getLogger(__name__)

ACCEPTED = "accepted"
REJECTED = "rejected"


@dataclass
class IngestRecord:
    """One fetched file and the verdict on it. ``width``, ``height``, ``channels`` describe the
    image as read (upright, 1 or 3 channels); 0 when unknown."""

    name: str
    origin: str
    status: str
    reason: str = ""
    width: int = 0
    height: int = 0
    channels: int = 0

    @property
    def accepted(self) -> bool:
        return self.status == ACCEPTED


REPORT_COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(IngestRecord))


def _rejected_size(path: Path) -> tuple[int, int]:
    """The header size of a rejected file when it has a readable header, else (0, 0)."""
    try:
        return image_size(path)
    except Exception:  # the file was rejected already; its size is only a detail of the report
        return 0, 0


def ingest(items: Sequence[RawItem], *, max_pixels: int) -> list[IngestRecord]:
    """Read every item and return one record per item, in the same order.

    Rejected: an item the source did not fetch (its ``rejected`` reason), a suffix not in
    ``IMAGE_SUFFIXES``, a file ``read_image`` refuses, and an image whose pixels equal those of
    an earlier accepted one (``"duplicate of <name>"``). An accepted
    image whose stem an earlier one already has (compared case-insensitively) is renamed
    ``<stem>-2<suffix>`` (``-3``...), which its reason notes.
    """
    if isinstance(max_pixels, bool) or not isinstance(max_pixels, int) or max_pixels <= 0:
        raise ConfigError(f"data.max_pixels must be a positive integer, got {max_pixels!r}")
    all_stems = {PurePosixPath(item.name).stem.casefold() for item in items if not item.rejected}
    taken_stems: set[str] = set()
    seen_pixels: dict[str, str] = {}
    records: list[IngestRecord] = []
    for item in items:
        if item.rejected:
            records.append(IngestRecord(item.name, item.origin, REJECTED, item.rejected))
            continue
        suffix = PurePosixPath(item.name).suffix.lower()
        if suffix not in IMAGE_SUFFIXES:
            what = f"suffix {suffix}" if suffix else "no suffix"
            records.append(IngestRecord(item.name, item.origin, REJECTED, f"not an image file ({what})"))
            continue
        try:
            array, notes = read_image(item.path, max_pixels=max_pixels)
        except InvalidImageError as exc:
            reason = getattr(exc, "reason", None) or str(exc)
            width, height = _rejected_size(item.path)
            records.append(IngestRecord(item.name, item.origin, REJECTED, reason, width, height))
            continue
        except Exception as exc:  # a decoder bug must not stop the ingest of the other files
            logger.warning("unexpected error reading %s", item.path, exc_info=True)
            reason = f"unexpected error while reading ({type(exc).__name__}: {exc})"
            records.append(IngestRecord(item.name, item.origin, REJECTED, reason))
            continue

        height, width, channels = array.shape
        hasher = hashlib.sha256(repr(array.shape).encode())
        hasher.update(memoryview(array).cast("B"))
        digest = hasher.hexdigest()
        if digest in seen_pixels:
            reason = f"duplicate of {seen_pixels[digest]}"
            records.append(IngestRecord(item.name, item.origin, REJECTED, reason, width, height, channels))
            continue

        name = item.name
        stem = PurePosixPath(name).stem
        if stem.casefold() in taken_stems:
            n = 2
            while f"{stem}-{n}".casefold() in taken_stems | all_stems:
                n += 1
            name = f"{stem}-{n}{PurePosixPath(item.name).suffix}"
            notes = [*notes, f"renamed from {item.name} (duplicate name)"]
        taken_stems.add(PurePosixPath(name).stem.casefold())
        seen_pixels[digest] = name
        records.append(IngestRecord(name, item.origin, ACCEPTED, "; ".join(notes), width, height, channels))

    for record in records:
        if record.status == REJECTED:
            logger.warning("rejected %s: %s", record.name, record.reason)
    accepted = sum(record.status == ACCEPTED for record in records)
    logger.info("ingest: accepted %d, rejected %d (of %d files)", accepted, len(records) - accepted, len(records))
    return records
