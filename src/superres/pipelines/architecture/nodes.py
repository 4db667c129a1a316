"""Nodes of the per-architecture template: wiring. Training is :func:`superres.training.trainer.train`,
evaluation :func:`superres.evaluation.evaluate_model`, the MLflow record :class:`superres.tracking.Tracker`;
the nodes pass them what the catalog loads and return what it saves."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import shutil
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from torch import nn

from superres.data.imageio import write_png
from superres.errors import ConfigError, WeightsError
from superres.evaluation import LATENCY_INPUT, BenchmarkPairs
from superres.evaluation import evaluate_model as evaluate_model_on
from superres.inference import pick_device
from superres.interrupts import terminate_as_interrupt
from superres.losses import PerceptualLoss, vgg19_weights
from superres.machine import describe_machine, machine_tags
from superres.metrics import json_safe
from superres.models import count_parameters, create_discriminator, create_model
from superres.models.weights import Weights, save_weights
from superres.params.data import DataParams
from superres.params.evaluate import EvaluateParams
from superres.params.prepare import PrepareParams
from superres.serving import log_model
from superres.tracking import MlflowCallback, Resume, Tracker, run_tags
from superres.training import checkpoint
from superres.training.config import TrainConfig
from superres.training.data import PatchDataset
from superres.training.trainer import seed_everything, train

log = logging.getLogger(__name__)

Partitions = Mapping[str, Callable[[], np.ndarray]]
PICTURES_LOGGED = 4  # SR images of the test split logged to MLflow


def _perceptual(config: TrainConfig, data: DataParams) -> tuple[nn.Module | None, str]:
    """The VGG19 perceptual loss of ``config``, or None and the reason it is off."""
    if config.perceptual_weight <= 0:
        return None, ""
    try:
        weights = vgg19_weights(config.perceptual_weights, data.cache_dir)
    except WeightsError as exc:
        if config.perceptual_required:
            raise WeightsError(f"{exc} (train.perceptual_required is true: this profile does not train without it)"
                               ) from None
        log.warning("training without the perceptual loss: %s", exc)
        return None, ("perceptual loss off: the VGG19 ImageNet weights (vgg19-dcbe5e81.pth) could not be had, "
                      "so it trained with the pixel and adversarial losses only")
    return PerceptualLoss(weights, config.perceptual_layer, config.perceptual_before_activation,
                          config.perceptual_criterion), ""


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
    tracking_uri: str,
    profile: str,
    *,
    architecture: str,
    seed: int = 0,
) -> tuple[Weights, pd.DataFrame, dict[str, str]]:
    """Train ``architecture`` with ``seed`` (its initial weights and batches) on the training
    patches, validating on the val split; record the run in MLflow. Returns the best weights,
    the validation history and the MLflow run.

    A run killed part-way (a checkpoint every ``train.checkpoint_every`` iterations, in a subfolder
    of ``checkpoints`` per configuration) resumes where it stopped when the stage runs again with the
    same parameters and data, in the same MLflow run (its id is in the checkpoint), and its training
    time adds up over the stretches. Ctrl-C and SIGTERM end the MLflow run KILLED and keep the
    checkpoint; an error ends it FAILED; a completed run deletes ``checkpoints``, its working state.
    A GAN gets its discriminator and, when its weights can be had, the VGG19 perceptual loss.
    The runs are recorded in the store ``tracking_uri``, experiment ``tracking.experiment``."""
    scale = PrepareParams.from_params(prepare).scale
    if "seed" in train_params or "seed" in (train_overrides or {}):
        raise ConfigError("train.seed is no longer read: list the seeds to train in the top-level `seeds` "
                          "parameter (e.g. seeds: [0, 1, 2]) and remove train.seed")
    config = dataclasses.replace(TrainConfig.from_params(dict(train_params), **dict(train_overrides or {})), seed=seed)
    model_params = dict(model_params or {})
    perceptual, note = _perceptual(config, DataParams.from_params(data))
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

    tracker = Tracker(tracking_uri, tracking["experiment"])
    params = {"architecture": architecture, "seed": seed, "scale": scale, "profile": profile, "model": model_params,
              "train": config.to_dict()}
    device = pick_device(config.device)
    machine = describe_machine(device)
    tags = {**run_tags(architecture, seed), **machine_tags(machine)}
    if notes:
        tags["superres.notes"] = "; ".join(notes)
    saved = checkpoint.peek(run_folder / checkpoint.FILENAME)
    resume = None if saved is None else Resume(saved["step"], saved.get("metadata", {}).get(RUN_ID_KEY),
                                               saved["history"])
    run_id = None
    try:
        # SIGTERM (timeout, CI, containers) ends the run as Ctrl-C does: KILLED, the checkpoint kept
        with terminate_as_interrupt(), tracker.training_run(architecture, params, tags, resume) as run_id:
            with MlflowCallback(tracker, run_id) as callback:  # what is logged reaches the run, also on a failure
                result = train(model, dataset, val_pairs, config, scale=scale, callbacks=[callback],
                               discriminator=discriminator, perceptual=perceptual, checkpoint_dir=run_folder,
                               resume=True, metadata={RUN_ID_KEY: run_id}, architecture=architecture)
            tracker.set_tags(run_id, {"superres.precision": result.precision})  # what train() computed in
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
                    "precision": result.precision,
                },
            )
            history = pd.DataFrame(result.history, columns=["step", "train_loss", "lr", "val_psnr_y"])
            tracker.log_metrics(run_id, {"parameters": n_params, "train/seconds": result.seconds,
                                         "val/best_psnr_y": result.best_psnr_y}, result.iterations)
            with tempfile.TemporaryDirectory() as tmp:
                save_weights(tmp, weights)
                history.to_csv(Path(tmp) / "history.csv", index=False)
                tracker.log_artifacts(run_id, tmp, "model")
                model_id = log_model(tracker, run_id, tmp)  # the same weights as an MLflow Model
    except KeyboardInterrupt as exc:  # the checkpoint stays: the next run continues this one
        if run_id is not None:
            log.warning("%s: training %s; MLflow run %s ended KILLED; running the stage again resumes from the last "
                        "checkpoint in %s", architecture, exc or "interrupted", run_id, run_folder)
        raise
    shutil.rmtree(checkpoints, ignore_errors=True)  # the run is complete: its working state goes
    return weights, history, {"run_id": run_id, "experiment_id": tracker.experiment_id, "model_id": model_id}


RUN_ID_KEY = "mlflow_run_id"  # the key of the MLflow run id in a checkpoint's metadata


def evaluate_model(
    weights: Weights,
    history: pd.DataFrame,
    mlflow_run: Mapping[str, str],
    test_lr: Partitions,
    test_hr: Partitions,
    benchmarks: BenchmarkPairs,
    evaluate: Mapping[str, Any],
    tracking: Mapping[str, Any],
    tracking_uri: str,
    *,
    architecture: str,
    seed: int = 0,
) -> tuple[dict[str, np.ndarray], pd.DataFrame, pd.DataFrame, dict[str, Any], dict[str, Any]]:
    """Evaluate the trained weights on the test split and every benchmark set
    (:func:`superres.evaluation.evaluate_model`: the metrics under ``test/...`` and
    ``<set>_x<scale>/...``, the latency of one 256x256 input on the device) and log them into the
    training run of ``seed``, or into a run recorded anew from the saved files when that run is not in
    the store. Returns the SR images (none unless ``evaluate.save_images``), the per-image metrics of the
    test split and of the benchmarks, the metrics and the timing.

    A trained model is evaluated on the benchmarks at its own scale; bicubic, which has nothing
    to train, at every scale."""
    typed = EvaluateParams.from_params(evaluate)
    evaluation = evaluate_model_on(weights, {name: (test_lr[name], test_hr[name]) for name in test_hr}, benchmarks,
                                   device="auto", name=architecture, precision=typed.precision)
    tracker = Tracker(tracking_uri, tracking["experiment"])
    run_id = tracker.find_run(mlflow_run.get("run_id"))
    if run_id is None:
        log.warning("%s: the training run %s is not in the MLflow store; recording a new run from the saved files",
                    architecture, mlflow_run.get("run_id"))
        config = dict(weights.config)
        params = {k: config[k] for k in ("architecture", "seed", "scale", "profile", "model", "train") if k in config}
        with tracker.run(architecture, params, run_tags(architecture, seed),
                         backfill=history.to_dict("records")) as run_id:
            tracker.log_metrics(run_id, {"parameters": config.get("parameters", 0)})
            with tempfile.TemporaryDirectory() as tmp:  # the weights, as the training run logs them
                save_weights(tmp, weights)
                tracker.log_artifacts(run_id, tmp, "model")
                log_model(tracker, run_id, tmp)
    with tracker.resumed(run_id):  # an error leaves the run FAILED: its record is incomplete
        tracker.log_metrics(run_id, {**evaluation.means, f"latency_{LATENCY_INPUT}px_ms": evaluation.latency_s * 1000})
        tracker.set_tags(run_id, {"superres.inference": evaluation.timing["precision"]})  # may change with evaluate.*
        with tempfile.TemporaryDirectory() as tmp:
            for name in list(evaluation.sr_images)[:PICTURES_LOGGED]:
                write_png(Path(tmp) / f"{name}.png", evaluation.sr_images[name])
            evaluation.per_image.to_csv(Path(tmp) / "per_image.csv", index=False)
            tracker.log_artifacts(run_id, tmp, "evaluation")
    sr_images = evaluation.sr_images if typed.save_images else {}
    return sr_images, evaluation.per_image, evaluation.per_benchmark, evaluation.metrics, evaluation.timing
