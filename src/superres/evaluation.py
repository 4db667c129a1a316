"""Evaluation as the SR literature does it: super-resolve LR/HR pairs and measure them with
:func:`superres.metrics.image_metrics` (PSNR and SSIM on Y with ``scale`` pixels shaved, RGB PSNR,
MAE and MSE), on the test split and on benchmark sets, plus the latency of one input.

Plain Python: no Kedro, no MLflow. The evaluate node, ``superres evaluate`` and scripts call it.

Metric keys: ``test/<metric>`` for the test split, ``<set>_x<scale>/<metric>`` for a benchmark set
(``set5_x4/psnr_y``): the same in ``metrics.json``, in DVC and in MLflow. A set is ``<set>_x<scale>``
with its pairs, as :func:`superres.data.benchmarks.load_pairs` reads them; :func:`folder_pairs` makes
them from any folder of HR images exactly as the benchmarks stage does.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from superres.data.benchmarks import benchmark_plan, load_pairs, split_key, write_benchmarks
from superres.errors import ConfigError
from superres.inference import Inference, for_inference, measure_latency, pick_device, super_resolve
from superres.machine import describe_machine
from superres.metrics import METRICS, aggregate, image_metrics, json_safe
from superres.models import count_parameters, create_model
from superres.models.weights import Weights
from superres.precision import Precision

__all__ = ["BENCHMARK_COLUMNS", "LATENCY_INPUT", "Evaluation", "SplitResult", "evaluate", "evaluate_benchmarks",
           "evaluate_model", "folder_pairs", "measure"]

log = logging.getLogger(__name__)

LATENCY_INPUT = 256  # side of the LR input whose upscaling time is reported
BENCHMARK_COLUMNS = ["dataset", "benchmark", "scale", "image", *METRICS]

Image = np.ndarray | Callable[[], np.ndarray]  # a uint8 H x W x C image, or a function that loads it
Pairs = Mapping[str, tuple[Image, Image]]  # image name -> (LR, HR)
BenchmarkPairs = Mapping[str, Pairs]  # "<set>_x<scale>" -> its pairs


def _image(image: Image) -> np.ndarray:
    return image() if callable(image) else image


def measure(model: nn.Module, pairs: Pairs, scale: int, desc: str = "evaluate"
            ) -> Iterator[tuple[str, np.ndarray, dict[str, float]]]:
    """``(name, SR image, its metrics)`` of every ``(LR, HR)`` pair, by name, loaded one at a time."""
    for name in tqdm(sorted(pairs), desc=desc, unit="image", disable=None):
        lr, hr = pairs[name]
        sr = super_resolve(model, _image(lr))
        yield name, sr, image_metrics(sr, _image(hr), scale)


@dataclass
class SplitResult:
    """The measures of one set of pairs."""

    per_image: pd.DataFrame  # image and the metrics of superres.metrics.METRICS, by image name
    means: dict[str, float]  # metric -> its mean over the images (an infinite PSNR stays inf)
    outputs: dict[str, np.ndarray]  # image name -> SR image (empty unless kept)


def _model_and_config(model: nn.Module | Weights, config: Mapping[str, Any] | None,
                      device: str | torch.device | None, precision: str = "auto"
                      ) -> tuple[Inference, dict[str, Any], torch.device]:
    """The model ready to infer on its device in the inference precision (:func:`~superres.inference.for_inference`,
    ``precision`` auto | bf16 | fp32), its config (``architecture``, ``scale``, ``model``) and the device."""
    if isinstance(model, Weights):
        device = pick_device(device) if isinstance(device, str) else device or pick_device("auto")
        config = dict(model.config)
        return for_inference(model.build(device), config.get("architecture"), device, precision), config, device
    if isinstance(model, Inference):
        return model, dict(config or {}), model.device
    if config is None or "scale" not in config:
        raise ConfigError("evaluating a bare model needs its config: at least {'scale': N} "
                          "(and 'architecture', 'model' to evaluate a model without weights at other scales)")
    if device is None:
        tensors = [*model.parameters(), *model.buffers()]
        device = tensors[0].device if tensors else torch.device("cpu")
    device = pick_device(device) if isinstance(device, str) else device
    return for_inference(model, config.get("architecture"), device, precision), dict(config), device


def evaluate(model: nn.Module | Weights, pairs: Pairs, scale: int | None = None, *, desc: str = "evaluate",
             keep_outputs: bool = False, device: str | torch.device | None = None, precision: str = "auto"
             ) -> SplitResult:
    """Super-resolve every pair of ``pairs`` with ``model`` and measure it at ``scale`` (default: the
    scale of the weights). Returns the per-image metrics, their means and, with ``keep_outputs``, the
    SR images.

    Raises:
        ConfigError: ``pairs`` is empty, or ``model`` is a bare module and ``scale`` is not given.
    """
    net, _, _ = _model_and_config(model, {"scale": scale} if scale is not None else None, device, precision)
    scale = int(model.config["scale"]) if scale is None else int(scale)
    rows, names, outputs = [], [], {}
    for name, sr, metrics in measure(net, pairs, scale, desc):
        rows.append(metrics)
        names.append(name)
        if keep_outputs:
            outputs[name] = sr
    means = aggregate(rows)  # no pairs: a ConfigError saying so
    per_image = pd.DataFrame(rows).assign(image=names)[["image", *rows[0]]]
    return SplitResult(per_image, means, outputs)


def evaluate_benchmarks(model: nn.Module | Weights, benchmarks: BenchmarkPairs, *,
                        config: Mapping[str, Any] | None = None, device: str | torch.device | None = None,
                        precision: str = "auto") -> tuple[pd.DataFrame, dict[str, float]]:
    """Per-image metrics on every benchmark set the model can take (columns :data:`BENCHMARK_COLUMNS`),
    and their means under ``<set>_x<scale>/<metric>``.

    A model is measured on the sets of its own scale; one without weights (bicubic) at every scale,
    rebuilt from ``config`` (``architecture``, ``model``) for each. ``config`` is the weights' own
    when ``model`` is :class:`~superres.models.weights.Weights`."""
    net, config, device = _model_and_config(model, config, device, precision)
    architecture = config.get("architecture", "model")
    rows, means = [], {}
    for key, pairs in benchmarks.items():
        benchmark, scale = split_key(key)
        if scale == int(config["scale"]):
            at_scale = net
        elif count_parameters(net) == 0 and "architecture" in config:  # nothing trained: rebuilt at this scale
            at_scale = create_model(architecture, scale=scale, **config.get("model", {})).to(device).eval()
        else:
            log.info("%s: not evaluated on %s, it was trained for x%s", architecture, key, config["scale"])
            continue
        measured = []
        for name, _, metrics in measure(at_scale, pairs, scale, f"{architecture} on {key}"):
            measured.append(metrics)
            rows.append({"dataset": key, "benchmark": benchmark, "scale": scale, "image": name, **metrics})
        means.update({f"{key}/{metric}": value for metric, value in aggregate(measured).items()})
    return pd.DataFrame(rows, columns=BENCHMARK_COLUMNS), means


@dataclass
class Evaluation:
    """What :func:`evaluate_model` measured."""

    sr_images: dict[str, np.ndarray]  # the test split super-resolved, by image name
    per_image: pd.DataFrame  # the test split: image and its metrics (empty without a test split)
    per_benchmark: pd.DataFrame  # every benchmark image measured: BENCHMARK_COLUMNS
    means: dict[str, float]  # test/<metric> and <set>_x<scale>/<metric>, floats (an infinite PSNR stays inf)
    metrics: dict[str, Any]  # the same, sorted by key and valid JSON (inf as "inf"): metrics.json
    latency_s: float | None  # median seconds to upscale one LATENCY_INPUT x LATENCY_INPUT input (None: not measured)
    timing: dict[str, Any]  # latency_ms, latency_input, device and the machine that measured them
    device: torch.device
    precision: Precision  # what the model inferred in


def evaluate_model(model: nn.Module | Weights, test: Pairs | None = None, benchmarks: BenchmarkPairs | None = None,
                   *, config: Mapping[str, Any] | None = None, device: str | torch.device | None = None,
                   latency: bool = True, name: str | None = None, precision: str = "auto") -> Evaluation:
    """Measure a model as the SR literature does: the ``test`` pairs (keys ``test/<metric>``, SR
    images kept) and every set of ``benchmarks`` the model can take (:func:`evaluate_benchmarks`);
    and, with ``latency``, the median time to upscale one 256x256 input on ``device``. The model infers
    in the precision :func:`~superres.precision.inference_precision` picks (``precision``: auto | bf16 | fp32).

    ``model``: trained weights (built on ``device``, default the best available), or a module with
    its ``config`` (``architecture``, ``scale``, ``model``). ``name`` names it in the progress bars
    and the log (default: its architecture)."""
    net, config, device = _model_and_config(model, config, device, precision)
    name = name or config.get("architecture", "model")
    latency_s = measure_latency(net, device, size=LATENCY_INPUT) if latency else None
    means: dict[str, float] = {}
    sr_images: dict[str, np.ndarray] = {}
    per_image = pd.DataFrame(columns=["image", *METRICS])
    if test is not None:
        split = evaluate(net, test, int(config["scale"]), desc=f"evaluate {name}", keep_outputs=True)
        sr_images, per_image = split.outputs, split.per_image
        means.update({f"test/{key}": value for key, value in split.means.items()})
    per_benchmark, benchmark_means = evaluate_benchmarks(net, benchmarks or {}, config=config, device=device)
    means.update(benchmark_means)
    metrics = {key: json_safe(value) for key, value in sorted(means.items())}
    log.info("%s: %s", name, ", ".join(f"{k} {v}" for k, v in metrics.items()))
    timing = {"device": str(device), "precision": net.precision.record(), "machine": describe_machine(device)}
    if latency_s is not None:
        timing = {"latency_ms": round(latency_s * 1000, 3), "latency_input": f"{LATENCY_INPUT}x{LATENCY_INPUT}",
                  **timing}
    return Evaluation(sr_images, per_image, per_benchmark, means, metrics, latency_s, timing, device, net.precision)


_PAIRS_FOLDER = re.compile(r"^.+_x\d+$")


def _set_name(folder: Path, taken: set[str]) -> str:
    """A benchmark name for a folder of HR images: its name in lowercase letters, digits and
    underscores, starting with a letter, distinct from ``taken`` (``set5`` for ``Set5/``)."""
    name = re.sub(r"[^a-z0-9_]+", "_", folder.resolve().name.lower()).strip("_") or "images"
    if not name[0].isalpha():
        name = f"set_{name}"
    if _PAIRS_FOLDER.match(name) or name in {"nan", "null", "none", "na"}:
        name = f"{name}_hr"
    base, n = name, 2
    while name in taken:
        name, n = f"{base}_{n}", n + 1
    return name


def folder_pairs(folders: Sequence[str | Path], scales: Iterable[int], work_dir: str | Path, *,
                 max_pixels: int) -> BenchmarkPairs:
    """The benchmark sets of ``folders``, by key ``<set>_x<scale>``. Each folder is one of:

    - a folder the benchmarks stage wrote (``<set>_x<scale>/{hr,lr}/*.png``): its sets as they are;
    - one set of it (``set5_x4/`` holding ``hr/`` and ``lr/``): that set;
    - a folder of HR images (searched recursively): made into pairs at every scale of ``scales``
      exactly as the benchmarks stage does (checked as the stage checks them, modcropped, MATLAB
      bicubic down, 8 bits), written under ``work_dir`` with ``report.csv`` saying which files were
      used; the set is named after the folder (``Set5/`` -> ``set5``).

    Raises:
        ConfigError: a folder does not exist, holds no usable image, or two folders give the same set.
    """
    found: dict[str, Pairs] = {}
    hr_folders: dict[str, Path] = {}

    def add(sets: Mapping[str, Pairs], folder: Path) -> None:
        for key, pairs in sets.items():
            if key in found:
                raise ConfigError(f"{folder}: the set {key} is given twice; give each set once")
            found[key] = pairs

    for folder in map(Path, folders):
        if not folder.is_dir():
            raise ConfigError(f"{folder} is not a folder; give a folder of HR images or of benchmark pairs")
        if _PAIRS_FOLDER.match(folder.name) and (folder / "hr").is_dir() and (folder / "lr").is_dir():
            add({folder.name: load_pairs(folder.parent)[folder.name]}, folder)
        elif sets := load_pairs(folder):
            add(sets, folder)
        else:
            hr_folders[_set_name(folder, set(hr_folders))] = folder
    if hr_folders:
        plan, scales = benchmark_plan({"folders": hr_folders, "scales": sorted(set(scales))}, 0)
        write_benchmarks(Path(work_dir), plan, scales, max_pixels=max_pixels)
        add(load_pairs(Path(work_dir)), Path(work_dir))
    return dict(sorted(found.items()))
