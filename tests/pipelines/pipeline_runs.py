"""Run a pipeline through Kedro's ``SequentialRunner`` on a catalog built in the test: the parameters
of params.yaml (with small overrides), inputs in memory, and the project's own datasets only where a
node hands a dataset something to write (a folder writer) or reads what it wrote."""

from __future__ import annotations

import copy
import functools
from collections.abc import Mapping
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from kedro.io import AbstractDataset, DataCatalog, MemoryDataset
from kedro.pipeline import Pipeline
from kedro.runner import SequentialRunner
from PIL import Image

from superres.data.degrade import bicubic_resize
from superres.data.patches import extract_patches
from superres.pipelines.architecture import create_pipeline as architecture_pipeline
from superres.pipelines.architecture.pipeline import SHARED_INPUTS, namespace

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


def pictures(names: list[str], seed: int) -> tuple[dict, dict]:
    """``{name: load LR}``, ``{name: load HR}`` of x2 pictures of 40 x 48 HR pixels, as the prepare
    stage hands them on."""
    hr = {name: photo(40, 48, seed + i) for i, name in enumerate(names)}
    return ({n: partial(bicubic_resize, image, 1 / 2) for n, image in hr.items()},
            {n: partial(np.copy, image) for n, image in hr.items()})


ZOO = ("bicubic", "edsr")  # what the architecture and report tests run: the baseline and a tiny EDSR


@functools.cache
def zoo_run(folder: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """The pipelines of :data:`ZOO` (seed 0) run once per test session in ``folder``, with MLflow on a
    SQLite store there: tiny EDSR, 4 iterations on patches of two pictures, validated on one and tested
    on three, and a benchmark of one picture at x2. Returns what every node returned, and the
    catalog's entries (inputs and parameters)."""
    folder.mkdir(parents=True, exist_ok=True)
    params = project_params()
    params["prepare"].update(scale=2, patch_size=16, stride=8)
    params["train"].update(iterations=4, batch_size=4, val_every=2, log_every=2, checkpoint_every=2, lr_step=2)
    params["edsr"].update(model={"n_resblocks": 1, "n_feats": 8, "res_scale": 1.0}, train={})
    params.update(architectures=list(ZOO), seeds=[0])
    train_lr, train_hr = pictures(["a", "b"], seed=0)
    lr, hr = extract_patches(((train_lr[n](), train_hr[n]()) for n in train_hr), 2, 16, 8)
    val_lr, val_hr = pictures(["v"], seed=10)
    test_lr, test_hr = pictures(["t1", "t2", "t3"], seed=20)
    bench_lr, bench_hr = pictures(["b1"], seed=30)
    entries = {
        "train_patches": {"lr": lr, "hr": hr},
        "val_lr": val_lr, "val_hr": val_hr, "test_lr": test_lr, "test_hr": test_hr,
        "benchmark_pairs": {"mine_x2": {"b1": (bench_lr["b1"], bench_hr["b1"])}},
        "tracking_uri": f"sqlite:///{folder / 'mlflow.db'}",
        **{f"{namespace(arch, 0)}.checkpoints": folder / arch / "checkpoints" for arch in ZOO},
        **params_entries(params, "train", "prepare", "data", "tracking", "evaluate", "profile", "architectures",
                         "seeds", "report", "pretrained",
                         *(f"{arch}.{part}" for arch in ZOO for part in ("model", "train"))),
    }
    assert set(entries) >= SHARED_INPUTS
    pipeline = sum((architecture_pipeline(arch, [0]) for arch in ZOO), Pipeline([]))
    return run(pipeline, entries), entries
