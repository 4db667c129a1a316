"""The model zoo: one explicit registry from architecture key to model class.

``create_model(name, scale=..., **cfg)`` builds a model from its key and configuration (the
``model`` section of the architecture's parameters). Adding an architecture is one module here
plus one entry in ``REGISTRY`` and one section in ``params.yaml``.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from superres.errors import ConfigError
from superres.models.bicubic import Bicubic
from superres.models.edsr import EDSR
from superres.models.srcnn import SRCNN

REGISTRY: dict[str, type[nn.Module]] = {
    "bicubic": Bicubic,
    "srcnn": SRCNN,
    "edsr": EDSR,
}


def create_model(name: str, *, scale: int, **cfg: Any) -> nn.Module:
    """Build the architecture ``name`` for an upscaling factor ``scale`` from its config keys."""
    try:
        cls = REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(REGISTRY))
        raise ConfigError(f"unknown architecture {name!r}; known architectures: {known}") from None
    try:
        return cls(scale=scale, **cfg)
    except TypeError as exc:
        raise ConfigError(f"{name}.model: {exc}; check the keys of the '{name}' section in params.yaml") from None


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters (buffers such as EDSR's mean shift are not counted)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
