"""Training checkpoints: the state of a run, and the one file, written atomically, that resumes
a killed run exactly.

:class:`TrainState` is everything a run changes as it trains: the model, its optimiser and
schedule, the EMA, the discriminator with its optimiser and schedule, the iteration, the
best-so-far weights and validation history, the running loss and the early-stopping counter, the
seconds trained so far and every random state. Its ``state_dict`` and ``load_state_dict`` walk
the same lists of names, so what is saved is what is restored. A checkpoint is that state dict
plus the caller's ``metadata`` (e.g. the id of its tracking run) and the ``format`` of the file.
Everything in it is a tensor, a list, a dict, a number or a string, so it is read back with
``torch.load(weights_only=True)``: loading a checkpoint never unpickles code.
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from superres.atomic import atomic_path
from superres.errors import WeightsError

log = logging.getLogger(__name__)

FILENAME = "last.pt"
FORMAT = 1  # the layout of the file; a checkpoint without the key is of format 1
REQUIRED = ("step", "model", "optimizer", "scheduler", "rng")

Optimizer = torch.optim.Optimizer
Scheduler = torch.optim.lr_scheduler.LRScheduler


class TrainState:
    """The state of a training run. ``COMPONENTS`` are objects with their own state dicts (absent
    ones, e.g. no EMA, are left out); ``COUNTERS`` are plain values; ``seconds`` reads the time
    trained so far, this stretch included, and setting it restarts this stretch's clock."""

    COMPONENTS = ("model", "optimizer", "scheduler", "ema", "discriminator", "d_optimizer", "d_scheduler")
    COUNTERS = ("step", "best_state_dict", "history", "best_step", "best_psnr_y", "running", "seen",
                "bad_validations", "seconds")

    def __init__(
        self,
        model: nn.Module,
        optimizer: Optimizer,
        scheduler: Scheduler,
        *,
        ema: nn.Module | None = None,
        discriminator: nn.Module | None = None,
        d_optimizer: Optimizer | None = None,
        d_scheduler: Scheduler | None = None,
    ) -> None:
        self.model, self.optimizer, self.scheduler, self.ema = model, optimizer, scheduler, ema
        self.discriminator, self.d_optimizer, self.d_scheduler = discriminator, d_optimizer, d_scheduler
        self.step = 0  # the last iteration done
        self.best_state_dict: dict[str, torch.Tensor] = {}  # the best weights so far (EMA when on), on the CPU
        self.history: list[dict[str, float]] = []  # one row per validation
        self.best_step = 0
        self.best_psnr_y = -math.inf
        self.running, self.seen = 0.0, 0  # the summed training loss and its steps since the last validation
        self.bad_validations = 0  # validations since the last improvement
        self.seconds = 0.0

    @property
    def seconds(self) -> float:
        """Seconds trained: the earlier stretches of a resumed run plus this one so far."""
        return self._before + time.perf_counter() - self._started

    @seconds.setter
    def seconds(self, value: float) -> None:
        self._before, self._started = float(value), time.perf_counter()

    def components(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.COMPONENTS if getattr(self, name) is not None}

    def state_dict(self) -> dict[str, Any]:
        """Every component's state dict, every counter, the random states and the format."""
        state: dict[str, Any] = {"format": FORMAT}
        for name, component in self.components().items():
            state[name] = scheduler_state(component) if isinstance(component, Scheduler) else component.state_dict()
        state.update({name: getattr(self, name) for name in self.COUNTERS})
        state["rng"] = rng_state()
        return state

    def load_state_dict(self, state: Mapping[str, Any], source: str | Path = "the checkpoint") -> None:
        """Restore what :meth:`state_dict` gave; a missing or mismatched entry is a ``WeightsError``
        naming ``source`` (the file)."""
        found = state.get("format", 1)
        if found != FORMAT:
            raise WeightsError(f"checkpoint {source} is of format {found!r}, this version reads format {FORMAT}; "
                               "delete it, or train without resume to start afresh")
        for name, component in self.components().items():
            _load_into(component, _entry(state, name, source), name, source)
        for name in self.COUNTERS:
            if name == "seconds" and name not in state:  # absent from the checkpoints of older versions
                continue
            setattr(self, name, _entry(state, name, source))
        set_rng_state(_entry(state, "rng", source))


def _entry(state: Mapping[str, Any], key: str, source: str | Path) -> Any:
    if key not in state:
        raise WeightsError(f"checkpoint {source} has no {key} state (written with another train config?); "
                           "delete it, or train without resume to start afresh")
    return state[key]


def _load_into(target: Any, saved: Any, name: str, source: str | Path) -> None:
    """Load ``saved`` into a module, optimiser or scheduler; a mismatch names the file."""
    if isinstance(target, Scheduler):
        saved = {**target.state_dict(), **saved}  # the configuration (e.g. milestones) comes from the config
    try:
        target.load_state_dict(saved)
    except (RuntimeError, ValueError, KeyError) as exc:
        raise WeightsError(f"checkpoint {source} does not match this model or config ({name}: {exc}); "
                           "delete it, or train without resume to start afresh") from None


def save(path: Path, state: Mapping[str, Any]) -> None:
    """Write ``state`` to ``path`` atomically: a crash mid-write leaves the previous checkpoint."""
    with atomic_path(path) as tmp:
        torch.save(dict(state), tmp)
    log.debug("checkpoint of iteration %s written to %s", state.get("step"), path)


def load(path: Path, *, mmap: bool = False) -> dict[str, Any]:
    """Read a checkpoint; a corrupt, truncated or foreign file is a ``WeightsError`` naming it.
    With ``mmap`` the tensors are mapped from the file, not read, until they are used."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except Exception as exc:  # torch raises several types for a damaged zip or pickle
        raise WeightsError(
            f"checkpoint {path} is corrupt or truncated ({type(exc).__name__}); "
            "delete it, or train without resume to start afresh"
        ) from None
    missing = [key for key in REQUIRED if not isinstance(state, dict) or key not in state]
    if missing:
        raise WeightsError(
            f"checkpoint {path} is not a training checkpoint (missing {', '.join(missing)}); "
            "delete it, or train without resume to start afresh"
        )
    return state


def peek(path: Path) -> dict[str, Any] | None:
    """The checkpoint at ``path`` with its tensors mapped, not read: a cheap look at its step,
    history, ``seconds`` and ``metadata`` before training resumes from it. None when there is none."""
    path = Path(path)
    if not path.exists():
        return None
    return load(path, mmap=True)


def scheduler_state(scheduler: torch.optim.lr_scheduler.LRScheduler) -> dict[str, Any]:
    """The scheduler's state without its configuration (MultiStepLR keeps its milestones in a
    Counter, which ``weights_only`` loading refuses); the configuration comes from the config."""
    return {k: v for k, v in scheduler.state_dict().items() if k != "milestones"}


def rng_state() -> dict[str, Any]:
    """Python's, NumPy's and torch's random states, as plain lists and tensors."""
    version, internal, gauss = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "python": [version, list(internal), gauss],
        "numpy": [name, keys.tolist(), int(pos), int(has_gauss), float(cached)],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: Mapping[str, Any]) -> None:
    """Restore what :func:`rng_state` gave."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
