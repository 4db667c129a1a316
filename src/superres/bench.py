"""``superres bench``: how fast the project is, measured in one process run.

Six figures, each against the same run's own baseline so that a noisy machine shifts both:

1. training throughput (patches/s) of every architecture at its default and paper sizes, through
   the project's trainer and through a plain eager fp32 NCHW Adam + L1 loop on the same model and batch;
2. on CUDA, the model FLOPs utilisation of EDSR-baseline x4 at batch 16 and 64;
3. what the training data pipeline alone delivers, against what the trainer consumes;
4. the MATLAB-compatible bicubic against a straightforward numpy port of the same formula;
5. ``superres upscale`` on a 2048 x 2048 image, tiled and untiled (MP/s, peak resident memory);
6. pipeline overhead: a no-op ``dvc repro`` and the report pipeline on existing outputs.

The figures, the targets and pass/fail per target go to a JSON file; a dated Markdown section is
appended to ``BENCHMARKS.md``. A target that cannot be measured here (no CUDA, pipeline out of date)
is reported as skipped with the reason, never as passed.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import logging
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from superres.atomic import write_text
from superres.data.resize import imresize
from superres.errors import ConfigError, SuperresError
from superres.models import REGISTRY, create_model
from superres.models.weights import Weights, save_weights
from superres.profiles import PROFILES_DIR, load_profile, with_profile
from superres.training.config import TrainConfig
from superres.training.data import PatchDataset
from superres.training.trainer import batch_generator, train

log = logging.getLogger(__name__)

PARAMS_FILE = Path("params.yaml")
BENCHMARKS_FILE = Path("BENCHMARKS.md")
# Dense bf16 peak of the device, TFLOP/s, matched on the CUDA device name.
BF16_PEAK_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0}
EDSR_BASELINE = {"n_resblocks": 16, "n_feats": 64, "res_scale": 1.0}
GAN_ARCHS = ("srgan", "esrgan")
QUICK_ARCHS = ("srcnn", "edsr")  # --quick trains these only, enough to prove the command works


@dataclass(frozen=True)
class Plan:
    """How long each measurement runs: ``--quick`` proves the command, the default measures."""

    quick: bool
    seconds: float  # time budget of one throughput measurement
    warmup: int  # steps run before the clock starts
    max_steps: int
    patches: int  # training patches held in memory
    min_steps: int  # timed steps of one throughput measurement, however slow a step is
    cpu_paper_pixels: int  # paper sizes on the CPU: HR pixels of one batch at most (the batch is cut to fit)
    image_side: int  # inference input, pixels
    resize_repeats: int


QUICK = Plan(True, 0.2, 1, 2, 32, 2, 0, 256, 1)
FULL = Plan(False, 4.0, 3, 200, 512, 11, 4 * 192 * 192, 2048, 3)
FULL_CUDA = Plan(False, 3.0, 10, 300, 2048, 5, 0, 2048, 3)


# -- timing helpers ------------------------------------------------------------------------------


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class _StepClock:
    """A trainer callback that timestamps every ``on_log``, after syncing the device."""

    def __init__(self, device: torch.device) -> None:
        self.device, self.times = device, []

    def on_log(self, step: int, metrics: dict[str, float]) -> None:
        _sync(self.device)
        self.times.append((step, time.perf_counter()))

    def rate(self, warmup: int, batch: int) -> float:
        """Patches/s over the steps after ``warmup``."""
        timed = [t for t in self.times if t[0] >= warmup]
        if len(timed) < 2:
            raise SuperresError("bench: too few logged steps to time the trainer")
        (s0, t0), (s1, t1) = timed[0], timed[-1]
        return batch * (s1 - s0) / (t1 - t0)


# -- 1. training throughput ----------------------------------------------------------------------


def _patches(count: int, lr_size: int, scale: int, seed: int = 0) -> PatchDataset:
    """Random uint8 patches in memory, the layout of the prepared training data."""
    rng = np.random.default_rng(seed)
    lr = rng.integers(0, 256, (count, 3, lr_size, lr_size), dtype=np.uint8)
    hr = rng.integers(0, 256, (count, 3, lr_size * scale, lr_size * scale), dtype=np.uint8)
    return PatchDataset(lr, hr)


def plain_step(
    model: nn.Module, patches: PatchDataset, batch: int, device: torch.device, lr_crop: int | None = None
) -> Callable[[int], None]:
    """Step ``i`` of a plain eager fp32 NCHW Adam + L1 loop, its data already float on the device
    (``lr_crop`` x ``lr_crop`` LR pixels of each patch, the trainer's crop size): the baseline."""
    model = model.to(device).train()
    generator = torch.Generator().manual_seed(0)
    c = lr_crop or patches.lr.shape[-1]
    s = patches.hr.shape[-1] // patches.lr.shape[-1]
    pool = []
    for _ in range(4):
        index = torch.randint(0, len(patches), (batch,), generator=generator).numpy()
        lr, hr = patches.lr[index, :, :c, :c], patches.hr[index, :, : c * s, : c * s]
        pool.append(tuple(torch.from_numpy(a).to(device).float().div(255) for a in (lr, hr)))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)

    def step(i: int) -> None:
        lr, hr = pool[i % len(pool)]
        loss = nn.functional.l1_loss(model(lr), hr)
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
        _sync(device)
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
    while done < (steps or plan.min_steps) or (steps is None and time.perf_counter() - start < plan.seconds and done < plan.max_steps):
        step(done)
        done += 1
        if done % 5 == 0:
            _sync(device)
    _sync(device)
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
    probe = _Interleaved(plain_step(copy.deepcopy(model), patches, batch, cpu, lr_crop))
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
    model: nn.Module, patches: PatchDataset, batch: int, steps: int, warmup: int, device: torch.device, **train_keys: Any
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


def _read_yaml(path: Path) -> dict[str, Any] | None:
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
            scale, prepared = int(prepare.get("scale", 2)), int(prepare.get("patch_size", 48))
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
        patches = _patches(plan.patches, case["prepared_lr_patch"], case["scale"])
        crop = case["lr_patch"]
        # The trainer cuts its random crops out of the prepared patches, as in the train stage.
        crop_key = {"patch_size": crop * case["scale"]} if crop < case["prepared_lr_patch"] else {}
        if device.type == "cpu":
            # Steps interleaved one by one; the number of steps fills the plan's time budget.
            warmup, step_s = _warm_up(plain_step(copy.deepcopy(initial), patches, case["batch"], device, crop), device, plan)
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


def _spread(row: dict[str, Any]) -> str:
    """How far the ratio of a training row can be trusted, in words."""
    if "ratio_quartiles" in row:
        low, high = row["ratio_quartiles"]
        return f"quartiles of the per-step ratios {low:.3f} to {high:.3f}, {row['steps']} steps"
    return f"plain windows {row['noise']:.1%} apart"


# -- 2. model FLOPs utilisation ------------------------------------------------------------------


def bf16_peak_tflops(device_name: str) -> float | None:
    """Dense bf16 peak of a known CUDA device, else None."""
    return next((peak for key, peak in BF16_PEAK_TFLOPS.items() if key in device_name), None)


def step_flops(model: nn.Module, batch: int, lr_patch: int, scale: int, device: torch.device) -> int:
    """FLOPs of one training step's forward and backward (L1 loss), counted by torch."""
    from torch.utils.flop_counter import FlopCounterMode

    model = copy.deepcopy(model).to(device).train()
    lr = torch.rand(batch, 3, lr_patch, lr_patch, device=device)
    hr = torch.rand(batch, 3, lr_patch * scale, lr_patch * scale, device=device)
    with FlopCounterMode(display=False) as counter:
        nn.functional.l1_loss(model(lr), hr).backward()
    return int(counter.get_total_flops())


def measure_mfu(device: torch.device, plan: Plan) -> dict[str, Any]:
    if device.type != "cuda":
        return {"skipped": "no CUDA"}
    name = torch.cuda.get_device_name(device)
    peak = bf16_peak_tflops(name)
    out: dict[str, Any] = {"device_name": name, "model": "edsr", "config": EDSR_BASELINE, "scale": 4, "lr_patch": 48,
                           "bf16_peak_tflops": peak, "runs": []}
    if peak is None:
        out["note"] = f"unknown bf16 peak for {name}: MFU not computed"
    torch.manual_seed(0)
    model = create_model("edsr", scale=4, **EDSR_BASELINE)
    patches = _patches(plan.patches, 48, 4)
    sample_flops = step_flops(model, 1, 48, 4, device)  # one sample's step; a batch costs batch times as much
    for batch in (16, 64):
        flops = sample_flops * batch
        plain, steps, warmup = plain_loop_rate(copy.deepcopy(model), patches, batch, device, plan)
        for compiled in (False, True):
            run: dict[str, Any] = {"batch": batch, "compile": compiled, "step_gflop": flops / 1e9, "plain_patches_per_s": plain}
            try:
                rate = trainer_rate(copy.deepcopy(model), patches, batch, steps, warmup + (20 if compiled else 0), device, compile=compiled)
            except Exception as exc:  # noqa: BLE001 - torch.compile can fail in many ways; report it
                run["error"] = f"{type(exc).__name__}: {exc}"
                out["runs"].append(run)
                continue
            step_s = batch / rate
            run.update(trainer_patches_per_s=rate, ratio=rate / plain, step_ms=step_s * 1e3,
                       achieved_tflops=flops / step_s / 1e12)
            if peak is not None:
                run["mfu"] = flops / step_s / (peak * 1e12)
            out["runs"].append(run)
    return out


# -- 3. data loading -----------------------------------------------------------------------------


def loader_rate(patches: PatchDataset, batch: int, device: torch.device, seconds: float) -> float:
    """Patches/s that the training data delivers as the trainer receives it: the dataset's batch of
    (seed, step), moved to ``device`` as float in [0, 1] (channels_last on CUDA, as the trainer's default)."""
    memory_format = torch.channels_last if device.type == "cuda" else torch.contiguous_format

    def fetch(step: int) -> None:
        for x in patches.batch(batch, batch_generator(0, step, 0), device=device):
            x.float().div_(255.0).contiguous(memory_format=memory_format)

    fetch(0)
    _sync(device)
    count, start = 0, time.perf_counter()
    while count < 3 or time.perf_counter() - start < seconds:
        count += 1
        fetch(count)
    _sync(device)
    return batch * count / (time.perf_counter() - start)


def measure_loading(consumers: list[dict[str, Any]], device: torch.device, plan: Plan) -> list[dict[str, Any]]:
    """For each trainer measurement given, the loader's patches/s at the same batch and patch size."""
    rows = []
    for consumer in consumers:
        patches = _patches(plan.patches, consumer["lr_patch"], consumer["scale"])
        rate = loader_rate(patches, consumer["batch"], device, min(plan.seconds, 2.0))
        rows.append({"what": consumer["what"], "batch": consumer["batch"], "lr_patch": consumer["lr_patch"],
                     "scale": consumer["scale"], "loader_patches_per_s": rate,
                     "trainer_patches_per_s": consumer["rate"], "ratio": rate / consumer["rate"]})
    return rows


# -- 4. degradation ------------------------------------------------------------------------------


def _reference_cubic(x: np.ndarray) -> np.ndarray:
    absx = np.abs(x)
    absx2, absx3 = absx**2, absx**3
    return (1.5 * absx3 - 2.5 * absx2 + 1) * (absx <= 1) + (-0.5 * absx3 + 2.5 * absx2 - 4 * absx + 2) * ((absx > 1) & (absx <= 2))


def _reference_contributions(in_len: int, out_len: int, scale: float, antialias: bool) -> tuple[np.ndarray, np.ndarray]:
    """Per output pixel: its tap weights and its (mirrored, 0-based) input indices, as MATLAB computes them."""
    shrink = scale < 1 and antialias
    width = 4.0 / scale if shrink else 4.0
    weights = np.zeros((out_len, int(math.ceil(width)) + 2))
    indices = np.zeros(weights.shape, dtype=np.int64)
    for i in range(out_len):
        u = (i + 1) / scale + 0.5 * (1 - 1 / scale)
        left = math.floor(u - width / 2)
        for j in range(weights.shape[1]):
            index = left + j
            distance = u - index
            weights[i, j] = scale * _reference_cubic(scale * distance) if shrink else _reference_cubic(distance)
            k = (index - 1) % (2 * in_len)
            indices[i, j] = k if k < in_len else 2 * in_len - 1 - k
        weights[i] /= weights[i].sum()
    return weights, indices


def reference_imresize(img: np.ndarray, scale: float, antialias: bool = True) -> np.ndarray:
    """REFERENCE ONLY, the benchmark's baseline: the straightforward numpy port of MATLAB's bicubic
    ``imresize`` as found in common SR code (per-pixel contributions, then a loop over output rows and
    columns accumulating weighted sums). ``superres.data.resize.imresize`` is the implementation the project uses."""
    out = img.astype(np.float64)
    for axis in (0, 1):  # equal scales: height first, as MATLAB
        in_len = out.shape[axis]
        out_len = int(math.ceil(in_len * scale))
        weights, indices = _reference_contributions(in_len, out_len, scale, antialias)
        moved = np.moveaxis(out, axis, 0)
        result = np.zeros((out_len, *moved.shape[1:]))
        for i in range(out_len):
            result[i] = np.tensordot(weights[i], moved[indices[i]], axes=1)
        out = np.moveaxis(result, 0, axis)
    return out


def _best_time(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    times, value = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - start)
    return min(times), value


def measure_degradation(plan: Plan) -> dict[str, Any]:
    """Input MP/s of the project's bicubic and of the reference port on a 2040 x 1356 RGB float64 image, x1/4."""
    height, width = 1356, 2040
    img = np.random.default_rng(0).random((height, width, 3))
    tensor = torch.from_numpy(img).permute(2, 0, 1)
    first = time.perf_counter()
    imresize(tensor, scale=0.25)  # builds and caches the weight matrices
    first = time.perf_counter() - first
    project_s, ours = _best_time(lambda: imresize(tensor, scale=0.25).permute(1, 2, 0).numpy(), plan.resize_repeats)
    reference_s, theirs = _best_time(lambda: reference_imresize(img, 0.25), max(1, plan.resize_repeats - 1))
    megapixels = height * width / 1e6
    return {"image": f"{width}x{height} RGB float64", "scale": 0.25, "antialias": True,
            "project_mp_per_s": megapixels / project_s, "project_first_call_s": first,
            "reference_mp_per_s": megapixels / reference_s, "speedup": reference_s / project_s,
            "max_abs_diff": float(np.max(np.abs(ours - theirs)))}


# -- 5. inference --------------------------------------------------------------------------------


def _run_child(args: list[str], cwd: Path) -> tuple[float, int, str]:
    """Run ``args``; return its wall seconds, its own peak RSS in bytes, and its stderr tail."""
    with tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(args, cwd=cwd, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        tail = err.read().decode(errors="replace")[-500:]
    if proc.returncode != 0:
        raise SuperresError(f"bench: `{' '.join(args)}` failed ({proc.returncode}): {tail.strip()}")
    return seconds, usage.ru_maxrss * 1024, tail  # ru_maxrss is in KiB on Linux


def measure_inference(device: torch.device, plan: Plan) -> list[dict[str, Any]]:
    """``superres upscale`` of one random-weights EDSR x2 on a square PNG, each case in a fresh process."""
    from PIL import Image

    side, scale, cfg = plan.image_side, 2, {"n_resblocks": 4, "n_feats": 16}
    rows = []
    with tempfile.TemporaryDirectory(prefix="superres-bench-") as tmp:
        root = Path(tmp)
        torch.manual_seed(0)
        save_weights(root / "weights", Weights(create_model("edsr", scale=scale, **cfg).state_dict(),
                                                {"architecture": "edsr", "scale": scale, "model": cfg}))
        Image.fromarray(np.random.default_rng(0).integers(0, 256, (side, side, 3), dtype=np.uint8)).save(root / "in.png")
        for name, extra in (("untiled", []), ("tiled", ["--tile", "512", "--overlap", "16"])):
            row: dict[str, Any] = {"case": name, "input": f"{side}x{side}", "model": f"edsr x{scale} {cfg} (random weights)"}
            args = [sys.executable, "-m", "superres", "upscale", str(root / "in.png"), "-o", str(root / name),
                    "--model", str(root / "weights"), "--device", device.type, *extra]
            try:
                seconds, rss, _ = _run_child(args, root)
            except SuperresError as exc:
                row["error"] = str(exc)
            else:
                row.update(options=" ".join(extra), seconds=seconds, output_mp_per_s=(side * scale) ** 2 / 1e6 / seconds,
                           peak_rss_mib=rss / 2**20)
            rows.append(row)
    return rows


# -- 6. pipeline overhead ------------------------------------------------------------------------


def measure_pipeline(root: Path, quick: bool) -> dict[str, Any]:
    """No-op ``dvc repro`` and the report pipeline, only where the pipeline's outputs exist and are up to date.
    The report rerun records one more ``report`` run in MLflow; its outputs are restored afterwards."""
    here = Path(sys.executable).parent  # the environment's own scripts, when it is not on PATH
    dvc, kedro = (shutil.which(name) or shutil.which(name, path=str(here)) for name in ("dvc", "kedro"))
    if not (root / "dvc.yaml").is_file() or not (root / "dvc.lock").is_file():
        return {"skipped": f"no DVC project with outputs in {root}"}
    if dvc is None:
        return {"skipped": "dvc is not on PATH"}
    start = time.perf_counter()
    status = subprocess.run([dvc, "status", "--json"], cwd=root, capture_output=True, text=True)
    status_s = time.perf_counter() - start
    out: dict[str, Any] = {"dvc_status_s": status_s}
    try:
        changed = json.loads(status.stdout or "{}")
    except json.JSONDecodeError:
        changed = {"?": status.stderr.strip()[-200:]}
    if status.returncode != 0 or changed:
        out["skipped"] = (f"the pipeline is not up to date ({', '.join(sorted(changed)) or status.stderr.strip()[-200:]} changed): "
                          "a repro would not be a no-op; run `dvc repro` first")
        return out
    if quick:
        out["skipped"] = "--quick: pipeline overhead not measured"
        return out
    out["dvc_repro_noop_s"], _, _ = _run_child([dvc, "repro"], root)
    if kedro is None:
        out["kedro_report"] = "skipped: kedro is not on PATH"
    else:
        out["kedro_report_s"], _, _ = _run_child([kedro, "run", "--pipelines=report"], root)
        # The rerun rewrote the page (it is dated): restore the pipeline's own from DVC's cache, so
        # that the pipeline stays up to date.
        subprocess.run([dvc, "checkout", "--force", "report"], cwd=root, capture_output=True, text=True)
    return out


# -- targets, machine, output --------------------------------------------------------------------


def _target(name: str, wanted: str, value: float | None, passed: bool | None, note: str = "") -> dict[str, Any]:
    return {"target": name, "wanted": wanted, "value": value, "passed": passed, "note": note}


def evaluate_targets(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Pass/fail of each target of the brief; ``passed`` is None where it could not be measured here."""
    targets = []
    runs = [r for r in result["mfu"].get("runs", []) if "trainer_patches_per_s" in r]
    if runs:
        speedup = max(r["ratio"] for r in runs)
        targets.append(_target("CUDA: EDSR-baseline x4 trainer vs plain fp32 loop", ">= 2x", speedup, speedup >= 2))
        mfu = max((r.get("mfu") or 0.0 for r in runs if r["batch"] == 64), default=None)
        peak_known = result["mfu"].get("bf16_peak_tflops") is not None
        targets.append(_target("CUDA: EDSR-baseline x4 MFU at batch 64", ">= 25%", mfu if peak_known else None,
                               mfu >= 0.25 if peak_known and mfu is not None else None))
    else:
        reason = result["mfu"].get("skipped", "no successful CUDA run")
        targets.append(_target("CUDA: EDSR-baseline x4 trainer vs plain fp32 loop", ">= 2x", None, None, reason))
        targets.append(_target("CUDA: EDSR-baseline x4 MFU at batch 64", ">= 25%", None, None, reason))
    ratios = [r["ratio"] for r in result["data_loading"]]
    worst = min(ratios) if ratios else None
    targets.append(_target(f"data loader vs trainer ({result['meta']['device']})", ">= 3x", worst,
                           worst >= 3 if worst is not None else None,
                           "" if ratios else "it is measured against the EDSR trainer: include edsr in --arch"))
    if result["meta"]["device"] == "cpu":
        rows = [r for r in result["training"] if "ratio" in r]
        worst_row = min(rows, key=lambda r: r["ratio"], default=None)
        overhead = 1 / worst_row["ratio"] - 1 if worst_row else None
        note = f"worst: {worst_row['arch']} {worst_row['size']}, {_spread(worst_row)}" if worst_row else ""
        targets.append(_target("CPU: trainer overhead over the plain loop (worst architecture)", "<= 5%", overhead,
                               overhead <= 0.05 if overhead is not None else None, note))
    deg = result["degradation"]
    targets.append(_target("bicubic vs straightforward numpy: speed-up", ">= 5x", deg["speedup"], deg["speedup"] >= 5))
    targets.append(_target("bicubic vs straightforward numpy: max abs difference", "<= 1e-5", deg["max_abs_diff"],
                           deg["max_abs_diff"] <= 1e-5))
    noop = result["pipeline"].get("dvc_repro_noop_s")
    targets.append(_target("no-op dvc repro", "<= 2 s", noop, noop <= 2 if noop is not None else None,
                           result["pipeline"].get("skipped", "")))
    return targets


def machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError, AttributeError):
        ram = None
    return {"cpu": cpu, "cores": os.cpu_count(), "ram_gib": ram, "os": platform.platform(), "python": platform.python_version()}


def run_bench(*, quick: bool, device: torch.device, root: Path, command: str, archs: tuple[str, ...] = ()) -> dict[str, Any]:
    """Every measurement; the dict that becomes the JSON file."""
    plan = QUICK if quick else (FULL_CUDA if device.type == "cuda" else FULL)
    host = machine()
    meta = {"date": dt.date.today().isoformat(), "command": command, "quick": quick, "device": device.type,
            "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else host["cpu"],
            "torch": torch.__version__, "machine": host, "threads": torch.get_num_threads()}
    result: dict[str, Any] = {"meta": meta}
    params = _read_yaml(root / PARAMS_FILE)
    cases = training_cases(params, plan, device, archs, root / PROFILES_DIR)
    steps = ["degradation", "inference", "pipeline", *(f"train {c['arch']} {c['size']}" for c in cases), "mfu", "loading"]
    with tqdm(total=len(steps), desc="bench", unit="part", disable=None) as bar:
        result["degradation"] = measure_degradation(plan)
        bar.update()
        result["inference"] = measure_inference(device, plan)
        bar.update()
        result["pipeline"] = measure_pipeline(root, quick)
        bar.update()
        result["training"] = []
        for case in cases:
            bar.set_postfix_str(f"{case['arch']} {case['size']}")
            result["training"].append(measure_training(case, device, plan))
            bar.update()
        result["mfu"] = measure_mfu(device, plan) if not quick else {"skipped": "--quick" if device.type == "cuda" else "no CUDA"}
        bar.update()
        consumers = [{"what": f"{r['arch']} {r['size']}", "rate": r["trainer_patches_per_s"], **{k: r[k] for k in ("batch", "lr_patch", "scale")}}
                     for r in result["training"] if r["arch"] == "edsr" and "trainer_patches_per_s" in r]
        consumers += [{"what": f"edsr-baseline x4 batch {r['batch']} compile={r['compile']}", "rate": r["trainer_patches_per_s"],
                       "batch": r["batch"], "lr_patch": 48, "scale": 4}
                      for r in result["mfu"].get("runs", []) if "trainer_patches_per_s" in r]
        result["data_loading"] = measure_loading(consumers, device, plan)
        bar.update()
    result["targets"] = evaluate_targets(result)
    return result


def _fmt(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "pass" if value else "**MISSED**"
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)


def markdown_section(result: dict[str, Any]) -> str:
    """The dated ``BENCHMARKS.md`` section: machine, device, torch, command, then every figure and the targets."""
    meta, m = result["meta"], result["meta"]["machine"]
    ram = f"{m['ram_gib']:.0f} GiB" if m["ram_gib"] else "unknown RAM"
    lines = [f"## {meta['date']}: `{meta['command']}`", "",
             f"Machine: {m['cpu']}, {m['cores']} cores, {ram}, {m['os']}, Python {m['python']}. "
             f"Device: {meta['device']} ({meta['device_name']}). torch {meta['torch']}, {meta['threads']} threads.", "",
             "| what | figure | target | result |", "|---|---|---|---|"]

    def add(what: str, figure: str, target: str = "", verdict: str = "") -> None:
        lines.append(f"| {what} | {figure} | {target} | {verdict} |")

    for r in result["training"]:
        label = f"train {r['arch']} {r['size']} ({r['source']}{', ' + r['note'] if 'note' in r else ''}), batch {r['batch']}, LR patch {r['lr_patch']}, x{r['scale']}"
        if "error" in r:
            add(label, f"failed: {r['error'][:120]}")
        else:
            add(label, f"trainer {_fmt(r['trainer_patches_per_s'])} patches/s, plain fp32 {_fmt(r['plain_patches_per_s'])} patches/s, "
                       f"ratio {r['ratio']:.3f} ({_spread(r)})",
                "CPU: >= 0.952 (overhead <= 5%)" if meta["device"] == "cpu" else "")
    mfu = result["mfu"]
    if "skipped" in mfu:
        add("MFU, EDSR-baseline x4", f"skipped: {mfu['skipped']}")
    for r in mfu.get("runs", []):
        label = f"EDSR-baseline x4 batch {r['batch']}, LR 48, trainer compile={r['compile']}"
        if "error" in r:
            add(label, f"failed: {r['error'][:120]}")
        else:
            add(label, f"{_fmt(r['trainer_patches_per_s'])} patches/s ({r['step_ms']:.1f} ms/step, {r['step_gflop']:.0f} GFLOP/step), "
                       f"plain fp32 {_fmt(r['plain_patches_per_s'])}, ratio {r['ratio']:.2f}, MFU {_fmt(r.get('mfu'))}",
                ">= 2x; MFU >= 25% at batch 64")
    for r in result["data_loading"]:
        add(f"data loader alone, {r['what']} (batch {r['batch']}, LR patch {r['lr_patch']})",
            f"{_fmt(r['loader_patches_per_s'])} patches/s = {r['ratio']:.1f}x the trainer", ">= 3x")
    d = result["degradation"]
    add(f"bicubic x1/4 of a {d['image']}", f"project {_fmt(d['project_mp_per_s'])} MP/s (first call {d['project_first_call_s']:.2f} s), "
        f"straightforward numpy {_fmt(d['reference_mp_per_s'])} MP/s: {d['speedup']:.1f}x, max diff {d['max_abs_diff']:.1e}",
        ">= 5x, <= 1e-5")
    for r in result["inference"]:
        label = f"`superres upscale` {r['case']} {r['input']}, {r['model']}"
        add(label, f"failed: {r['error'][-200:]}" if "error" in r else
            f"{_fmt(r['output_mp_per_s'])} output MP/s ({r['seconds']:.1f} s), peak RSS {r['peak_rss_mib']:.0f} MiB {r['options']}")
    p = result["pipeline"]
    if "dvc_status_s" in p:
        add("`dvc status`", f"{p['dvc_status_s']:.2f} s")
    if "dvc_repro_noop_s" in p:
        add("no-op `dvc repro`", f"{p['dvc_repro_noop_s']:.2f} s", "<= 2 s")
        add("`kedro run --pipelines=report`", f"{p['kedro_report_s']:.1f} s" if "kedro_report_s" in p else p.get("kedro_report", ""))
    if "skipped" in p:
        add("pipeline overhead", f"skipped: {p['skipped']}", "<= 2 s")
    lines += ["", "Targets:", "", "| target | wanted | measured | result |", "|---|---|---|---|"]
    for t in result["targets"]:
        verdict = _fmt(t["passed"]) if t["passed"] is not None else f"not measured: {t['note']}"
        if t["passed"] is not None and t["note"]:
            verdict += f" ({t['note']})"
        lines.append(f"| {t['target']} | {t['wanted']} | {_fmt(t['value'])} | {verdict} |")
    return "\n".join(lines) + "\n"


def append_section(path: Path, section: str) -> None:
    """Add ``section`` to ``path`` above the newest dated section (the file reads newest first),
    written atomically; a missing file is started with a title."""
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n"
    at = text.find("\n## ")
    text = text.rstrip("\n") + "\n\n" + section if at < 0 else text[: at + 1] + section.rstrip("\n") + "\n\n" + text[at + 1 :]
    write_text(path, text)


@click.command()
@click.option("--quick", is_flag=True, help="Tiny sizes and few steps: proves the command works (well under a minute).")
@click.option("-o", "--output", default="bench.json", show_default=True, type=click.Path(path_type=Path), help="JSON file of every figure.")
@click.option("--device", default="auto", show_default=True, type=click.Choice(["auto", "cpu", "cuda"]))
@click.option("--arch", "archs", multiple=True, help="Train only these architectures (repeatable; default: all, --quick: srcnn and edsr).")
@click.option("--no-append", is_flag=True, help=f"Do not append a section to {BENCHMARKS_FILE}.")
def bench(quick: bool, output: Path, device: str, archs: tuple[str, ...], no_append: bool) -> None:
    """Measure training, data loading, degradation, inference and pipeline speed; write OUTPUT and a BENCHMARKS.md section."""
    if device == "cuda" and not torch.cuda.is_available():
        raise click.ClickException("--device cuda: no CUDA device is available; use --device cpu or auto")
    unknown = sorted(set(archs) - set(REGISTRY))
    if unknown:
        raise click.ClickException(f"--arch {', '.join(unknown)}: unknown; known architectures: {', '.join(REGISTRY)}")
    command = "superres bench" + (" --quick" if quick else "") + (f" --device {device}" if device != "auto" else "")
    command += "".join(f" --arch {a}" for a in archs)
    root = Path.cwd()
    chosen = torch.device("cuda" if device == "auto" and torch.cuda.is_available() else "cpu" if device == "auto" else device)
    result = run_bench(quick=quick, device=chosen, root=root, command=command, archs=archs)
    write_text(output, json.dumps(result, indent=2) + "\n")
    section = markdown_section(result)
    if not no_append:
        append_section(root / BENCHMARKS_FILE, section)
    click.echo(section)
    click.echo(f"figures written to {output}" + ("" if no_append else f"; section appended to {BENCHMARKS_FILE}"), err=True)
