"""This machine's attainable peak, and each training case's speed in fp32 NCHW and in the precision
``auto`` picks, as model FLOP/s and as a fraction of that peak (MFU).

The peak (:func:`measure_peak`) is what torch reaches here on a large matmul and a large 3x3
convolution, fp32 and bf16: the ceiling the models' FLOP/s are set against. A CPU's datasheet peak
assumes clocks and instructions a 2-core virtual machine does not sustain, so the measured one is the
fair denominator. FLOPs are counted by ``torch.utils.flop_counter.FlopCounterMode`` (forward and
backward of the model; the optimiser's few element-wise FLOPs are not counted).

:func:`measure_precision` times the plain Adam + L1 step of every default-profile case in fp32 NCHW
and in ``training_precision("auto", "auto")``, one step of each in turn, so that a machine that
drifts weighs on both alike; the ratio of the medians is the speed-up of ``auto``.
"""

from __future__ import annotations

import copy
import time
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from superres.bench.peak import step_flops
from superres.bench.timing import Plan, best_time, sync
from superres.bench.training import FP32_NCHW, plain_step, random_patches
from superres.errors import SuperresError
from superres.models import create_model
from superres.precision import Precision, training_precision


def tflops(flops: float, seconds: float) -> float:
    return flops / seconds / 1e12


def measure_peak(device: torch.device, plan: Plan) -> dict[str, Any]:
    """TFLOP/s of an n x n matmul and of a 64 -> 64 channel 3x3 convolution (batch 16), fp32 and bf16,
    the best of a few calls; bf16 in the layout ``auto`` trains in. The matmul's are the peaks."""
    n = 256 if plan.quick else 4096
    side = 16 if plan.quick else 96
    repeats = 2 if plan.quick else 5
    layout = training_precision("auto", "auto", device).memory_format
    out: dict[str, Any] = {"matmul_n": n, "conv": f"16 x 64 x {side} x {side}, 3x3, 64 -> 64"}
    with torch.no_grad():
        for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
            a, b = (torch.rand(n, n, device=device, dtype=dtype) for _ in range(2))
            torch.mm(a, b)  # first call: oneDNN picks its kernel
            seconds, _ = best_time(lambda a=a, b=b: (torch.mm(a, b), sync(device)), repeats)
            out[f"matmul_{name}_tflops"] = tflops(2 * n**3, seconds)
            x = torch.rand(16, 64, side, side, device=device, dtype=dtype)
            w = torch.rand(64, 64, 3, 3, device=device, dtype=dtype)
            if dtype == torch.bfloat16:
                x, w = x.contiguous(memory_format=layout), w.contiguous(memory_format=layout)
            F.conv2d(x, w, padding=1)
            seconds, _ = best_time(lambda x=x, w=w: (F.conv2d(x, w, padding=1), sync(device)), repeats)
            out[f"conv_{name}_tflops"] = tflops(2 * 16 * 64 * side * side * 64 * 9, seconds)
    # the matmul is the peak the MFU figures are set against; the convolution shows what SR layers reach
    out["peak_fp32_tflops"], out["peak_bf16_tflops"] = out["matmul_fp32_tflops"], out["matmul_bf16_tflops"]
    return out


def mfu(flops: float, seconds: float, precision: Precision, peak: dict[str, Any]) -> float | None:
    """Model FLOP/s over the measured peak of the precision the work ran in."""
    ceiling = peak.get("peak_bf16_tflops" if precision.bf16 else "peak_fp32_tflops")
    return tflops(flops, seconds) / ceiling if ceiling else None


def measure_precision(case: dict[str, Any], device: torch.device, plan: Plan, peak: dict[str, Any]) -> dict[str, Any]:
    """One default-profile training case: the plain step in fp32 NCHW and in ``auto``'s precision, interleaved;
    ms per step, the speed-up, TFLOP/s and MFU of each. An architecture that fails is reported, not fatal."""
    auto = training_precision("auto", "auto", device, case["arch"])
    row: dict[str, Any] = {k: case[k] for k in ("arch", "scale", "batch", "lr_patch")}
    row["auto"] = auto.describe()
    try:
        torch.manual_seed(0)
        model = create_model(case["arch"], scale=case["scale"], **case["model"])
        patches = random_patches(plan.patches, case["lr_patch"], case["scale"])
        flops = step_flops(model, case["batch"], case["lr_patch"], case["scale"], device)
        steps = {name: plain_step(copy.deepcopy(model), patches, case["batch"], device, precision=chosen)
                 for name, chosen in (("fp32", FP32_NCHW), ("auto", auto))}
        for step in steps.values():  # warm up: oneDNN creates its primitives on the first calls
            for i in range(max(1, plan.warmup)):
                step(i)
        times: dict[str, list[float]] = {name: [] for name in steps}
        started = time.perf_counter()
        count = 0
        while count < plan.min_steps or (time.perf_counter() - started < 2 * plan.seconds and count < plan.max_steps):
            for name, step in steps.items():
                began = time.perf_counter()
                step(count)
                sync(device)
                times[name].append(time.perf_counter() - began)
            count += 1
    except (SuperresError, RuntimeError, ValueError, TypeError) as exc:
        row["error"] = f"{type(exc).__name__}: {exc}"
        return row
    fp32_s, auto_s = (float(np.median(times[name])) for name in ("fp32", "auto"))
    row.update(steps=count, step_gflop=flops / 1e9, fp32_ms=fp32_s * 1e3, auto_ms=auto_s * 1e3,
               speedup=fp32_s / auto_s, ratio_quartiles=[float(q) for q in np.quantile(
                   np.array(times["fp32"]) / np.array(times["auto"]), [0.25, 0.75])],
               fp32_tflops=tflops(flops, fp32_s), auto_tflops=tflops(flops, auto_s),
               fp32_mfu=mfu(flops, fp32_s, FP32_NCHW, peak), auto_mfu=mfu(flops, auto_s, auto, peak))
    return row
