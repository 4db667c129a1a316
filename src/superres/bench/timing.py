"""How long each measurement of the bench runs, and how it is timed.

A :class:`Plan` sets the budget: ``QUICK`` (``--quick``) proves the command, ``FULL`` and ``FULL_CUDA``
measure. :func:`sync` waits for the device before a clock is read; :func:`best_time` keeps the fastest
of a few calls; :func:`run_child` times a command in a fresh process with its peak memory.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from superres.errors import SuperresError


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




def sync(device: torch.device) -> None:
    """Wait for the work queued on ``device`` (CUDA); nothing to wait for on the CPU."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def best_time(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    """The fewest seconds of ``repeats`` calls of ``fn``, and the last call's value."""
    times, value = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - start)
    return min(times), value



def run_child(args: list[str], cwd: Path) -> tuple[float, int, str]:
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
