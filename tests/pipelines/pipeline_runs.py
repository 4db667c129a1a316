"""Run a pipeline through Kedro's ``SequentialRunner`` on a catalog built in the test: the parameters
of params.yaml (with small overrides), inputs in memory, and the project's own datasets only where a
node hands a dataset something to write (a folder writer) or reads what it wrote."""

from __future__ import annotations

import copy
import functools
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from kedro.io import AbstractDataset, DataCatalog, MemoryDataset
from kedro.pipeline import Pipeline
from kedro.runner import SequentialRunner
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]


@functools.cache
def _params_file() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))


def project_params() -> dict[str, Any]:
    """A fresh copy of params.yaml, to override in a test."""
    return copy.deepcopy(_params_file())


def params_entries(params: Mapping[str, Any], *keys: str) -> dict[str, Any]:
    """``{"params:<key>": value}`` for each (dotted) key, as Kedro names parameters."""
    entries = {}
    for key in keys:
        value: Any = params
        for part in key.split("."):
            value = value[part]
        entries[f"params:{key}"] = value
    return entries


class KeptDataset(MemoryDataset):
    """A ``MemoryDataset`` that keeps its data after the run (the runner releases intermediate data
    once no node needs it), so a test can look at what every node returned."""

    def _release(self) -> None:
        pass


def make_catalog(entries: Mapping[str, Any]) -> DataCatalog:
    """A catalog of ``entries``: datasets as they are, any other value in a ``MemoryDataset`` (kept
    as it is, not copied: loaders of images travel as functions, as in the project's catalog)."""
    return DataCatalog(datasets={
        name: value if isinstance(value, AbstractDataset) else MemoryDataset(value, copy_mode="assign")
        for name, value in entries.items()
    })


def run(pipeline: Pipeline, entries: Mapping[str, Any]) -> dict[str, Any]:
    """Run ``pipeline`` with ``SequentialRunner`` on ``entries`` (see :func:`make_catalog`); returns
    what every node returned that ``entries`` has no dataset for, by dataset name (intermediate
    data included)."""
    kept = {name: KeptDataset(copy_mode="assign") for name in pipeline.all_outputs() if name not in entries}
    SequentialRunner().run(pipeline, make_catalog({**entries, **kept}))
    return {name: dataset.load() for name, dataset in kept.items()}


def photo(height: int, width: int, seed: int, channels: int = 3) -> np.ndarray:
    """A smooth uint8 test picture (gradients plus a little noise): bicubic neither helps nor
    hurts it unduly, so metrics stay finite."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    layers = [128 + 80 * np.sin(x / (5 + c + seed % 3)) * np.cos(y / (7 + c)) for c in range(channels)]
    image = np.stack(layers, axis=2) + rng.normal(0, 6, (height, width, channels))
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def write_photos(folder: Path, count: int, height: int, width: int) -> list[str]:
    """``count`` PNG pictures ``photo0.png``... in ``folder`` (one of them gray); returns their stems."""
    folder.mkdir(parents=True, exist_ok=True)
    stems = []
    for i in range(count):
        array = photo(height, width, seed=i, channels=1 if i == 1 else 3)
        Image.fromarray(array[:, :, 0] if array.shape[2] == 1 else array).save(folder / f"photo{i}.png")
        stems.append(f"photo{i}")
    return stems
