"""Training checkpoints: one file, written atomically, that resumes a killed run exactly.

It holds the model, optimisers, schedulers, the EMA and the discriminator as state dicts, the
step, the best-so-far weights and history, the early-stopping counter, every random state, the
seconds trained so far and the caller's ``metadata`` (e.g. the id of its tracking run).
Everything in it is a tensor, a list, a dict, a number or a string, so it is read back with
``torch.load(weights_only=True)``: loading a checkpoint never unpickles code.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from superres.atomic import atomic_path
from superres.errors import WeightsError

log = logging.getLogger(__name__)

FILENAME = "last.pt"
REQUIRED = ("step", "model", "optimizer", "scheduler", "rng")


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
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
