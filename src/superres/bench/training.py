"""Training throughput: the project's trainer against a plain eager Adam + L1 loop.

Every architecture at the sizes its train stage uses under the ``default`` and ``paper`` profiles
(:func:`training_cases`), each measured against the plain loop on the same model and batch
(:func:`measure_training`): on the CPU one step of each in turn (:func:`interleaved_rates`), the plain
loop in the precision the trainer picks, so that the ratio is the trainer's own overhead; on a GPU
against the fp32 NCHW loop, in windows ordered plain, trainer, trainer, plain, so that a machine that
drifts weighs on both alike. :mod:`.precision` sets fp32 NCHW against ``auto`` on the same plain loop.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from superres.bench.timing import Plan, sync
from superres.errors import ConfigError, SuperresError
from superres.models import REGISTRY, create_model
from superres.params.prepare import PrepareParams
from superres.precision import Precision, training_precision
from superres.profiles import PROFILES_DIR, load_profile, with_profile
from superres.training.config import TrainConfig
from superres.training.data import PatchDataset
from superres.training.trainer import train

log = logging.getLogger(__name__)


GAN_ARCHS = ("srgan", "esrgan")
QUICK_ARCHS = ("srcnn", "edsr")  # --quick trains these only, enough to prove the command works


class _StepClock:
    """A trainer callback that timestamps every ``on_log``, after syncing the device."""

    def __init__(self, device: torch.device) -> None:
        self.device, self.times = device, []

    def on_log(self, step: int, metrics: dict[str, float]) -> None:
        sync(self.device)
        self.times.append((step, time.perf_counter()))

    def rate(self, warmup: int, batch: int) -> float:
        """Patches/s over the steps after ``warmup``."""
        timed = [t for t in self.times if t[0] >= warmup]
        if len(timed) < 2:
            raise SuperresError("bench: too few logged steps to time the trainer")
        (s0, t0), (s1, t1) = timed[0], timed[-1]
        return batch * (s1 - s0) / (t1 - t0)



FP32_NCHW = Precision(False, False, "amp: off; channels_last: false")  # the baseline every speed-up is against


def random_patches(count: int, lr_size: int, scale: int, seed: int = 0) -> PatchDataset:
    """Random uint8 patches in memory, the layout of the prepared training data."""
    rng = np.random.default_rng(seed)
    lr = rng.integers(0, 256, (count, 3, lr_size, lr_size), dtype=np.uint8)
    hr = rng.integers(0, 256, (count, 3, lr_size * scale, lr_size * scale), dtype=np.uint8)
    return PatchDataset(lr, hr)


def plain_step(
    model: nn.Module, patches: PatchDataset, batch: int, device: torch.device, lr_crop: int | None = None,
    precision: Precision | None = None,
) -> Callable[[int], None]:
    """Step ``i`` of a plain eager Adam + L1 loop, its data already float on the device (``lr_crop`` x
    ``lr_crop`` LR pixels of each patch, the trainer's crop size): the baseline. fp32 NCHW unless
    ``precision`` says otherwise (bf16 autocast, channels_last), as the trainer would compute."""
    precision = precision or FP32_NCHW
    layout = precision.memory_format
    model = model.to(device, memory_format=layout).train()
    generator = torch.Generator().manual_seed(0)
    c = lr_crop or patches.lr.shape[-1]
    s = patches.hr.shape[-1] // patches.lr.shape[-1]
    pool = []
    for _ in range(4):
        index = torch.randint(0, len(patches), (batch,), generator=generator).numpy()
        lr, hr = patches.lr[index, :, :c, :c], patches.hr[index, :, : c * s, : c * s]
        pool.append(tuple(torch.from_numpy(a).to(device).float().div(255).contiguous(memory_format=layout)
                          for a in (lr, hr)))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)

    def step(i: int) -> None:
        lr, hr = pool[i % len(pool)]
        with precision.autocast(device):
            sr = model(lr)
        loss = nn.functional.l1_loss(sr.float(), hr)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def _warm_up(step: Callable[[int], None], device: torch.device, plan: Plan) -> tuple[int, float]:
    """Run ``plan.warmup`` steps (fewer when one step is slow); return how many, and the last one's seconds."""
    warmup, start, last = 0, time.perf_counter(), 0.0
    while warmup < plan.warmup and (warmup == 0 or time.perf_counter() - start < plan.seconds / 4):
        began = time.perf_counter()
        step(warmup)
        sync(device)
        last, warmup = time.perf_counter() - began, warmup + 1
    return warmup, last


def plain_loop_rate(
    model: nn.Module, patches: PatchDataset, batch: int, device: torch.device, plan: Plan, steps: int | None = None,
    lr_crop: int | None = None,
) -> tuple[float, int, int]:
    """Patches/s of the plain loop (``plain_step``) in one window.

    Warms up, then runs ``steps`` steps, or as many as fit in the plan's time budget and at least
    ``plan.min_steps``. Returns the rate, the timed steps and the warm-up steps (the trainer then
    does the same).
    """
    step = plain_step(model, patches, batch, device, lr_crop)
    warmup, _ = _warm_up(step, device, plan)
    done, start = 0, time.perf_counter()
    while done < (steps or plan.min_steps) or (
        steps is None and time.perf_counter() - start < plan.seconds and done < plan.max_steps
    ):
        step(done)
        done += 1
        if done % 5 == 0:
            sync(device)
    sync(device)
    return batch * done / (time.perf_counter() - start), done, warmup


class _Interleaved:
    """A trainer callback (logging every step) that runs one plain-loop step right after each trainer
    step and times both. On the CPU a step is synchronous, so each trainer step is set against the
    plain step next to it, and a machine that speeds up or slows down weighs on both alike."""

    def __init__(self, plain: Callable[[int], None]) -> None:
        self.plain, self.mark = plain, 0.0
        self.trainer_s: dict[int, float] = {}
        self.plain_s: dict[int, float] = {}

    def on_log(self, step: int, metrics: dict[str, float]) -> None:
        now = time.perf_counter()
        if step > 1:  # the first trainer step also holds the trainer's set-up
            self.trainer_s[step] = now - self.mark
        self.plain(step)
        self.mark = time.perf_counter()
        self.plain_s[step] = self.mark - now


def interleaved_rates(
    model: nn.Module, patches: PatchDataset, batch: int, steps: int, warmup: int, lr_crop: int, **train_keys: Any
) -> dict[str, Any]:
    """CPU: the trainer and the plain loop, one step of each in turn, on copies of ``model``.

    The rates are the batch over each loop's median step; the ratio is the median of the per-step
    ratios (plain step time over the trainer step before it), with its quartiles as the spread.
    """
    cpu = torch.device("cpu")
    # the plain loop computes as the trainer does (the precision `auto` picks): the ratio is the trainer's overhead
    same = training_precision("auto", "auto", cpu)
    probe = _Interleaved(plain_step(copy.deepcopy(model), patches, batch, cpu, lr_crop, same))
    scale = patches.hr.shape[-1] // patches.lr.shape[-1]
    val = [(np.zeros((8, 8, 3), np.uint8), np.zeros((8 * scale, 8 * scale, 3), np.uint8))]
    iterations = warmup + steps
    config = TrainConfig(iterations=iterations, batch_size=batch, log_every=1, val_every=iterations + 1, lr=1e-4,
                         device="cpu", **train_keys)
    train(model, patches, val, config, scale=scale, callbacks=[probe])
    timed = range(max(2, warmup + 1), iterations + 1)
    trainer_s = np.array([probe.trainer_s[k] for k in timed])
    plain_s = np.array([probe.plain_s[k] for k in timed])
    ratios = plain_s / trainer_s
    return {"steps": len(timed), "trainer_patches_per_s": batch / float(np.median(trainer_s)),
            "plain_patches_per_s": batch / float(np.median(plain_s)), "ratio": float(np.median(ratios)),
            "ratio_quartiles": [float(q) for q in np.quantile(ratios, [0.25, 0.75])]}


def trainer_rate(
    model: nn.Module, patches: PatchDataset, batch: int, steps: int, warmup: int, device: torch.device,
    **train_keys: Any,
) -> float:
    """Patches/s through the project's ``train()``, validation excluded (it runs after the last log)."""
    scale = patches.hr.shape[-1] // patches.lr.shape[-1]
    val = [(np.zeros((8, 8, 3), np.uint8), np.zeros((8 * scale, 8 * scale, 3), np.uint8))]
    iterations = warmup + steps
    # The clock syncs the device at each log; logging every step would serialise CPU and GPU work
    # (the trainer itself reads the loss back only every log_every steps on a GPU).
    log_every = max(1, min(10, steps // 3))
    config = TrainConfig(
        iterations=iterations, batch_size=batch, log_every=log_every, val_every=iterations + 1,
        lr=1e-4, device=str(device), **train_keys,
    )
    clock = _StepClock(device)
    train(model, patches, val, config, scale=scale, callbacks=[clock])
    return clock.rate(warmup, batch)


def read_yaml(path: Path) -> dict[str, Any] | None:
    """The mapping in ``path``, read as profiles are; None when the file is missing or holds no mapping."""
    if not path.is_file():
        return None
    try:
        return load_profile(path.stem, path.parent)
    except ConfigError:  # not a mapping
        return None


def _sized_params(params: dict[str, Any] | None, size: str, profiles_dir: Path) -> tuple[dict[str, Any], str]:
    """``params.yaml`` with profile ``size`` applied in memory, as ``superres profile <size>`` would
    make it, and where that came from; nothing (constructor and ``TrainConfig`` defaults) outside a project."""
    if params is None or not (profiles_dir / f"{size}.yaml").is_file():
        return {}, "constructor defaults"
    return with_profile(params, size, profiles_dir), f"{PROFILES_DIR / size}.yaml"


def training_cases(
    params: dict[str, Any] | None, plan: Plan, device: torch.device, archs: tuple[str, ...] = (),
    profiles_dir: Path = PROFILES_DIR,
) -> list[dict[str, Any]]:
    """One case per (architecture, size): the model, scale, batch and crop that the train stage would
    use under the ``default`` and ``paper`` profiles (``TrainConfig.from_params``, as the train node
    builds it), and where they come from. On the CPU a paper-size batch is cut to ``plan.cpu_paper_pixels``."""
    sizes = ("default",) if plan.quick else ("default", "paper")
    sized = {size: _sized_params(params, size, profiles_dir) for size in sizes}
    cases = []
    for arch in archs or (QUICK_ARCHS if plan.quick else tuple(REGISTRY)):
        if arch == "bicubic" or arch not in REGISTRY:  # bicubic: nothing to learn
            continue
        for size, (values, source) in sized.items():
            prepare, section = values.get("prepare") or {}, values.get(arch) or {}
            config = TrainConfig.from_params(dict(values.get("train") or {}), **dict(section.get("train") or {}))
            typed = PrepareParams.from_params(prepare)
            scale, prepared = typed.scale, typed.patch_size
            crop, batch = config.patch_size or prepared, config.batch_size
            if plan.quick:
                prepared = crop = scale * 8
                batch = 2
            elif size == "paper" and device.type == "cpu":
                batch = max(1, min(batch, plan.cpu_paper_pixels // crop**2))
            case = {"arch": arch, "size": size, "model": dict(section.get("model") or {}), "source": source,
                    "scale": scale, "batch": batch, "lr_patch": crop // scale, "prepared_lr_patch": prepared // scale}
            if arch in GAN_ARCHS:
                case["note"] = "generator only, pixel (L1) loss"
            cases.append(case)
    return cases


def measure_training(case: dict[str, Any], device: torch.device, plan: Plan) -> dict[str, Any]:
    """Trainer and plain-loop patches/s of one case; an architecture that fails is reported, not fatal."""
    row = {k: case[k] for k in ("arch", "size", "source", "model", "scale", "batch", "lr_patch")}
    if "note" in case:
        row["note"] = case["note"]
    try:
        torch.manual_seed(0)
        model = create_model(case["arch"], scale=case["scale"], **case["model"])
        initial = copy.deepcopy(model)
        patches = random_patches(plan.patches, case["prepared_lr_patch"], case["scale"])
        crop = case["lr_patch"]
        # The trainer cuts its random crops out of the prepared patches, as in the train stage.
        crop_key = {"patch_size": crop * case["scale"]} if crop < case["prepared_lr_patch"] else {}
        if device.type == "cpu":
            # Steps interleaved one by one; the number of steps fills the plan's time budget.
            probe = plain_step(copy.deepcopy(initial), patches, case["batch"], device, crop)
            warmup, step_s = _warm_up(probe, device, plan)
            steps = max(plan.min_steps, min(plan.max_steps, round(2 * plan.seconds / max(step_s, 1e-6))))
            figures = interleaved_rates(initial, patches, case["batch"], steps, warmup, crop, **crop_key)
        else:
            figures = _windows(initial, patches, case["batch"], device, plan, crop, crop_key)
    except (SuperresError, RuntimeError, ValueError, TypeError) as exc:
        log.warning("bench: %s at %s sizes failed: %s", case["arch"], case["size"], exc)
        row["error"] = f"{type(exc).__name__}: {exc}"
        return row
    row.update(figures)
    return row


def _windows(
    initial: nn.Module, patches: PatchDataset, batch: int, device: torch.device, plan: Plan, crop: int,
    crop_key: dict[str, int],
) -> dict[str, Any]:
    """On a GPU, where timing single steps would stall the device: two windows of each loop, in the
    order plain, trainer, trainer, plain, each figure the mean of its two, so that a drift of the
    machine weighs on both alike. How far apart the plain loop's two windows are is the noise."""
    plain_1, steps, warmup = plain_loop_rate(copy.deepcopy(initial), patches, batch, device, plan, lr_crop=crop)
    trainer_1 = trainer_rate(copy.deepcopy(initial), patches, batch, steps, warmup, device, **crop_key)
    trainer_2 = trainer_rate(copy.deepcopy(initial), patches, batch, steps, warmup, device, **crop_key)
    plain_2, _, _ = plain_loop_rate(initial, patches, batch, device, plan, steps, lr_crop=crop)
    plain, trainer = (plain_1 + plain_2) / 2, (trainer_1 + trainer_2) / 2
    return {"steps": steps, "trainer_patches_per_s": trainer, "plain_patches_per_s": plain, "ratio": trainer / plain,
            "windows": {"plain": [plain_1, plain_2], "trainer": [trainer_1, trainer_2]},
            "noise": abs(plain_1 - plain_2) / plain}


def spread(row: dict[str, Any]) -> str:
    """How far the ratio of a training row can be trusted, in words."""
    if "ratio_quartiles" in row:
        low, high = row["ratio_quartiles"]
        return f"quartiles of the per-step ratios {low:.3f} to {high:.3f}, {row['steps']} steps"
    return f"plain windows {row['noise']:.1%} apart"
