"""Weights on disk: ``weights.safetensors`` plus ``config.json`` in one folder.

Loading never unpickles: safetensors holds only tensors, the config only JSON. The config holds
at least ``architecture``, ``scale`` and ``model`` (the constructor arguments).

A PyTorch checkpoint from elsewhere (``.pth`` / ``.pt``) carries no config, so one is given
beside it: either a ``config.json`` in the same folder, or the architecture, scale and model
arguments by the caller (``--arch``, ``--scale``, ``--model-config`` on the command line). Such a
file is read only with ``torch.load(weights_only=True)``, which refuses any pickle that would
build something other than tensors and plain containers (one that would run code, for one). The
usual wrappings are undone: a ``params_ema`` / ``params`` / ``state_dict`` / ``model`` entry holding
the tensors, and a ``module.`` prefix left by ``DataParallel``.
"""

from __future__ import annotations

import json
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from superres.atomic import atomic_path, write_text
from superres.errors import WeightsError

WEIGHTS_FILE = "weights.safetensors"
CONFIG_FILE = "config.json"
CHECKPOINT_SUFFIXES = (".pth", ".pt")
# Where checkpoints of other projects keep their tensors, most preferred first (BasicSR's EMA first).
CHECKPOINT_KEYS = ("params_ema", "params", "state_dict", "model")


@dataclass
class Weights:
    state_dict: dict[str, torch.Tensor]
    config: dict[str, Any]

    def build(self, device: str | torch.device = "cpu") -> nn.Module:
        """The model of ``config`` with these weights, in eval mode on ``device``."""
        from superres.models import create_model  # the registry imports every architecture

        config = self.config
        model = create_model(config["architecture"], scale=int(config["scale"]), **config.get("model", {}))
        try:
            model.load_state_dict(self.state_dict)
        except RuntimeError as exc:
            architecture = self.config["architecture"]
            raise WeightsError(f"the weights do not match the {architecture} architecture: {exc}") from None
        return model.to(device).eval()


def save_weights(folder: str | Path, weights: Weights) -> None:
    """Write both files of ``weights`` into ``folder``, each atomically."""
    folder = Path(folder)
    tensors = {k: v.detach().cpu().contiguous() for k, v in weights.state_dict.items()}
    with atomic_path(folder / WEIGHTS_FILE) as tmp:
        save_file(tensors, str(tmp), metadata={"architecture": str(weights.config["architecture"])})
    write_text(folder / CONFIG_FILE, json.dumps(weights.config, indent=2, sort_keys=True) + "\n")


def load_weights(folder: str | Path, device: str | torch.device = "cpu") -> Weights:
    folder = Path(folder)
    config, weights_path = _read_config(folder / CONFIG_FILE), folder / WEIGHTS_FILE
    try:
        state = load_file(str(weights_path), device=str(device))
    except FileNotFoundError:
        raise WeightsError(
            f"{weights_path} not found; train the model first (`kedro run --pipelines=<arch>`)"
        ) from None
    except (SafetensorError, OSError) as exc:
        raise WeightsError(
            f"{weights_path} is not a readable safetensors file ({exc}); retrain or restore it"
        ) from None
    return Weights(state, config)


def load_model(folder: str | Path, device: str | torch.device = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the model saved in ``folder``; returns it (eval mode) and its config."""
    weights = load_weights(folder, device)
    return weights.build(device), weights.config


def _read_config(config_path: Path) -> dict[str, Any]:
    try:
        return json.loads(config_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise WeightsError(f"{config_path} not found; train the model first (`kedro run --pipelines=<arch>`)") from None
    except json.JSONDecodeError as exc:
        raise WeightsError(f"{config_path} is not valid JSON ({exc}); retrain the model or restore the file") from None


def unwrap_state_dict(checkpoint: Any, path: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of a loaded checkpoint: the first of ``CHECKPOINT_KEYS`` holding a dict, else the
    checkpoint itself; a ``module.`` prefix is removed from every key."""
    state = checkpoint
    if isinstance(state, dict):
        for key in CHECKPOINT_KEYS:
            if isinstance(state.get(key), dict):
                state = state[key]
                break
    if not isinstance(state, dict) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsError(f"{path} holds no state dict of tensors (looked for {', '.join(CHECKPOINT_KEYS)} or "
                           "tensors at the top level); give a checkpoint of model weights")
    return {k.removeprefix("module."): v for k, v in state.items()}


def load_checkpoint(path: str | Path, config: dict[str, Any], device: str | torch.device = "cpu") -> Weights:
    """Weights from a foreign PyTorch checkpoint, read with ``torch.load(weights_only=True)``.

    ``config`` holds ``architecture``, ``scale`` and ``model`` as in ``config.json``. A file whose
    unpickling would build anything but tensors and containers is refused with a ``WeightsError``.
    """
    path = Path(path)
    missing = [key for key in ("architecture", "scale") if key not in config]
    if missing:
        raise WeightsError(f"{path} is a checkpoint without a config: give {' and '.join(missing)} "
                           "(--arch/--scale, or a config.json beside it)")
    try:
        checkpoint = torch.load(path, map_location=device, weights_only=True)
    except FileNotFoundError:
        raise WeightsError(f"{path} not found; check the path") from None
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise WeightsError(f"{path} refused: it is not a plain checkpoint of tensors and loading it could run code "
                           f"({first}); use weights from a source you trust, saved as a state dict") from None
    except (RuntimeError, OSError, EOFError, ValueError) as exc:
        raise WeightsError(f"{path} is not a readable PyTorch checkpoint ({exc}); check the file") from None
    return Weights(unwrap_state_dict(checkpoint, path), dict(config))


def find_checkpoint(folder: Path) -> Path | None:
    """The one ``.pth`` / ``.pt`` file of ``folder``, None if there is none."""
    found = sorted(p for p in folder.iterdir() if p.suffix in CHECKPOINT_SUFFIXES)
    if len(found) > 1:
        raise WeightsError(f"{folder} holds several checkpoints ({', '.join(p.name for p in found)}); keep one")
    return found[0] if found else None


def load_any(path: str | Path, config: dict[str, Any] | None = None, device: str | torch.device = "cpu") -> Weights:
    """Weights from a project folder (safetensors + config), a folder holding ``config.json`` and one
    checkpoint, or a checkpoint file with ``config`` (its values override a ``config.json`` beside it)."""
    path = Path(path)
    if path.is_dir():
        checkpoint = None if (path / WEIGHTS_FILE).exists() else find_checkpoint(path)
        if checkpoint is None:
            return load_weights(path, device)
        return load_checkpoint(checkpoint, {**_read_config(path / CONFIG_FILE), **(config or {})}, device)
    if path.suffix in CHECKPOINT_SUFFIXES:
        beside = path.parent / CONFIG_FILE
        return load_checkpoint(path, {**(_read_config(beside) if beside.exists() else {}), **(config or {})}, device)
    if path.suffix == ".safetensors":
        raise WeightsError(f"{path}: give the folder holding it and its {CONFIG_FILE}, not the file")
    raise WeightsError(f"{path} is neither a weights folder nor a {' / '.join(CHECKPOINT_SUFFIXES)} checkpoint")
