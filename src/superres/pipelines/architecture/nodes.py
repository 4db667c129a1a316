"""Nodes of the per-architecture template. Thin: they call the library and the tracker."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import shutil
import signal
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from superres.data.benchmarks import load_pairs, split_key
from superres.data.imageio import write_png
from superres.errors import ConfigError, WeightsError
from superres.inference import measure_latency, pick_device, super_resolve
from superres.machine import describe_machine, machine_tags
from superres.losses import PerceptualLoss, vgg19_weights
from superres.metrics import METRICS, aggregate, image_metrics, json_safe
from superres.models import count_parameters, create_discriminator, create_model
from superres.models.weights import Weights, save_weights
from superres.training import checkpoint
from superres.training.config import TrainConfig
from superres.training.data import PatchDataset
from superres.training.tracking import MlflowCallback, Tracker, default_tracking_uri, run_tags
from superres.training.trainer import seed_everything, train

log = logging.getLogger(__name__)

Partitions = Mapping[str, Callable[[], np.ndarray]]
HISTORY_CURVES = {"train_loss": "train/loss", "val_psnr_y": "val/psnr_y"}  # history.csv column -> MLflow metric
PICTURES_LOGGED = 4
LATENCY_INPUT = 256  # side of the LR input whose upscaling time is reported


def _tracker(tracking: Mapping[str, Any]) -> Tracker:
    return Tracker(default_tracking_uri(Path.cwd()), tracking["experiment"])


def _perceptual(config: TrainConfig, data: Mapping[str, Any]) -> tuple[nn.Module | None, str]:
    """The VGG19 perceptual loss of ``config``, or None and the reason it is off."""
    if config.perceptual_weight <= 0:
        return None, ""
    try:
        weights = vgg19_weights(config.perceptual_weights, data.get("cache_dir"))
    except WeightsError as exc:
        if config.perceptual_required:
            raise WeightsError(f"{exc} (train.perceptual_required is true: this profile does not train without it)") from None
        log.warning("training without the perceptual loss: %s", exc)
        return None, ("perceptual loss off: the VGG19 ImageNet weights (vgg19-dcbe5e81.pth) could not be had, "
                      "so it trained with the pixel and adversarial losses only")
    return PerceptualLoss(weights, config.perceptual_layer, config.perceptual_before_activation, config.perceptual_criterion), ""


def _run_folder(checkpoints: Path, fingerprint: Mapping[str, Any]) -> Path:
    """The checkpoint folder of this exact configuration: a changed parameter or data set never
    resumes from another run's state."""
    digest = hashlib.sha256(json.dumps(fingerprint, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return checkpoints / digest


def train_model(
    patches: Mapping[str, np.ndarray],
    val_lr: Partitions,
    val_hr: Partitions,
    checkpoints: Path,
    model_params: Mapping[str, Any],
    train_overrides: Mapping[str, Any] | None,
    train_params: Mapping[str, Any],
    prepare: Mapping[str, Any],
    data: Mapping[str, Any],
    tracking: Mapping[str, Any],
    profile: str,
    *,
    architecture: str,
    seed: int = 0,
) -> tuple[Weights, pd.DataFrame, dict[str, str]]:
    """Train ``architecture`` with ``seed`` (its initial weights and batches) on the training
    patches, validating on the val split; record the run in MLflow. Returns the best weights,
    the validation history and the MLflow run.

    A run killed part-way (a checkpoint every ``train.checkpoint_every`` iterations) resumes where
    it stopped when the stage runs again with the same parameters and data, in the same MLflow run
    (its id is in the checkpoint), and its training time adds up over the stretches. Ctrl-C and
    SIGTERM end the MLflow run KILLED and keep the checkpoint; an error ends it FAILED. A GAN gets
    its discriminator and, when its weights can be had, the VGG19 perceptual loss."""
    scale = int(prepare["scale"])
    if "seed" in train_params or "seed" in (train_overrides or {}):
        raise ConfigError("train.seed is no longer read: list the seeds to train in the top-level `seeds` "
                          "parameter (e.g. seeds: [0, 1, 2]) and remove train.seed")
    config = dataclasses.replace(TrainConfig.from_params(dict(train_params), **dict(train_overrides or {})), seed=seed)
    model_params = dict(model_params or {})
    perceptual, note = _perceptual(config, data)
    if note:
        config = dataclasses.replace(config, perceptual_weight=0.0)
    notes = [note] if note else []
    seed_everything(config.seed)  # the initial weights too are seeded
    model = create_model(architecture, scale=scale, **model_params)
    discriminator = create_discriminator(**config.discriminator) if config.gan_start is not None else None
    n_params = count_parameters(model)
    dataset = PatchDataset(patches["lr"], patches["hr"], augment=config.augment)
    val_pairs = [(val_lr[name](), val_hr[name]()) for name in sorted(val_hr)]
    log.info("%s: %d parameters, %d training patches, %d validation images", architecture, n_params, len(dataset),
             len(val_pairs))
    run_folder = _run_folder(checkpoints, {"architecture": architecture, "scale": scale, "model": model_params,
                                           "train": config.to_dict(),
                                           "patches": [list(dataset.lr.shape), list(dataset.hr.shape)],
                                           "val": sorted(val_hr)})

    tracker = _tracker(tracking)
    params = {"architecture": architecture, "seed": seed, "scale": scale, "profile": profile, "model": model_params,
              "train": config.to_dict()}
    device = pick_device(config.device)
    machine = describe_machine(device)
    tags = {**run_tags(architecture, seed), **machine_tags(machine)}
    if notes:
        tags["superres.notes"] = "; ".join(notes)
    with _terminate_as_interrupt():  # SIGTERM (timeout, CI, containers) ends the run as Ctrl-C does
        saved = checkpoint.peek(run_folder / checkpoint.FILENAME)
        run_id = _open_run(tracker, architecture, params, tags, saved)
        try:
            result = train(model, dataset, val_pairs, config, scale=scale, callbacks=[MlflowCallback(tracker, run_id)],
                           discriminator=discriminator, perceptual=perceptual, checkpoint_dir=run_folder, resume=True,
                           metadata={RUN_ID_KEY: run_id})
            if result.resumed_from:
                notes.append(f"resumed from the checkpoint of iteration {result.resumed_from}")
            weights = Weights(
                result.state_dict,
                {
                    "architecture": architecture,
                    "seed": seed,
                    "scale": scale,
                    "model": model_params,
                    "parameters": n_params,
                    "profile": profile,
                    "train": config.to_dict(),
                    "iterations": result.iterations,
                    "train_seconds": round(result.seconds, 3),
                    "best_step": result.best_step,
                    "best_val_psnr_y": json_safe(result.best_psnr_y),
                    "stopped_early": result.stopped_early,
                    "notes": notes,
                    "mlflow_run_id": run_id,
                    "machine": machine,
                },
            )
            history = pd.DataFrame(result.history, columns=["step", "train_loss", "lr", "val_psnr_y"])
            tracker.log_metrics(run_id, {"parameters": n_params, "train/seconds": result.seconds,
                                         "val/best_psnr_y": result.best_psnr_y}, result.iterations)
            with tempfile.TemporaryDirectory() as tmp:
                save_weights(tmp, weights)
                history.to_csv(Path(tmp) / "history.csv", index=False)
                tracker.log_artifacts(run_id, tmp, "model")
        except KeyboardInterrupt as exc:  # Ctrl-C or SIGTERM: the checkpoint stays, the next run continues this one
            tracker.end_run(run_id, killed=True)
            log.warning("%s: training %s; MLflow run %s ended KILLED; running the stage again resumes from the last "
                        "checkpoint in %s", architecture, exc or "interrupted", run_id, run_folder)
            raise
        except BaseException:
            tracker.end_run(run_id, failed=True)
            raise
        tracker.end_run(run_id)
    shutil.rmtree(checkpoints, ignore_errors=True)  # the run is complete: its working state goes
    return weights, history, {"run_id": run_id, "experiment_id": tracker.experiment_id}


RUN_ID_KEY = "mlflow_run_id"  # the key of the MLflow run id in a checkpoint's metadata


def _open_run(tracker: Tracker, architecture: str, params: Mapping[str, Any], tags: Mapping[str, str],
              saved: Mapping[str, Any] | None) -> str:
    """The MLflow run of this training. A training that resumes from a checkpoint continues the
    run the checkpoint names, reopened, when that run is still in the store (killed, or left
    RUNNING by a SIGKILL); otherwise a new run, given the validation curve the checkpoint holds."""
    if saved is None:
        return tracker.start_run(architecture, params, tags=tags)
    previous = tracker.find_run(saved.get("metadata", {}).get(RUN_ID_KEY))
    if previous is not None:
        tracker.reopen_run(previous, tags)
        log.info("%s: continuing the MLflow run %s from the checkpoint of iteration %d", architecture, previous,
                 saved["step"])
        return previous
    run_id = tracker.start_run(architecture, params, tags={**tags, "superres.backfilled": "true"})
    tracker.log_history(run_id, saved["history"], HISTORY_CURVES)
    log.warning("%s: the MLflow run of the checkpoint of iteration %d is not in the store; recording a new run, "
                "backfilled with the %d validations the checkpoint holds", architecture, saved["step"],
                len(saved["history"]))
    return run_id


class Terminated(KeyboardInterrupt):
    """SIGTERM received: raised in the main thread, so the run ends as it does on Ctrl-C."""


@contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM raises ``Terminated`` (a ``KeyboardInterrupt``) in the main thread;
    the previous handler is back afterwards, and at once on the first SIGTERM, so that a second one
    acts as it would have. Outside the main thread (where Python delivers no signal) it does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGTERM)
    previous = signal.SIG_DFL if previous is None else previous  # None: a handler not installed from Python

    def interrupt(signum: int, frame: object) -> None:
        signal.signal(signal.SIGTERM, previous)
        raise Terminated(f"stopped by {signal.Signals(signum).name}")

    signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def evaluate_model(
    weights: Weights,
    history: pd.DataFrame,
    mlflow_run: Mapping[str, str],
    test_lr: Partitions,
    test_hr: Partitions,
    benchmarks: Path,
    evaluate: Mapping[str, Any],
    tracking: Mapping[str, Any],
    *,
    architecture: str,
    seed: int = 0,
) -> tuple[dict[str, np.ndarray], pd.DataFrame, pd.DataFrame, dict[str, Any], dict[str, Any]]:
    """Super-resolve the test split and every benchmark set, and measure them as the SR
    literature does: PSNR/SSIM on Y with ``scale`` pixels shaved, plus RGB PSNR, MAE and MSE,
    under the keys ``test/...`` and ``<set>_x<scale>/...``; and the latency of one 256x256 input
    on the device, with the machine that measured it. Logs into the training run of ``seed``.

    A trained model is evaluated on the benchmarks at its own scale; bicubic, which has nothing
    to train, at every scale."""
    scale = int(weights.config["scale"])
    device = pick_device("auto")
    model = weights.build(device)
    latency = measure_latency(model, device, size=LATENCY_INPUT)
    rows, outputs = [], {}
    test_pairs = {name: (test_lr[name], test_hr[name]) for name in test_hr}
    for name, sr, measured in _measure(model, test_pairs, scale, f"evaluate {architecture}"):
        rows.append(measured)
        outputs[name] = sr
    image_names = list(outputs)
    per_image = pd.DataFrame(rows).assign(image=image_names)[["image", *rows[0]]]
    means = {f"test/{key}": value for key, value in aggregate(rows).items()}
    per_benchmark, benchmark_means = _evaluate_benchmarks(model, weights, benchmarks, architecture, device)
    means.update(benchmark_means)
    metrics = {key: json_safe(value) for key, value in sorted(means.items())}
    log.info("%s: %s", architecture, ", ".join(f"{k} {v}" for k, v in metrics.items()))

    tracker = _tracker(tracking)
    run_id = tracker.find_run(mlflow_run.get("run_id"))
    if run_id is None:
        log.warning("%s: the training run %s is not in the MLflow store; recording a new run from the saved files",
                    architecture, mlflow_run.get("run_id"))
        config = dict(weights.config)
        run_id = tracker.start_run(architecture, {k: config[k] for k in ("architecture", "seed", "scale", "profile", "model",
                                                                         "train") if k in config},
                                   tags={**run_tags(architecture, seed), "superres.backfilled": "true"})
        tracker.log_history(run_id, history.to_dict("records"), HISTORY_CURVES)
        tracker.log_metrics(run_id, {"parameters": config.get("parameters", 0)})
        tracker.end_run(run_id)
    tracker.log_metrics(run_id, {**means, "latency_256px_ms": latency * 1000})
    with tempfile.TemporaryDirectory() as tmp:
        for name in image_names[:PICTURES_LOGGED]:
            write_png(Path(tmp) / f"{name}.png", outputs[name])
        per_image.to_csv(Path(tmp) / "per_image.csv", index=False)
        tracker.log_artifacts(run_id, tmp, "evaluation")
    sr_images = outputs if evaluate.get("save_images", True) else {}
    timing = {"latency_ms": round(latency * 1000, 3), "latency_input": f"{LATENCY_INPUT}x{LATENCY_INPUT}", "device": str(device),
              "machine": describe_machine(device)}
    return sr_images, per_image, per_benchmark, metrics, timing


Pairs = Mapping[str, tuple[Callable[[], np.ndarray], Callable[[], np.ndarray]]]  # name -> (load LR, load HR)


def _measure(model: nn.Module, pairs: Pairs, scale: int, desc: str) -> Iterator[tuple[str, np.ndarray, dict[str, float]]]:
    """``(name, SR image, its metrics)`` of every ``(LR, HR)`` pair, by name, decoded one at a time."""
    for name in tqdm(sorted(pairs), desc=desc, unit="image", disable=None):
        lr, hr = pairs[name]
        sr = super_resolve(model, lr())
        yield name, sr, image_metrics(sr, hr(), scale)


def _evaluate_benchmarks(
    model: nn.Module, weights: Weights, root: Path, architecture: str, device: torch.device
) -> tuple[pd.DataFrame, dict[str, float]]:
    """Per-image metrics on every benchmark set the model can take, and their means by key."""
    rows, means = [], {}
    for key, pairs in load_pairs(root).items():
        benchmark, scale = split_key(key)
        if scale == int(weights.config["scale"]):
            net = model
        elif count_parameters(model) == 0:  # nothing trained: the same model at another scale
            net = create_model(architecture, scale=scale, **weights.config.get("model", {})).to(device).eval()
        else:
            log.info("%s: not evaluated on %s, it was trained for x%s", architecture, key, weights.config["scale"])
            continue
        measured = []
        for name, _, metrics in _measure(net, pairs, scale, f"{architecture} on {key}"):
            measured.append(metrics)
            rows.append({"dataset": key, "benchmark": benchmark, "scale": scale, "image": name, **metrics})
        means.update({f"{key}/{metric}": value for metric, value in aggregate(measured).items()})
    return pd.DataFrame(rows, columns=["dataset", "benchmark", "scale", "image", *METRICS]), means
