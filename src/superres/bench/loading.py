"""What the training data pipeline alone delivers, against what the trainer consumes at the same batch
and patch size.
"""

from __future__ import annotations

import time
from typing import Any

import torch

from superres.bench.timing import Plan, sync
from superres.bench.training import random_patches
from superres.training.data import PatchDataset
from superres.training.trainer import batch_generator


def loader_rate(patches: PatchDataset, batch: int, device: torch.device, seconds: float) -> float:
    """Patches/s that the training data delivers as the trainer receives it: the dataset's batch of
    (seed, step), moved to ``device`` as float in [0, 1] (channels_last on CUDA, as the trainer's default)."""
    memory_format = torch.channels_last if device.type == "cuda" else torch.contiguous_format

    def fetch(step: int) -> None:
        for x in patches.batch(batch, batch_generator(0, step, 0), device=device):
            x.float().div_(255.0).contiguous(memory_format=memory_format)

    fetch(0)
    sync(device)
    count, start = 0, time.perf_counter()
    while count < 3 or time.perf_counter() - start < seconds:
        count += 1
        fetch(count)
    sync(device)
    return batch * count / (time.perf_counter() - start)


def measure_loading(consumers: list[dict[str, Any]], device: torch.device, plan: Plan) -> list[dict[str, Any]]:
    """For each trainer measurement given, the loader's patches/s at the same batch and patch size."""
    rows = []
    for consumer in consumers:
        patches = random_patches(plan.patches, consumer["lr_patch"], consumer["scale"])
        rate = loader_rate(patches, consumer["batch"], device, min(plan.seconds, 2.0))
        rows.append({"what": consumer["what"], "batch": consumer["batch"], "lr_patch": consumer["lr_patch"],
                     "scale": consumer["scale"], "loader_patches_per_s": rate,
                     "trainer_patches_per_s": consumer["rate"], "ratio": rate / consumer["rate"]})
    return rows
