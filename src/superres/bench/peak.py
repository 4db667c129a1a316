"""Model FLOPs utilisation on CUDA: EDSR-baseline x4 through the trainer at batch 16 and 64, against the
device's dense bf16 peak (known devices only) and the plain fp32 loop.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

from superres.bench.timing import Plan
from superres.bench.training import plain_loop_rate, random_patches, trainer_rate
from superres.models import create_model

# Dense bf16 peak of the device, TFLOP/s, matched on the CUDA device name.
BF16_PEAK_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0}
EDSR_BASELINE = {"n_resblocks": 16, "n_feats": 64, "res_scale": 1.0}


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
    """EDSR-baseline x4 at batch 16 and 64, eager and compiled: patches/s, FLOP/s and MFU; skipped without CUDA."""
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
    patches = random_patches(plan.patches, 48, 4)
    sample_flops = step_flops(model, 1, 48, 4, device)  # one sample's step; a batch costs batch times as much
    for batch in (16, 64):
        flops = sample_flops * batch
        plain, steps, warmup = plain_loop_rate(copy.deepcopy(model), patches, batch, device, plan)
        for compiled in (False, True):
            run: dict[str, Any] = {"batch": batch, "compile": compiled, "step_gflop": flops / 1e9,
                                   "plain_patches_per_s": plain}
            try:
                rate = trainer_rate(copy.deepcopy(model), patches, batch, steps, warmup + (20 if compiled else 0),
                                    device, compile=compiled)
            except Exception as exc:
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
