"""Pixel losses by name. Every loss takes (prediction, target) NCHW tensors in [0, 1]."""

from __future__ import annotations

from torch import nn

from superres.errors import ConfigError

LOSSES: dict[str, type[nn.Module]] = {
    "l1": nn.L1Loss,
    "mse": nn.MSELoss,
}


def build_loss(name: str) -> nn.Module:
    try:
        return LOSSES[name]()
    except KeyError:
        raise ConfigError(f"train.loss: unknown loss {name!r}; choose one of {', '.join(LOSSES)}") from None
