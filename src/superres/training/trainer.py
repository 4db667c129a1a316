"""The training loop, one for every architecture. It reads top to bottom:

seed, devices, precision -> optimiser, schedule, losses, EMA, discriminator -> maybe resume ->
for each iteration: batch, generator step, discriminator step, log -> every ``val_every``
iterations: validate PSNR-Y, keep the best weights, maybe stop early -> every
``checkpoint_every`` iterations: write a checkpoint.

Iteration-based (as the SR papers count), Adam or SGD, a step, multistep or cosine schedule, validation
with the very metric of the evaluation (PSNR on Y, ``scale`` pixels shaved), a progress bar.
GANs (SRGAN, ESRGAN) train in the same loop: a pixel-only stage, then perceptual and
adversarial terms from ``gan_start`` on, with a discriminator step after each generator step.
The batch of an iteration is a pure function of (seed, iteration, rank), so a resumed run draws
exactly the batches the killed one would have. Under ``torchrun`` it trains with DDP and only
rank 0 validates, logs and writes. Callbacks observe the run; MLflow is one of them.
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from tqdm.auto import tqdm

from superres.errors import ConfigError, SuperresError, WeightsError
from superres.inference import pick_device, super_resolve
from superres.losses import GANLoss, build_loss
from superres.machine import make_deterministic
from superres.metrics import psnr
from superres.training import checkpoint, distributed
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
    state_dict: dict[str, torch.Tensor]  # the best weights (highest validation PSNR-Y; EMA when on), on the CPU
    history: list[dict[str, float]] = field(default_factory=list)  # one row per validation
    best_step: int = 0
    best_psnr_y: float = -math.inf
    iterations: int = 0
    seconds: float = 0.0  # training time, summed over the stretches of a resumed run (each up to its last checkpoint)
    stopped_early: bool = False
    resumed_from: int = 0  # the iteration of the checkpoint the run resumed from (0 = a fresh run)


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


def build_optimizer(parameters: Sequence[nn.Parameter], config: TrainConfig) -> torch.optim.Optimizer:
    """Adam (most SR papers) or SGD with momentum (SRCNN, VDSR), with ``weight_decay``."""
    if config.optimizer == "sgd":
        return torch.optim.SGD(parameters, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
    fused = all(p.is_cuda for p in parameters)  # one kernel for the whole update on a GPU
    return torch.optim.Adam(parameters, lr=config.lr, betas=config.betas, eps=config.eps,
                            weight_decay=config.weight_decay, fused=fused or None)


def build_scheduler(optimizer: torch.optim.Optimizer, config: TrainConfig) -> torch.optim.lr_scheduler.LRScheduler:
    """The learning-rate schedule of ``train.scheduler``, stepped once per iteration."""
    if config.scheduler == "multistep":
        return torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=list(config.milestones),
                                                    gamma=config.lr_gamma)
    if config.scheduler == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.iterations, eta_min=config.lr_min)
    return torch.optim.lr_scheduler.StepLR(optimizer, step_size=config.lr_step, gamma=config.lr_gamma)


def clip_gradients(parameters: Sequence[nn.Parameter], config: TrainConfig, lr: float) -> None:
    """``train.grad_clip`` by ``train.clip_mode``: the global norm, each element, or each element
    to ``grad_clip / lr`` (VDSR's adjustable clipping, which widens as the lr decays)."""
    if config.grad_clip is None:
        return
    if config.clip_mode == "norm":
        nn.utils.clip_grad_norm_(parameters, config.grad_clip)
    elif config.clip_mode == "value":
        nn.utils.clip_grad_value_(parameters, config.grad_clip)
    else:
        nn.utils.clip_grad_value_(parameters, config.grad_clip / lr)


def batch_generator(seed: int, step: int, rank: int) -> torch.Generator:
    """The random source of one iteration's batch: a function of (seed, iteration, rank) only."""
    state = np.random.SeedSequence([seed, step, rank]).generate_state(1, dtype=np.uint64)[0]
    return torch.Generator().manual_seed(int(state))


def _call(callbacks: Sequence[Any], method: str, *args: Any) -> None:
    for callback in callbacks:
        hook = getattr(callback, method, None)
        if hook is not None:
            hook(*args)


def _diverged(step: int, value: float) -> SuperresError:
    return SuperresError(
        f"training diverged at iteration {step} (loss {value}); lower train.lr (or set train.grad_clip) "
        "or check the data; the last checkpoint, if any, is from before the divergence"
    )


def _finite(module: nn.Module) -> bool:
    return all(bool(torch.isfinite(p).all()) for p in module.parameters())


def _cpu_copy(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True, memory_format=torch.contiguous_format)
            for k, v in module.state_dict().items()}


def _restore(state: dict[str, Any], key: str, target: Any, path: Path) -> None:
    """Load ``state[key]`` into a module, optimiser or scheduler; a mismatch names the file."""
    if key not in state:
        raise WeightsError(f"checkpoint {path} has no {key} state (written with another train config?); "
                           "delete it, or train without resume to start afresh")
    saved = state[key]
    if isinstance(target, torch.optim.lr_scheduler.LRScheduler):
        saved = {**target.state_dict(), **saved}
    try:
        target.load_state_dict(saved)
    except (RuntimeError, ValueError, KeyError) as exc:
        raise WeightsError(f"checkpoint {path} does not match this model or config ({exc}); "
                           "delete it, or train without resume to start afresh") from None


def train(
    model: nn.Module,
    patches: PatchDataset,
    val_pairs: Sequence[ValPair],
    config: TrainConfig,
    *,
    scale: int,
    callbacks: Sequence[Any] = (),
    discriminator: nn.Module | None = None,
    perceptual: nn.Module | None = None,
    checkpoint_dir: Path | None = None,
    resume: bool = False,
    metadata: Mapping[str, Any] | None = None,
) -> TrainResult:
    """Train ``model`` on ``patches``; return its best weights and the validation history.

    With ``config.gan_start`` set, ``discriminator`` (and ``perceptual``, the feature loss module)
    train it adversarially from that iteration. With ``checkpoint_dir`` a checkpoint is written
    every ``config.checkpoint_every`` iterations; ``resume`` continues from it when there is one,
    and the result's ``seconds`` then adds the time trained before that checkpoint. ``metadata``
    (strings, numbers, lists, dicts) is written into every checkpoint as it is, for the caller to
    read back with ``checkpoint.peek`` (e.g. the id of its tracking run); the trainer never reads it.
    """
    seed_everything(config.seed)
    context = distributed.setup(pick_device(config.device))
    try:  # the process group goes whatever ends the run: a divergence, an error, an interrupt
        return _train(model, patches, val_pairs, config, context, scale=scale, callbacks=callbacks,
                      discriminator=discriminator, perceptual=perceptual, checkpoint_dir=checkpoint_dir, resume=resume,
                      metadata=dict(metadata or {}))
    finally:
        distributed.teardown(context)


def _train(
    model: nn.Module,
    patches: PatchDataset,
    val_pairs: Sequence[ValPair],
    config: TrainConfig,
    context: distributed.Context,
    *,
    scale: int,
    callbacks: Sequence[Any],
    discriminator: nn.Module | None,
    perceptual: nn.Module | None,
    checkpoint_dir: Path | None,
    resume: bool,
    metadata: dict[str, Any],
) -> TrainResult:
    device = context.device
    make_deterministic(device)
    callbacks = callbacks if context.is_main else ()  # only rank 0 logs
    model.to(device).train()
    _call(callbacks, "on_train_start", model, config)
    start = time.perf_counter()
    before = 0.0  # the seconds trained before the checkpoint this run resumes from

    trainable = [p for p in model.parameters() if p.requires_grad]
    if not trainable:  # e.g. bicubic: nothing to learn, validate once
        value = validate(model, val_pairs, scale, device)
        row = {"step": 0, "train_loss": math.nan, "lr": 0.0, "val_psnr_y": value}
        _call(callbacks, "on_validation", 0, {"val_psnr_y": value})
        result = TrainResult(model.state_dict(), [row], 0, value, 0, time.perf_counter() - start)
        _call(callbacks, "on_train_end", result)
        return result

    # precision and memory layout: bf16 autocast and channels_last pay off on CUDA only
    use_amp = config.amp == "bf16" or (config.amp == "auto" and device.type == "cuda")
    channels_last = config.channels_last is True or (config.channels_last == "auto" and device.type == "cuda")
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    model.to(memory_format=memory_format)
    net = distributed.wrap(model, context)
    if config.compile:
        net = torch.compile(net)  # validation and saving use the uncompiled module

    optimizer = build_optimizer(trainable, config)
    scheduler = build_scheduler(optimizer, config)
    criterion = build_loss(config.loss).to(device)
    ema = None
    if config.ema is not None:
        ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(config.ema), use_buffers=True)
    evaluated = ema.module if ema is not None else model  # validated, kept as best and returned

    gan = config.gan_start is not None
    if gan:
        if discriminator is None:
            raise ConfigError("train.gan_start is set but no discriminator was given; set train.gan_start: null "
                              "to train without the adversarial stage")
        discriminator.to(device).train()
        d_optimizer = torch.optim.Adam(discriminator.parameters(), lr=config.d_lr or config.lr, betas=config.betas,
                                       eps=config.eps)
        d_scheduler = build_scheduler(d_optimizer, config)
        gan_loss = GANLoss(kind=config.gan_type, relativistic=config.relativistic)
    if perceptual is not None:
        perceptual.to(device)  # frozen and in eval mode by construction

    result = TrainResult(state_dict={})
    running, seen, bad_validations, first = 0.0, 0, 0, 1
    window, count = None, 0  # the losses of the steps since the last read-back, summed on the device
    path = Path(checkpoint_dir) / checkpoint.FILENAME if checkpoint_dir is not None else None
    if resume and path is None:
        raise ConfigError("resume needs a checkpoint folder (checkpoint_dir) to resume from")
    if resume and not path.exists():
        log.info("no checkpoint at %s: starting afresh", path)
    elif resume:
        state = checkpoint.load(path)
        _restore(state, "model", model, path)
        _restore(state, "optimizer", optimizer, path)
        _restore(state, "scheduler", scheduler, path)
        if ema is not None:
            _restore(state, "ema", ema, path)
        if gan:
            _restore(state, "discriminator", discriminator, path)
            _restore(state, "d_optimizer", d_optimizer, path)
            _restore(state, "d_scheduler", d_scheduler, path)
        result = TrainResult(state["best_state_dict"], state["history"], state["best_step"], state["best_psnr_y"],
                             state["step"], resumed_from=state["step"])
        running, seen, bad_validations = state["running"], state["seen"], state["bad_validations"]
        before = float(state.get("seconds", 0.0))  # absent from a checkpoint of an older version
        checkpoint.set_rng_state(state["rng"])
        first = state["step"] + 1
        log.info("resuming from the checkpoint of iteration %d in %s", state["step"], path)
        if config.early_stopping is not None and bad_validations >= config.early_stopping:
            # The run stopped early at the very iteration of this checkpoint: it stays stopped.
            result.stopped_early, first = True, config.iterations + 1
            log.info("the run had stopped early at iteration %d; nothing left to train", state["step"])

    bar = tqdm(total=config.iterations, initial=first - 1, desc="train", unit="it",
               disable=None if context.is_main else True, dynamic_ncols=True)
    for step in range(first, config.iterations + 1):
        lr_batch, hr_batch = (
            x.float().div_(255.0).contiguous(memory_format=memory_format)
            for x in patches.batch(config.batch_size, batch_generator(config.seed, step, context.rank),
                                   config.patch_size, device)
        )
        pixel_stage = gan and step < config.gan_start  # ESRGAN/SRGAN pre-train on the pixel loss alone
        adversarial = gan and not pixel_stage
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
            sr = net(lr_batch)
            terms = {"pixel": criterion(sr.float(), hr_batch)}
            if perceptual is not None and config.perceptual_weight > 0 and not pixel_stage:
                terms["perceptual"] = perceptual(sr.float(), hr_batch)
            if adversarial:
                discriminator.requires_grad_(False)
                # only the relativistic loss compares with the real images' logits
                real_logits = discriminator(hr_batch).detach() if config.relativistic else None
                terms["adversarial"] = gan_loss.generator_loss(real_logits, discriminator(sr))
        if pixel_stage:
            loss = terms["pixel"]
        else:
            weights = {"pixel": config.pixel_weight, "perceptual": config.perceptual_weight,
                       "adversarial": config.gan_weight}
            loss = sum(weights[name] * term.float() for name, term in terms.items())
        # The loss is read back (a device sync) only where it is used: every step on the CPU, every
        # log_every steps on a GPU, so that the CPU prepares the next batch while the GPU computes.
        # Diverged weights are never checkpointed either way (see the check before saving).
        window = loss.detach() if window is None else window + loss.detach()
        count += 1
        if (device.type != "cuda" or step % config.log_every == 0 or step % config.val_every == 0
                or step == config.iterations or (config.checkpoint_every and step % config.checkpoint_every == 0)):
            total = distributed.mean(window, context).item()
            if not math.isfinite(total):
                raise _diverged(step, total)
            value = total if count == 1 else distributed.mean(loss.detach(), context).item()
            running, seen, window, count = running + total, seen + count, None, 0
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        clip_gradients(trainable, config, scheduler.get_last_lr()[0])
        optimizer.step()
        scheduler.step()
        if ema is not None:
            ema.update_parameters(model)

        if adversarial:  # the discriminator learns to tell the HR patches from the (detached) SR ones
            discriminator.requires_grad_(True)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
                d_loss = gan_loss.discriminator_loss(discriminator(hr_batch), discriminator(sr.detach()))
            d_optimizer.zero_grad(set_to_none=True)
            d_loss.backward()
            distributed.average_gradients(discriminator, context)
            d_optimizer.step()
            d_scheduler.step()  # the discriminator's schedule counts the adversarial iterations
            terms["discriminator"] = d_loss
        bar.update()

        if step % config.log_every == 0:
            metrics = {"train_loss": value, "lr": scheduler.get_last_lr()[0]}
            if gan or perceptual is not None:
                metrics.update({name: term.item() for name, term in terms.items()})
            _call(callbacks, "on_log", step, metrics)

        stop = False
        if step % config.val_every == 0 or step == config.iterations:
            if context.is_main:  # only rank 0 validates; its early-stopping decision is broadcast
                psnr_y = validate(evaluated, val_pairs, scale, device)
                row = {"step": step, "train_loss": running / seen, "lr": scheduler.get_last_lr()[0],
                       "val_psnr_y": psnr_y}
                result.history.append(row)
                _call(callbacks, "on_validation", step, {"val_psnr_y": psnr_y})
                bar.set_postfix(loss=f"{row['train_loss']:.4f}", val_psnr_y=f"{psnr_y:.2f}")
                if psnr_y > result.best_psnr_y or not result.state_dict:
                    result.best_psnr_y, result.best_step, bad_validations = psnr_y, step, 0
                    result.state_dict = _cpu_copy(evaluated)
                else:
                    bad_validations += 1
                    stop = config.early_stopping is not None and bad_validations >= config.early_stopping
            running, seen = 0.0, 0
            stop = distributed.broadcast_flag(stop, context)
        result.iterations = step

        if path is not None and config.checkpoint_every is not None and step % config.checkpoint_every == 0:
            if not _finite(model):  # never replace the last good checkpoint by diverged weights
                raise _diverged(step, math.nan)
            if context.is_main:
                state = {
                    "step": step, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                    "scheduler": checkpoint.scheduler_state(scheduler), "rng": checkpoint.rng_state(),
                    "best_state_dict": result.state_dict, "history": result.history, "best_step": result.best_step,
                    "best_psnr_y": result.best_psnr_y, "running": running, "seen": seen,
                    "bad_validations": bad_validations, "seconds": before + time.perf_counter() - start,
                    "metadata": metadata,
                }
                if ema is not None:
                    state["ema"] = ema.state_dict()
                if gan:
                    state.update(discriminator=discriminator.state_dict(), d_optimizer=d_optimizer.state_dict(),
                                 d_scheduler=checkpoint.scheduler_state(d_scheduler))
                checkpoint.save(path, state)
        if stop:
            log.info("early stopping at iteration %d: no better validation PSNR-Y for %d validations",
                     step, config.early_stopping)
            result.stopped_early = True
            break
    bar.close()
    result.seconds = before + time.perf_counter() - start
    log.info(
        "trained %d iterations in %.1f s%s; best validation PSNR-Y %.3f dB at iteration %d",
        result.iterations, result.seconds, f" ({before:.1f} s before the resume)" if result.resumed_from else "",
        result.best_psnr_y, result.best_step,
    )
    _call(callbacks, "on_train_end", result)
    return result
