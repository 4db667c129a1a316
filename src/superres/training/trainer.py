"""The training loop, one for every architecture. It reads top to bottom:

seed -> optimiser, schedule, loss -> for each iteration: batch, step, log ->
every ``val_every`` iterations: validate PSNR-Y, keep the best weights, maybe stop early.

Iteration-based (as the SR papers count), Adam, step learning-rate decay, validation with the
very metric of the evaluation (PSNR on Y, ``scale`` pixels shaved), a progress bar.
Callbacks observe the run; MLflow is one of them.
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, RandomSampler
from tqdm.auto import tqdm

from superres.errors import SuperresError
from superres.inference import pick_device, super_resolve
from superres.losses import build_loss
from superres.metrics import psnr
from superres.training.config import TrainConfig
from superres.training.data import PatchDataset

log = logging.getLogger(__name__)

ValPair = tuple[np.ndarray, np.ndarray]  # (LR, HR) uint8 H x W x C


class Callback(Protocol):
    """Observes a training run. Every method is optional."""

    def on_train_start(self, model: nn.Module, config: TrainConfig) -> None: ...
    def on_log(self, step: int, metrics: dict[str, float]) -> None: ...
    def on_validation(self, step: int, metrics: dict[str, float]) -> None: ...
    def on_train_end(self, result: TrainResult) -> None: ...


@dataclass
class TrainResult:
    state_dict: dict[str, torch.Tensor]  # the best weights (highest validation PSNR-Y), on the CPU
    history: list[dict[str, float]] = field(default_factory=list)  # one row per validation
    best_step: int = 0
    best_psnr_y: float = -math.inf
    iterations: int = 0
    seconds: float = 0.0
    stopped_early: bool = False


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def validate(model: nn.Module, pairs: Sequence[ValPair], scale: int, device: torch.device) -> float:
    """Mean PSNR-Y (``scale`` pixels shaved) of ``model`` over whole validation images."""
    model.eval()
    values = [psnr(super_resolve(model, lr, device), hr, shave=scale, y_channel=True) for lr, hr in pairs]
    model.train()
    return float(np.mean(values)) if values else math.nan


def _batches(loader: DataLoader) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    while True:
        yield from loader


def _call(callbacks: Sequence[Any], method: str, *args: Any) -> None:
    for callback in callbacks:
        hook = getattr(callback, method, None)
        if hook is not None:
            hook(*args)


def train(
    model: nn.Module,
    patches: PatchDataset,
    val_pairs: Sequence[ValPair],
    config: TrainConfig,
    *,
    scale: int,
    callbacks: Sequence[Any] = (),
) -> TrainResult:
    """Train ``model`` on ``patches``; return its best weights and the validation history."""
    seed_everything(config.seed)
    device = pick_device(config.device)
    model.to(device).train()
    _call(callbacks, "on_train_start", model, config)
    start = time.perf_counter()

    trainable = [p for p in model.parameters() if p.requires_grad]
    if not trainable:  # e.g. bicubic: nothing to learn, validate once
        value = validate(model, val_pairs, scale, device)
        row = {"step": 0, "train_loss": math.nan, "lr": 0.0, "val_psnr_y": value}
        _call(callbacks, "on_validation", 0, {"val_psnr_y": value})
        result = TrainResult(model.state_dict(), [row], 0, value, 0, time.perf_counter() - start)
        _call(callbacks, "on_train_end", result)
        return result

    optimizer = torch.optim.Adam(trainable, lr=config.lr, betas=config.betas, eps=config.eps)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=config.lr_step, gamma=config.lr_gamma)
    criterion = build_loss(config.loss)
    sampler = RandomSampler(
        patches,
        replacement=True,
        num_samples=config.iterations * config.batch_size,
        generator=torch.Generator().manual_seed(config.seed),
    )
    loader = DataLoader(
        patches,
        batch_size=config.batch_size,
        sampler=sampler,
        num_workers=config.num_workers,
        pin_memory=device.type == "cuda",
        drop_last=True,
    )

    result = TrainResult(state_dict={})
    running, seen, bad_validations = 0.0, 0, 0
    bar = tqdm(total=config.iterations, desc="train", unit="it", disable=None, dynamic_ncols=True)
    batches = _batches(loader)
    for step in range(1, config.iterations + 1):
        lr_batch, hr_batch = next(batches)
        lr_batch = lr_batch.to(device, non_blocking=True)
        hr_batch = hr_batch.to(device, non_blocking=True)
        loss = criterion(model(lr_batch), hr_batch)
        if not torch.isfinite(loss):
            raise SuperresError(
                f"training diverged at iteration {step} (loss {loss.item()}); lower train.lr or check the data"
            )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        running += loss.item()
        seen += 1
        bar.update()

        if step % config.log_every == 0:
            _call(callbacks, "on_log", step, {"train_loss": loss.item(), "lr": scheduler.get_last_lr()[0]})

        if step % config.val_every == 0 or step == config.iterations:
            value = validate(model, val_pairs, scale, device)
            row = {"step": step, "train_loss": running / seen, "lr": scheduler.get_last_lr()[0], "val_psnr_y": value}
            result.history.append(row)
            running, seen = 0.0, 0
            _call(callbacks, "on_validation", step, {"val_psnr_y": value})
            bar.set_postfix(loss=f"{row['train_loss']:.4f}", val_psnr_y=f"{value:.2f}")
            if value > result.best_psnr_y or not result.state_dict:
                result.best_psnr_y, result.best_step, bad_validations = value, step, 0
                result.state_dict = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
            else:
                bad_validations += 1
                if config.early_stopping is not None and bad_validations >= config.early_stopping:
                    log.info("early stopping at iteration %d: no better validation PSNR-Y for %d validations", step, bad_validations)
                    result.stopped_early = True
                    result.iterations = step
                    break
        result.iterations = step
    bar.close()
    result.seconds = time.perf_counter() - start
    log.info(
        "trained %d iterations in %.1f s; best validation PSNR-Y %.3f dB at iteration %d",
        result.iterations, result.seconds, result.best_psnr_y, result.best_step,
    )
    _call(callbacks, "on_train_end", result)
    return result
