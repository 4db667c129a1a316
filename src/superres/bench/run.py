"""Every measurement of ``superres bench`` in one run, and pass/fail per target.

:func:`run_bench` returns the dict that becomes the JSON file; :func:`evaluate_targets` judges it
(``passed`` is None where a target could not be measured here, never True).
"""

from __future__ import annotations

import datetime as dt
import os
import platform
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from superres.bench.degradation import measure_degradation
from superres.bench.engines import measure_engines
from superres.bench.inference import measure_inference
from superres.bench.loading import measure_loading
from superres.bench.peak import measure_mfu
from superres.bench.pipeline import measure_pipeline
from superres.bench.precision import measure_peak, measure_precision
from superres.bench.timing import FULL, FULL_CUDA, QUICK
from superres.bench.training import measure_training, read_yaml, spread, training_cases
from superres.machine import cpu_model
from superres.precision import native_bf16
from superres.profiles import PROFILES_DIR

PARAMS_FILE = Path("params.yaml")


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
        note = f"worst: {worst_row['arch']} {worst_row['size']}, {spread(worst_row)}" if worst_row else ""
        targets.append(_target("CPU: trainer overhead over the plain loop (worst architecture)", "<= 5%", overhead,
                               overhead <= 0.05 if overhead is not None else None, note))
    if result["meta"]["device"] == "cpu":
        targets += _cpu_precision_targets(result)
    deg = result["degradation"]
    targets.append(_target("bicubic vs straightforward numpy: speed-up", ">= 5x", deg["speedup"], deg["speedup"] >= 5))
    targets.append(_target("bicubic vs straightforward numpy: max abs difference", "<= 1e-5", deg["max_abs_diff"],
                           deg["max_abs_diff"] <= 1e-5))
    noop = result["pipeline"].get("dvc_repro_noop_s")
    targets.append(_target("no-op dvc repro", "<= 2 s", noop, noop <= 2 if noop is not None else None,
                           result["pipeline"].get("skipped", "")))
    return targets



def _cpu_precision_targets(result: dict[str, Any]) -> list[dict[str, Any]]:
    """EDSR's default-profile training step: ``auto`` at least 2x fp32 NCHW where the CPU computes bf16
    natively, and its bf16 MFU at least 30% of the bf16 matmul peak."""
    edsr = next((r for r in result["precision"] if r["arch"] == "edsr" and "speedup" in r), None)
    bf16 = result["meta"].get("native_bf16", False)
    why = "" if edsr else "include edsr in --arch"
    if edsr and not bf16:
        why = "the CPU has no native bf16: auto trains in fp32"
    measured = edsr is not None and bf16
    return [
        _target("CPU: EDSR default training step, auto (bf16 + channels_last) vs fp32 NCHW", ">= 2x",
                edsr["speedup"] if edsr else None, edsr["speedup"] >= 2 if measured else None, why),
        _target("CPU: EDSR default training, MFU in bf16 (of the bf16 matmul peak)", ">= 30%",
                edsr["auto_mfu"] if edsr else None,
                edsr["auto_mfu"] >= 0.30 if measured and edsr["auto_mfu"] is not None else None, why),
    ]


def machine() -> dict[str, Any]:
    """The machine the figures come from: CPU model, cores, RAM in GiB (None where unknown), OS, Python."""
    cpu = cpu_model()
    try:
        ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError, AttributeError):
        ram = None
    return {"cpu": cpu, "cores": os.cpu_count(), "ram_gib": ram, "os": platform.platform(),
            "python": platform.python_version()}



def run_bench(
    *, quick: bool, device: torch.device, root: Path, command: str, archs: tuple[str, ...] = ()
) -> dict[str, Any]:
    """Every measurement; the dict that becomes the JSON file."""
    plan = QUICK if quick else (FULL_CUDA if device.type == "cuda" else FULL)
    host = machine()
    meta = {"date": dt.date.today().isoformat(), "command": command, "quick": quick, "device": device.type,
            "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else host["cpu"],
            "torch": torch.__version__, "machine": host, "threads": torch.get_num_threads(),
            "native_bf16": native_bf16(device)}
    result: dict[str, Any] = {"meta": meta}
    params = read_yaml(root / PARAMS_FILE)
    cases = training_cases(params, plan, device, archs, root / PROFILES_DIR)
    defaults = [c for c in cases if c["size"] == "default"]
    steps = ["peak", "degradation", "inference", "pipeline", *(f"train {c['arch']} {c['size']}" for c in cases),
             *(f"precision {c['arch']}" for c in defaults), "upscale engines", "mfu", "loading"]
    with tqdm(total=len(steps), desc="bench", unit="part", disable=None) as bar:
        result["peak"] = measure_peak(device, plan)
        bar.update()
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
        result["precision"] = []
        for case in defaults:
            bar.set_postfix_str(f"precision {case['arch']}")
            result["precision"].append(measure_precision(case, device, plan, result["peak"]))
            bar.update()
        bar.set_postfix_str("upscale engines")
        result["engines"] = (measure_engines({c["arch"]: c["model"] for c in defaults}, plan, result["peak"])
                             if device.type == "cpu" else [])
        bar.update()
        skipped = {"skipped": "--quick" if device.type == "cuda" else "no CUDA"}
        result["mfu"] = measure_mfu(device, plan) if not quick else skipped
        bar.update()
        consumers = [{"what": f"{r['arch']} {r['size']}", "rate": r["trainer_patches_per_s"],
                      **{k: r[k] for k in ("batch", "lr_patch", "scale")}}
                     for r in result["training"] if r["arch"] == "edsr" and "trainer_patches_per_s" in r]
        consumers += [{"what": f"edsr-baseline x4 batch {r['batch']} compile={r['compile']}",
                       "rate": r["trainer_patches_per_s"],
                       "batch": r["batch"], "lr_patch": 48, "scale": 4}
                      for r in result["mfu"].get("runs", []) if "trainer_patches_per_s" in r]
        result["data_loading"] = measure_loading(consumers, device, plan)
        bar.update()
    result["targets"] = evaluate_targets(result)
    return result
