"""Nodes of the pretrained pipeline: one published checkpoint of ``params:pretrained`` imported into
the project's format and measured on the test split (when it is at ``prepare.scale``) and on every
benchmark at its scale, with the same evaluation, files and MLflow keys as a trained model."""

from __future__ import annotations

import logging
import re
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from superres.data.download import file_sha256
from superres.data.imageio import write_png
from superres.errors import ConfigError, WeightsError
from superres.evaluation import LATENCY_INPUT, BenchmarkPairs
from superres.evaluation import evaluate_model as evaluate_model_on
from superres.models import count_parameters
from superres.models.weights import Weights, save_weights
from superres.params.data import DataParams
from superres.params.evaluate import EvaluateParams
from superres.params.prepare import PrepareParams
from superres.params.pretrained import ROW_PREFIX, PretrainedParams, check_name
from superres.tracking import KIND_TAG, Tracker

log = logging.getLogger(__name__)

Partitions = Mapping[str, np.ndarray]


def entry(name: str, params: Mapping[str, Any]) -> PretrainedParams:
    """``pretrained.<name>`` checked; errors name the entry's own keys (``pretrained.imdn_x2.scale``)."""
    check_name(name)
    try:
        return PretrainedParams.from_params(params)
    except ConfigError as exc:
        message = str(exc).replace("pretrained.", f"pretrained.{name}.")
        raise ConfigError(re.sub(r"^pretrained: ", f"pretrained.{name}: ", message)) from None


def import_pretrained(params: Mapping[str, Any], data: Mapping[str, Any], *, name: str) -> Weights:
    """The checkpoint of ``pretrained.<name>``, fetched (a URL downloaded once into ``data.cache_dir``),
    checked against its sha256 and imported; its config records where it came from and its size."""
    from superres.models.official import fetch, import_official, resolve  # SciPy and the readers: only here

    typed = entry(name, params)
    try:
        url, arch, scale, sha256, origin = resolve(typed.source, typed.arch, typed.scale, typed.sha256, typed.origin)
    except WeightsError as exc:
        raise ConfigError(f"pretrained.{name}: {exc}") from None
    cache = DataParams.from_params(data).cache_dir
    start = time.perf_counter()
    path = fetch(url, sha256, Path(cache).expanduser() / "pretrained" if cache else None)
    source = {"name": name, "source": url, "sha256": file_sha256(path), **({"origin": origin} if origin else {})}
    weights = import_official(path, arch, scale, source)
    weights.config["parameters"] = count_parameters(weights.build())
    weights.config["pretrained"]["import_seconds"] = round(time.perf_counter() - start, 3)
    log.info("pretrained %s: %s x%d imported from %s (%s)", name, arch, scale, url,
             weights.config["pretrained"]["format"])
    return weights


def evaluate_pretrained(
    weights: Weights,
    test_lr: Partitions,
    test_hr: Partitions,
    benchmarks: BenchmarkPairs,
    evaluate: Mapping[str, Any],
    prepare: Mapping[str, Any],
    tracking: Mapping[str, Any],
    tracking_uri: str,
    *,
    name: str,
) -> tuple[dict[str, np.ndarray], pd.DataFrame, pd.DataFrame, dict[str, Any], dict[str, Any], dict[str, str]]:
    """Measure the imported weights as :func:`superres.pipelines.architecture.nodes.evaluate_model`
    measures a trained model, and record them in an MLflow run of their own (``pretrained:<name>``,
    tagged ``superres.kind: pretrained``) under the same metric keys. The test split is measured
    only when the checkpoint is at ``prepare.scale`` (its LR images are made at that scale)."""
    typed = EvaluateParams.from_params(evaluate)
    scale = int(weights.config["scale"])
    at_scale = scale == PrepareParams.from_params(prepare).scale
    test = {image: (test_lr[image], test_hr[image]) for image in test_hr} if at_scale else None
    if not at_scale:
        log.info("pretrained %s is x%d, the test split x%d: measured on the benchmarks at x%d only", name, scale,
                 PrepareParams.from_params(prepare).scale, scale)
    row = f"{ROW_PREFIX}{name}"
    evaluation = evaluate_model_on(weights, test, benchmarks, device="auto", name=row, precision=typed.precision)
    config, pretrained = weights.config, weights.config["pretrained"]
    params = {"architecture": config["architecture"], "scale": scale, "model": config["model"],
              **{key: pretrained[key] for key in ("source", "sha256", "origin", "format") if key in pretrained}}
    tracker = Tracker(tracking_uri, tracking["experiment"])
    with tracker.run(row, params, {KIND_TAG: "pretrained", "superres.architecture": str(config["architecture"])}) \
            as run_id:
        tracker.set_tags(run_id, {"superres.inference": evaluation.timing["precision"]})
        tracker.log_metrics(run_id, {**evaluation.means, "parameters": config["parameters"],
                                     f"latency_{LATENCY_INPUT}px_ms": evaluation.latency_s * 1000})
        with tempfile.TemporaryDirectory() as tmp:
            save_weights(tmp, weights)
            tracker.log_artifacts(run_id, tmp, "model")
        with tempfile.TemporaryDirectory() as tmp:
            for image, sr in list(evaluation.sr_images.items())[:4]:
                write_png(Path(tmp) / f"{image}.png", sr)
            evaluation.per_image.to_csv(Path(tmp) / "per_image.csv", index=False)
            tracker.log_artifacts(run_id, tmp, "evaluation")
    sr_images = evaluation.sr_images if typed.save_images else {}
    return (sr_images, evaluation.per_image, evaluation.per_benchmark, evaluation.metrics, evaluation.timing,
            {"run_id": run_id, "experiment_id": tracker.experiment_id})
