"""Weights on disk: ``weights.safetensors`` plus ``config.json`` in one folder.

Loading never unpickles: safetensors holds only tensors, the config only JSON. The config holds
at least ``architecture``, ``scale`` and ``model`` (the constructor arguments).
"""

from __future__ import annotations

import json
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


@dataclass
class Weights:
    state_dict: dict[str, torch.Tensor]
    config: dict[str, Any]

    def build(self, device: str | torch.device = "cpu") -> nn.Module:
        """The model of ``config`` with these weights, in eval mode on ``device``."""
        from superres.models import create_model  # the registry imports every architecture

        model = create_model(self.config["architecture"], scale=int(self.config["scale"]), **self.config.get("model", {}))
        try:
            model.load_state_dict(self.state_dict)
        except RuntimeError as exc:
            raise WeightsError(f"the weights do not match the {self.config['architecture']} architecture: {exc}") from None
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
    config_path, weights_path = folder / CONFIG_FILE, folder / WEIGHTS_FILE
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise WeightsError(f"{config_path} not found; train the model first (`kedro run --pipelines=<arch>`)") from None
    except json.JSONDecodeError as exc:
        raise WeightsError(f"{config_path} is not valid JSON ({exc}); retrain the model or restore the file") from None
    try:
        state = load_file(str(weights_path), device=str(device))
    except FileNotFoundError:
        raise WeightsError(f"{weights_path} not found; train the model first (`kedro run --pipelines=<arch>`)") from None
    except (SafetensorError, OSError) as exc:
        raise WeightsError(f"{weights_path} is not a readable safetensors file ({exc}); retrain or restore it") from None
    return Weights(state, config)


def load_model(folder: str | Path, device: str | torch.device = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the model saved in ``folder``; returns it (eval mode) and its config."""
    weights = load_weights(folder, device)
    return weights.build(device), weights.config
