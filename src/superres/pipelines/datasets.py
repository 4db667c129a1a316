"""Kedro datasets of the project: where the catalog says, in the project's file formats.

Every save is atomic (a temporary name, then a rename), so an interrupted run never leaves a
half-written file behind.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from kedro.io import AbstractDataset, DatasetError

from superres.atomic import replace_directory
from superres.data.imageio import write_png
from superres.models.weights import Weights, load_weights, save_weights
from superres.tracking import default_tracking_uri


class DirectoryDataset(AbstractDataset[Callable[[Path], object], Path]):
    """A folder of files as found, for a node that must see the files themselves (the ingest checks
    every file at the source, images or not, with its name and place). ``save`` takes a writer,
    ``write(folder)``, which fills a new folder built beside the old one; the new folder is swapped
    in only once the writer has finished, so a failed download never leaves a half-filled folder.
    ``load`` returns the path."""

    def __init__(self, path: str, metadata: dict[str, Any] | None = None) -> None:
        self._path = Path(path)
        self.metadata = metadata

    def load(self) -> Path:
        if not self._path.is_dir():
            raise DatasetError(f"{self._path} does not exist; run the stage that makes it first")
        return self._path

    def save(self, data: Callable[[Path], object]) -> None:
        replace_directory(self._path, data)

    def _exists(self) -> bool:
        return self._path.is_dir()

    def _describe(self) -> dict[str, Any]:
        return {"path": str(self._path)}


class ImageDataset(AbstractDataset[np.ndarray, np.ndarray]):
    """One 8-bit PNG <-> a uint8 H x W x C array (C = 1 or 3). For use inside a
    ``PartitionedDataset``; the files are the project's own, written by ``save``."""

    def __init__(self, filepath: str, metadata: dict[str, Any] | None = None) -> None:
        self._filepath = Path(filepath)
        self.metadata = metadata

    def load(self) -> np.ndarray:
        from PIL import Image

        with Image.open(self._filepath) as img:
            array = np.asarray(img)
        return array[:, :, None] if array.ndim == 2 else array

    def save(self, data: np.ndarray) -> None:
        write_png(self._filepath, data)

    def _exists(self) -> bool:
        return self._filepath.is_file()

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath)}


class PatchesDataset(AbstractDataset[Mapping[str, np.ndarray], dict[str, np.ndarray]]):
    """Training patches as ``.npy`` arrays in a folder (``lr.npy``, ``hr.npy``), loaded
    memory-mapped so that sampling a patch decodes nothing."""

    def __init__(self, path: str, metadata: dict[str, Any] | None = None) -> None:
        self._path = Path(path)
        self.metadata = metadata

    def load(self) -> dict[str, np.ndarray]:
        files = sorted(self._path.glob("*.npy"))
        if not files:
            raise DatasetError(f"no training patches in {self._path}; run the prepare stage first")
        return {f.stem: np.load(f, mmap_mode="r") for f in files}

    def save(self, data: Mapping[str, np.ndarray]) -> None:
        def fill(folder: Path) -> None:
            for name, array in data.items():
                np.save(folder / f"{name}.npy", np.ascontiguousarray(array))

        replace_directory(self._path, fill)

    def _exists(self) -> bool:
        return any(self._path.glob("*.npy"))

    def _describe(self) -> dict[str, Any]:
        return {"path": str(self._path)}


class WeightsDataset(AbstractDataset[Weights, Weights]):
    """A trained model: ``weights.safetensors`` + ``config.json`` in a folder."""

    def __init__(self, path: str, metadata: dict[str, Any] | None = None) -> None:
        self._path = Path(path)
        self.metadata = metadata

    def load(self) -> Weights:
        return load_weights(self._path)

    def save(self, data: Weights) -> None:
        save_weights(self._path, data)

    def _exists(self) -> bool:
        return (self._path / "config.json").is_file()

    def _describe(self) -> dict[str, Any]:
        return {"path": str(self._path)}


class ScratchFolder(AbstractDataset[None, Path]):
    """A working folder a node writes into as it goes (training checkpoints): ``load`` creates it
    if needed and returns its path. It is not a DVC output; the node empties it when done."""

    def __init__(self, path: str, metadata: dict[str, Any] | None = None) -> None:
        self._path = Path(path)
        self.metadata = metadata

    def load(self) -> Path:
        self._path.mkdir(parents=True, exist_ok=True)
        return self._path

    def save(self, data: None) -> None:
        raise DatasetError(f"{self._path} is a working folder: nodes write into it, they do not return it")

    def _exists(self) -> bool:
        return self._path.is_dir()

    def _describe(self) -> dict[str, Any]:
        return {"path": str(self._path)}


class TrackingStoreDataset(AbstractDataset[None, str]):
    """The MLflow store the runs are recorded in, as a tracking URI: ``MLFLOW_TRACKING_URI`` when
    set, else ``sqlite:///<path>/mlflow.db`` (artifacts in ``mlartifacts/`` beside it), where
    ``path`` is the project folder (Kedro makes the catalog's relative paths absolute from the
    project root), or ``DVC_ROOT`` when DVC runs the stage (:func:`superres.tracking.default_tracking_uri`).
    Read-only: a node never writes it."""

    def __init__(self, path: str = ".", metadata: dict[str, Any] | None = None) -> None:
        self._path = Path(path)
        self.metadata = metadata

    def load(self) -> str:
        return default_tracking_uri(self._path)

    def save(self, data: None) -> None:
        raise DatasetError("the MLflow tracking store is configuration: nodes read it, they do not write it")

    def _exists(self) -> bool:
        return True

    def _describe(self) -> dict[str, Any]:
        return {"path": str(self._path)}
