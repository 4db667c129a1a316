"""Multi-GPU training by DistributedDataParallel, when the run is launched under ``torchrun``.

``torchrun --nproc_per_node=N`` starts one process per GPU and sets ``WORLD_SIZE``, ``RANK`` and
``LOCAL_RANK``; with ``WORLD_SIZE > 1`` the trainer joins the process group (NCCL on CUDA, gloo
on the CPU), each rank draws its own batches, and only rank 0 validates, logs and writes.
Without ``torchrun`` every function here is a no-op for a single process.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field

import torch
import torch.distributed as dist
from torch import nn

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Context:
    rank: int = 0
    world_size: int = 1
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def launched() -> bool:
    """True in a process started by ``torchrun`` with more than one process."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def setup(device: torch.device) -> Context:
    """Join the process group when launched under ``torchrun``; on CUDA each rank takes GPU ``LOCAL_RANK``."""
    if not launched():
        return Context(device=device)
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    context = Context(dist.get_rank(), dist.get_world_size(), device)
    log.info("distributed training: rank %d of %d on %s", context.rank, context.world_size, device)
    return context


def wrap(model: nn.Module, context: Context) -> nn.Module:
    """The model in DistributedDataParallel (which averages its gradients), or as it is."""
    if not context.enabled:
        return model
    ids = [context.device.index] if context.device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=ids)


def mean(value: torch.Tensor, context: Context) -> torch.Tensor:
    """The mean of a scalar tensor over the ranks."""
    if not context.enabled:
        return value
    value = value.detach().clone()
    dist.all_reduce(value)
    return value / context.world_size


def average_gradients(module: nn.Module, context: Context) -> None:
    """Average the gradients of a module that is not wrapped in DDP (the discriminator)."""
    if not context.enabled:
        return
    for p in module.parameters():
        if p.grad is not None:
            dist.all_reduce(p.grad)
            p.grad.div_(context.world_size)


def broadcast_flag(flag: bool, context: Context) -> bool:
    """Rank 0's decision (e.g. stop early), for every rank."""
    if not context.enabled:
        return flag
    value = torch.tensor([int(flag)], device=context.device)
    dist.broadcast(value, src=0)
    return bool(value.item())


def teardown(context: Context) -> None:
    if context.enabled and dist.is_initialized():
        dist.destroy_process_group()
