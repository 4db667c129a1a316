"""The machine a number came from, and the settings that make a run repeatable on it.

Seeded runs are bit-identical on the same machine and software. Across machines (another CPU
model, another thread count, another build of torch) floating-point reductions run in another
order, and trained weights drift apart within the spread that the seeds show: every run records
where it ran, so a reader can tell the two apart.
"""

from __future__ import annotations

import os
import platform
from functools import cache
from typing import Any

import torch


@cache
def cpu_model() -> str:
    """The CPU's model name as the OS reports it (``/proc/cpuinfo`` on Linux)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def describe_machine(device: torch.device) -> dict[str, Any]:
    """What the numbers of a run depend on besides the code and the data: CPU model, logical CPUs,
    the threads torch computes with, the device and its name, and the versions of torch and Python."""
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_model()
    return {
        "cpu": cpu_model(),
        "cpus": os.cpu_count() or 0,
        "threads": torch.get_num_threads(),
        "device": device.type,
        "device_name": name,
        "torch": torch.__version__,
        "python": platform.python_version(),
    }


def machine_tags(machine: dict[str, Any]) -> dict[str, str]:
    """The machine record as MLflow tags: ``superres.machine.cpu``, ``superres.machine.torch``..."""
    return {f"superres.machine.{key}": str(value) for key, value in machine.items()}


def make_deterministic(device: torch.device, compiled: bool = False) -> None:
    """Ask torch for its deterministic algorithms where they exist (a warning, not an error, where
    an op has none). On CUDA this also needs cuBLAS's fixed workspace and no cuDNN autotuning.

    ``torch.use_deterministic_algorithms`` also sets the flag of TorchInductor's configuration, and
    importing that configuration loads TorchDynamo: about 2 s of every train stage's start. An eager
    run (``compiled`` false) sets torch's own flag only, which is the rest of what that function does."""
    if device.type == "cuda":
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.benchmark = False
    if compiled:
        torch.use_deterministic_algorithms(True, warn_only=True)
    else:
        torch._C._set_deterministic_algorithms(True, warn_only=True)
