"""The training loop, one for every architecture. ``train`` reads top to bottom:

seed, devices, precision -> the run (losses, precision) and its state (model, optimiser, schedule,
EMA, discriminator) -> maybe resume -> for each iteration: batch, ``generator_step``,
``discriminator_step``, log -> every ``val_every`` iterations: ``validation_step`` (PSNR-Y, keep
the best weights, maybe stop early) -> every ``checkpoint_every`` iterations: ``save_checkpoint``.

Iteration-based (as the SR papers count), Adam or SGD, a step, multistep or cosine schedule, validation
with the very metric of the evaluation (PSNR on Y, ``scale`` pixels shaved), a progress bar.
GANs (SRGAN, ESRGAN) train in the same loop: a pixel-only stage, then perceptual and
adversarial terms from ``gan_start`` on, with a discriminator step after each generator step.
Everything the run changes is one :class:`~superres.training.checkpoint.TrainState`, saved and
restored whole. The batch of an iteration is a pure function of (seed, iteration, rank), so a
resumed run draws exactly the batches the killed one would have. Under ``torchrun`` it trains with
DDP and only rank 0 validates, logs and writes. Callbacks observe the run; MLflow is one of them.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import random
import time
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from tqdm.auto import tqdm

from superres.errors import ConfigError, SuperresError
from superres.inference import pick_device, super_resolve
from superres.losses import GANLoss, build_loss
from superres.machine import make_deterministic
from superres.metrics import psnr
from superres.precision import Precision, training_precision
from superres.training import checkpoint, distributed
from superres.training.checkpoint import TrainState
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
    precision: dict[str, Any] = field(default_factory=dict)  # Precision.record() of the run (empty: nothing trained)


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


@dataclass
class Run:
    """What stays fixed while a run trains: its configuration, where it runs, the model as trained
    (wrapped in DDP and/or compiled), the losses and the precision."""

    config: TrainConfig
    context: distributed.Context
    net: nn.Module
    trainable: list[nn.Parameter]  # the model's parameters that learn
    criterion: nn.Module
    perceptual: nn.Module | None
    gan_loss: GANLoss | None
    precision: Precision  # bf16 autocast or fp32, channels_last or NCHW

    @property
    def memory_format(self) -> torch.memory_format:
        return self.precision.memory_format

    @property
    def device(self) -> torch.device:
        return self.context.device

    def autocast(self) -> AbstractContextManager[None]:
        return self.precision.autocast(self.device)

    def batch(self, patches: PatchDataset, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The LR and HR patches of iteration ``step``, as floats in [0, 1] on the device."""
        config = self.config
        pair = patches.batch(config.batch_size, batch_generator(config.seed, step, self.context.rank),
                             config.patch_size, self.device)
        lr_batch, hr_batch = (x.float().div_(255.0).contiguous(memory_format=self.memory_format) for x in pair)
        return lr_batch, hr_batch

    def reads_loss(self, step: int) -> bool:
        """Whether the loss of ``step`` is read back (a device sync): every step on the CPU; on a
        GPU only where it is used (logs, validations, checkpoints, the last step), so that the
        CPU prepares the next batch while the GPU computes."""
        config = self.config
        return (self.device.type != "cuda" or step % config.log_every == 0 or step % config.val_every == 0
                or step == config.iterations or bool(config.checkpoint_every and step % config.checkpoint_every == 0))


class LossWindow:
    """The generator losses since the last read-back, summed on the device. Reading them back adds
    them to the state's running loss and checks that they are finite."""

    def __init__(self) -> None:
        self.sum: torch.Tensor | None = None
        self.count = 0
        self.last = math.nan  # the loss of the last step read back, as logged

    def add(self, loss: torch.Tensor, step: int, run: Run, state: TrainState) -> None:
        self.sum = loss.detach() if self.sum is None else self.sum + loss.detach()
        self.count += 1
        if not run.reads_loss(step):
            return
        total = distributed.mean(self.sum, run.context).item()
        if not math.isfinite(total):  # diverged weights are never checkpointed (see the check before saving)
            raise _diverged(step, total)
        self.last = total if self.count == 1 else distributed.mean(loss.detach(), run.context).item()
        state.running, state.seen = state.running + total, state.seen + self.count
        self.sum, self.count = None, 0


def generator_step(run: Run, state: TrainState, lr_batch: torch.Tensor, hr_batch: torch.Tensor, step: int,
                   window: LossWindow) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """One optimiser step of the model: the pixel loss, and from ``gan_start`` on the perceptual and
    adversarial terms too (weighted). Returns the SR batch and the loss terms."""
    config, discriminator = run.config, state.discriminator
    gan = config.gan_start is not None
    pixel_stage = gan and step < config.gan_start  # ESRGAN/SRGAN pre-train on the pixel loss alone
    # The networks run in the run's precision; every loss is computed in fp32, outside autocast (bf16
    # would cancel SSIM's variances to nothing and round the losses).
    with run.autocast():
        sr = run.net(lr_batch)
    terms = {"pixel": run.criterion(sr.float(), hr_batch)}
    if run.perceptual is not None and config.perceptual_weight > 0 and not pixel_stage:
        with run.autocast():  # the VGG features; PerceptualLoss compares them in fp32
            terms["perceptual"] = run.perceptual(sr.float(), hr_batch)
    if gan and not pixel_stage:
        discriminator.requires_grad_(False)
        with run.autocast():
            # only the relativistic loss compares with the real images' logits
            real_logits = discriminator(hr_batch).detach() if config.relativistic else None
            fake_logits = discriminator(sr)
        terms["adversarial"] = run.gan_loss.generator_loss(
            None if real_logits is None else real_logits.float(), fake_logits.float())
    if pixel_stage:
        loss = terms["pixel"]
    else:
        weights = {"pixel": config.pixel_weight, "perceptual": config.perceptual_weight,
                   "adversarial": config.gan_weight}
        loss = sum(weights[name] * term.float() for name, term in terms.items())
    window.add(loss, step, run, state)
    state.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    clip_gradients(run.trainable, config, state.scheduler.get_last_lr()[0])
    state.optimizer.step()
    state.scheduler.step()
    if state.ema is not None:
        state.ema.update_parameters(state.model)
    return sr, terms


def discriminator_step(run: Run, state: TrainState, hr_batch: torch.Tensor, sr: torch.Tensor) -> torch.Tensor:
    """One optimiser step of the discriminator: it learns to tell the HR patches from the
    (detached) SR ones. Returns its loss."""
    discriminator = state.discriminator
    discriminator.requires_grad_(True)
    with run.autocast():
        real_logits, fake_logits = discriminator(hr_batch), discriminator(sr.detach())
    d_loss = run.gan_loss.discriminator_loss(real_logits.float(), fake_logits.float())  # in fp32
    state.d_optimizer.zero_grad(set_to_none=True)
    d_loss.backward()
    distributed.average_gradients(discriminator, run.context)
    state.d_optimizer.step()
    state.d_scheduler.step()  # the discriminator's schedule counts the adversarial iterations
    return d_loss


def validation_step(run: Run, state: TrainState, evaluated: nn.Module, val_pairs: Sequence[ValPair], scale: int,
                    callbacks: Sequence[Any]) -> dict[str, float] | None:
    """Validate ``evaluated`` (on rank 0), append the history row and keep the weights when they
    are the best so far; reset the running loss. Returns the row (None on the other ranks)."""
    row = None
    if run.context.is_main:
        psnr_y = validate(evaluated, val_pairs, scale, run.device)
        row = {"step": state.step, "train_loss": state.running / state.seen, "lr": state.scheduler.get_last_lr()[0],
               "val_psnr_y": psnr_y}
        state.history.append(row)
        _call(callbacks, "on_validation", state.step, {"val_psnr_y": psnr_y})
        if psnr_y > state.best_psnr_y or not state.best_state_dict:
            state.best_psnr_y, state.best_step, state.bad_validations = psnr_y, state.step, 0
            state.best_state_dict = _cpu_copy(evaluated)
        else:
            state.bad_validations += 1
    state.running, state.seen = 0.0, 0
    return row


def save_checkpoint(path: Path, run: Run, state: TrainState, metadata: dict[str, Any]) -> None:
    """Write the state and ``metadata`` to ``path`` (on rank 0), never diverged weights over the last
    good checkpoint."""
    if not _finite(state.model):
        raise _diverged(state.step, math.nan)
    if run.context.is_main:
        checkpoint.save(path, {**state.state_dict(), "metadata": metadata})


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
    architecture: str | None = None,
) -> TrainResult:
    """Train ``model`` on ``patches``; return its best weights and the validation history.

    With ``config.gan_start`` set, ``discriminator`` (and ``perceptual``, the feature loss module)
    train it adversarially from that iteration. With ``checkpoint_dir`` a checkpoint is written
    every ``config.checkpoint_every`` iterations; ``resume`` continues from it when there is one,
    and the result's ``seconds`` then adds the time trained before that checkpoint. ``metadata``
    (strings, numbers, lists, dicts) is written into every checkpoint as it is, for the caller to
    read back with ``checkpoint.peek`` (e.g. the id of its tracking run); the trainer never reads it.
    ``architecture`` (the model's key) lets ``amp: auto`` keep the architectures that lose quality in
    bf16 in fp32 (:func:`superres.precision.training_precision`).
    """
    seed_everything(config.seed)
    context = distributed.setup(pick_device(config.device))
    try:  # the process group goes whatever ends the run: a divergence, an error, an interrupt
        return _train(model, patches, val_pairs, config, context, scale=scale, callbacks=callbacks,
                      discriminator=discriminator, perceptual=perceptual, checkpoint_dir=checkpoint_dir, resume=resume,
                      metadata=dict(metadata or {}), architecture=architecture)
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
    architecture: str | None,
) -> TrainResult:
    device = context.device
    make_deterministic(device, compiled=config.compile)
    callbacks = callbacks if context.is_main else ()  # only rank 0 logs
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
    gan = config.gan_start is not None
    if gan and discriminator is None:
        raise ConfigError("train.gan_start is set but no discriminator was given; set train.gan_start: null "
                          "to train without the adversarial stage")
    path = Path(checkpoint_dir) / checkpoint.FILENAME if checkpoint_dir is not None else None
    if resume and path is None:
        raise ConfigError("resume needs a checkpoint folder (checkpoint_dir) to resume from")

    # precision and memory layout: the fastest correct ones on this device unless the config forces them
    precision = training_precision(config.amp, config.channels_last, device, architecture)
    if precision.channels_last and context.enabled and device.type == "cpu":
        # DDP over gloo cannot broadcast a model's channels_last buffers (torch refuses the copy)
        if config.channels_last is True:
            raise ConfigError("train.channels_last: true cannot train in several CPU processes (DDP over gloo "
                              "cannot broadcast channels_last buffers); use auto or false")
        precision = dataclasses.replace(precision, channels_last=False,
                                        reason=f"{precision.reason}; NCHW: DDP on the CPU")
    if context.is_main:
        log.info("training in %s (%s)", precision.describe(), precision.reason)
    model.to(memory_format=precision.memory_format)
    net = distributed.wrap(model, context)
    if config.compile:
        net = torch.compile(net)  # validation and saving use the uncompiled module

    # what stays fixed while the run trains, and the state it changes (what a checkpoint holds)
    if perceptual is not None:
        perceptual.to(device)  # frozen and in eval mode by construction
    gan_loss = GANLoss(kind=config.gan_type, relativistic=config.relativistic) if gan else None
    run = Run(config, context, net, trainable, build_loss(config.loss).to(device), perceptual, gan_loss,
              precision)
    optimizer = build_optimizer(trainable, config)
    state = TrainState(model, optimizer, build_scheduler(optimizer, config))
    if config.ema is not None:
        state.ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(config.ema), use_buffers=True)
    if gan:
        state.discriminator = discriminator.to(device).train()
        state.d_optimizer = torch.optim.Adam(discriminator.parameters(), lr=config.d_lr or config.lr,
                                             betas=config.betas, eps=config.eps)
        state.d_scheduler = build_scheduler(state.d_optimizer, config)
    evaluated = state.ema.module if state.ema is not None else model  # validated, kept as best and returned

    stopped_early = resume and _resume(state, path, config)
    resumed_from, before = state.step, state.seconds if state.step else 0.0
    first = config.iterations + 1 if stopped_early else state.step + 1
    window = LossWindow()
    bar = tqdm(total=config.iterations, initial=first - 1, desc="train", unit="it",
               disable=None if context.is_main else True, dynamic_ncols=True)
    for step in range(first, config.iterations + 1):
        lr_batch, hr_batch = run.batch(patches, step)
        sr, terms = generator_step(run, state, lr_batch, hr_batch, step, window)
        if gan and step >= config.gan_start:
            terms["discriminator"] = discriminator_step(run, state, hr_batch, sr)
        state.step = step
        bar.update()

        if step % config.log_every == 0:
            metrics = {"train_loss": window.last, "lr": state.scheduler.get_last_lr()[0]}
            if gan or perceptual is not None:
                metrics.update({name: term.item() for name, term in terms.items()})
            _call(callbacks, "on_log", step, metrics)

        stop = False
        if step % config.val_every == 0 or step == config.iterations:
            row = validation_step(run, state, evaluated, val_pairs, scale, callbacks)
            if row is not None:
                bar.set_postfix(loss=f"{row['train_loss']:.4f}", val_psnr_y=f"{row['val_psnr_y']:.2f}")
                stop = config.early_stopping is not None and state.bad_validations >= config.early_stopping
            stop = distributed.broadcast_flag(stop, context)  # rank 0's decision, for every rank

        if path is not None and config.checkpoint_every is not None and step % config.checkpoint_every == 0:
            save_checkpoint(path, run, state, metadata)
        if stop:
            log.info("early stopping at iteration %d: no better validation PSNR-Y for %d validations",
                     step, config.early_stopping)
            stopped_early = True
            break
    bar.close()

    result = TrainResult(state.best_state_dict, state.history, state.best_step, state.best_psnr_y, state.step,
                         state.seconds, stopped_early, resumed_from, precision.record())
    log.info(
        "trained %d iterations in %.1f s%s; best validation PSNR-Y %.3f dB at iteration %d",
        result.iterations, result.seconds, f" ({before:.1f} s before the resume)" if result.resumed_from else "",
        result.best_psnr_y, result.best_step,
    )
    _call(callbacks, "on_train_end", result)
    return result


def _resume(state: TrainState, path: Path, config: TrainConfig) -> bool:
    """Load the checkpoint at ``path`` into ``state`` when there is one (else start afresh, and say
    so). True when the run had already stopped early at that checkpoint: it stays stopped."""
    if not path.exists():
        log.info("no checkpoint at %s: starting afresh", path)
        return False
    state.load_state_dict(checkpoint.load(path), source=path)
    log.info("resuming from the checkpoint of iteration %d in %s", state.step, path)
    if config.early_stopping is not None and state.bad_validations >= config.early_stopping:
        log.info("the run had stopped early at iteration %d; nothing left to train", state.step)
        return True
    return False
