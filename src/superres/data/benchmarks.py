"""The standard test sets of the SR literature (Set5, Set14, BSD100, Urban100, Manga109) and any
local folder of HR images, made into LR/HR pairs exactly as the papers do: modcrop to the scale,
then the MATLAB-compatible bicubic down, rounded to 8 bits (no other degradation).

A benchmark is written as ``<root>/<name>_x<scale>/hr/<image>.png`` and ``.../lr/<image>.png``;
``<name>_x<scale>`` is also the prefix of its metric keys (``set5_x4/psnr_y``). Every file
found is listed in ``<root>/report.csv``, used or not, with the reason.
"""

from __future__ import annotations

import logging
import re
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from superres.data.degrade import SCALES, degrade, modcrop
from superres.data.imageio import read_image, write_png
from superres.data.ingest import IngestRecord, ingest
from superres.data.sources import RawItem, fetch_folder, fetch_url
from superres.errors import ConfigError, DownloadError

__all__ = ["KNOWN_BENCHMARKS", "REPORT_FILE", "Benchmark", "benchmark_plan", "load_pairs", "split_key",
           "write_benchmarks"]

logger = logging.getLogger(__name__)

_HF = "https://huggingface.co/datasets/eugenesiow/{0}/resolve/main/data/{0}_HR.tar.gz"

# The public HR archives of the standard benchmarks (mirrored on the Hugging Face hub). No
# checksum is published for them; a downloaded archive is kept in the cache and reused.
KNOWN_BENCHMARKS: dict[str, dict[str, Any]] = {
    "set5": {"url": _HF.format("Set5"), "sha256": None, "images": 5,
             "cite": "Bevilacqua et al., BMVC 2012"},
    "set14": {"url": _HF.format("Set14"), "sha256": None, "images": 14,
              "cite": "Zeyde et al., Curves and Surfaces 2010"},
    "bsd100": {"url": _HF.format("BSD100"), "sha256": None, "images": 100,
               "cite": "Martin et al., ICCV 2001 (the BSD300 test images)"},
    "urban100": {"url": _HF.format("Urban100"), "sha256": None, "images": 100,
                 "cite": "Huang et al., CVPR 2015"},
    "manga109": {"url": _HF.format("Manga109"), "sha256": None, "images": 109,
                 "cite": "Matsui et al., Multimedia Tools and Applications 2017 (for academic research only)"},
}

REPORT_FILE = "report.csv"
SSIM_WINDOW = 11  # what is left after shaving must hold the SSIM window of superres.metrics
REPORT_COLUMNS = ["benchmark", "image", "status", "reason", "width", "height", "channels", "origin"]
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_KEY = re.compile(r"^(?P<name>.+)_x(?P<scale>\d+)$")


@dataclass(frozen=True)
class Benchmark:
    """One test set: a known name (downloaded) or a local folder."""

    name: str
    url: str | None = None
    sha256: str | None = None
    folder: Path | None = None

    @property
    def parameter(self) -> str:
        return f"benchmarks.folders.{self.name}" if self.folder is not None else "benchmarks.sets"


def _check_name(name: object, parameter: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name) or _KEY.match(name) or name in {"nan", "null", "none", "na"}:
        raise ConfigError(f"{parameter}: {name!r} is not a usable benchmark name; use lowercase letters, digits "
                          "and underscores, starting with a letter and not ending in _x<digits> (e.g. set5, my_photos)")
    return name


def benchmark_plan(params: Mapping[str, Any] | None, default_scale: int) -> tuple[list[Benchmark], list[int]]:
    """The benchmarks and scales that the ``benchmarks`` parameters ask for, checked.

    ``sets`` lists names of :data:`KNOWN_BENCHMARKS`; ``folders`` maps a name of your own to a
    folder of HR images; ``scales`` (null: ``default_scale``, i.e. ``prepare.scale``) lists the
    scales to make pairs for."""
    params = dict(params or {})
    unknown = sorted(set(params) - {"sets", "folders", "scales"})
    if unknown:
        raise ConfigError(f"benchmarks: unknown key(s) {', '.join(unknown)}; known: sets, folders, scales")
    sets = params.get("sets") or []
    folders = params.get("folders") or {}
    if isinstance(sets, str) or not isinstance(sets, list):
        raise ConfigError(f"benchmarks.sets must be a list of names ({', '.join(KNOWN_BENCHMARKS)}), got {sets!r}")
    if not isinstance(folders, Mapping):
        raise ConfigError("benchmarks.folders must map a name to a folder of HR images (e.g. {mine: ~/photos}), "
                          f"got {folders!r}")
    plan = []
    for name in sets:
        if not isinstance(name, str) or name not in KNOWN_BENCHMARKS:
            raise ConfigError(f"benchmarks.sets: {name!r} is not a known benchmark; "
                              f"known: {', '.join(KNOWN_BENCHMARKS)} "
                              "(a folder of your own goes in benchmarks.folders)")
        plan.append(Benchmark(name, url=KNOWN_BENCHMARKS[name]["url"], sha256=KNOWN_BENCHMARKS[name]["sha256"]))
    for name, folder in folders.items():
        name = _check_name(name, "benchmarks.folders")
        if not folder:
            raise ConfigError(f"benchmarks.folders.{name}: give a folder of HR images")
        plan.append(Benchmark(name, folder=Path(str(folder)).expanduser()))
    names = [b.name for b in plan]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ConfigError(f"benchmarks: {', '.join(repeated)} named twice (in sets and in folders); "
                          "give the folder another name")
    scales = params.get("scales")
    if scales is None:
        scales = [default_scale]
    if isinstance(scales, int):
        scales = [scales]
    # a string, an empty list, a bool or a float (2.5 would become 2) is a mistake, not a scale
    if (not isinstance(scales, list) or not scales or any(isinstance(s, bool) or not isinstance(s, int) for s in scales)
            or any(s not in SCALES for s in scales)):
        raise ConfigError(f"benchmarks.scales must be null or a list of 2, 3, 4 and 8, got {params.get('scales')!r}")
    return plan, sorted(set(scales))


def _fetch(benchmark: Benchmark, dest: Path, cache_dir: Path | None) -> list[RawItem]:
    """The files of ``benchmark`` as found, in ``dest``."""
    try:
        if benchmark.folder is not None:
            if not benchmark.folder.is_dir():
                raise ConfigError(f"{benchmark.parameter}: {benchmark.folder} is not a folder; "
                                  "give a folder of HR images")
            return fetch_folder(benchmark.folder, dest)
        return fetch_url(benchmark.url, dest, cache_dir=cache_dir, sha256=benchmark.sha256)
    except DownloadError as exc:
        raise DownloadError(f"benchmark {benchmark.name}: {exc} (or leave it out of {benchmark.parameter})") from None
    except ConfigError as exc:
        if benchmark.parameter in str(exc):
            raise
        raise ConfigError(f"{benchmark.parameter}: {exc}") from None


def _image_names(origins: list[str], unique: list[str]) -> list[str]:
    """Image names: the file stem, or where names clash (compared case-insensitively) the stem of
    ``unique``, the ingest names, distinct by construction (``a__x`` for ``a/x.png``, ``x-2`` for
    the second ``x`` of one folder)."""
    names = [PurePosixPath(o).stem for o in origins]
    while True:
        folded = [n.casefold() for n in names]
        clashing = [i for i, n in enumerate(folded) if folded.count(n) > 1]
        if not clashing:
            return names
        for i in clashing:
            names[i] = PurePosixPath(unique[i]).stem


def _row(benchmark: str, record: IngestRecord, image: str, status: str, reason: str) -> dict[str, Any]:
    """One line of the report: the file as ingest saw it, and what became of it."""
    return {"benchmark": benchmark, "image": image, "status": status, "reason": reason, "width": record.width,
            "height": record.height, "channels": record.channels, "origin": record.origin}


def write_benchmarks(root: Path, plan: list[Benchmark], scales: list[int], *, max_pixels: int,
                     cache_dir: Path | None = None) -> pd.DataFrame:
    """Fetch every benchmark of ``plan`` and write its LR/HR pairs at every scale under ``root``;
    returns (and writes) the report of every file found. An image smaller than the shaved border
    at a scale, or not an image, is listed as rejected; a benchmark with no usable image at all
    is an error."""
    rows = []
    for benchmark in plan:
        with tempfile.TemporaryDirectory(prefix=f"superres-{benchmark.name}-") as tmp:
            items = _fetch(benchmark, Path(tmp), cache_dir)
            records = ingest(items, max_pixels=max_pixels)
            origins = {r.name: item for r, item in zip(records, items, strict=True)}
            accepted = [r for r in records if r.accepted]
            names = _image_names([origins[r.name].path.relative_to(tmp).as_posix() for r in accepted],
                                 [r.name for r in accepted])
            used = 0
            rows += [_row(benchmark.name, r, PurePosixPath(r.name).stem, "rejected", r.reason)
                     for r in records if not r.accepted]
            for record, name in tqdm(list(zip(accepted, names, strict=True)), desc=f"benchmark {benchmark.name}",
                                     unit="image", disable=None):
                hr_full = read_image(origins[record.name].path, max_pixels=max_pixels)[0]
                kept = []
                for scale in scales:
                    hr = modcrop(hr_full, scale)
                    if min(hr.shape[:2]) < SSIM_WINDOW + 2 * scale:  # nothing to measure once shaved
                        continue
                    folder = root / f"{benchmark.name}_x{scale}"
                    write_png(folder / "hr" / f"{name}.png", hr)
                    write_png(folder / "lr" / f"{name}.png", degrade(hr, scale))
                    kept.append(scale)
                status, reason = ("kept", record.reason) if kept else (
                    "rejected", f"smaller than the {SSIM_WINDOW}x{SSIM_WINDOW} SSIM window once the border is shaved")
                if kept and len(kept) < len(scales):
                    missed = ", x".join(str(s) for s in scales if s not in kept)
                    reason = "; ".join(filter(None, [reason, f"too small for x{missed}"]))
                used += bool(kept)
                rows.append(_row(benchmark.name, record, name, status, reason))
            if not used:
                raise ConfigError(f"{benchmark.parameter}: {benchmark.name} has no usable image "
                                  f"({len(records)} files found; see the reasons above); give a folder of HR images")
            expected = KNOWN_BENCHMARKS.get(benchmark.name, {}).get("images") if benchmark.folder is None else None
            if expected and used != expected:
                logger.warning("benchmark %s: %d images used, the published set has %d", benchmark.name, used, expected)
            cite = KNOWN_BENCHMARKS[benchmark.name]["cite"] if benchmark.folder is None else str(benchmark.folder)
            logger.info("benchmark %s (%s): %d images at x%s", benchmark.name, cite, used, ", x".join(map(str, scales)))
    report = pd.DataFrame(rows, columns=REPORT_COLUMNS)
    root.mkdir(parents=True, exist_ok=True)
    report.to_csv(root / REPORT_FILE, index=False, lineterminator="\n")
    return report


def split_key(key: str) -> tuple[str, int]:
    """``"set5_x4"`` -> ``("set5", 4)``."""
    match = _KEY.match(key)
    if not match:
        raise ValueError(f"{key!r} is not a benchmark key (<name>_x<scale>)")
    return match["name"], int(match["scale"])


def _read(path: Path) -> np.ndarray:
    return read_image(path, max_pixels=1 << 62)[0]


Pairs = dict[str, dict[str, tuple[Callable[[], np.ndarray], Callable[[], np.ndarray]]]]


def load_pairs(root: Path) -> Pairs:
    """``{"set5_x4": {image: (load LR, load HR)}}`` of the benchmarks written under ``root``
    (empty when there are none). Images are decoded only when loaded."""
    pairs: Pairs = {}
    if not root.is_dir():
        return pairs
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and _KEY.match(p.name)):
        names = sorted(p.stem for p in (folder / "hr").glob("*.png"))
        pairs[folder.name] = {
            n: (partial(_read, folder / "lr" / f"{n}.png"), partial(_read, folder / "hr" / f"{n}.png")) for n in names
        }
    return pairs

