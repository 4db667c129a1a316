"""The training configuration: the ``train`` section of the parameters, checked."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from superres.errors import ConfigError


@dataclass(frozen=True)
class TrainConfig:
    iterations: int = 1000
    batch_size: int = 16
    lr: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    lr_step: int = 200_000
    lr_gamma: float = 0.5
    loss: str = "l1"
    val_every: int = 100
    log_every: int = 10
    early_stopping: int | None = None
    augment: bool = True
    num_workers: int = 0
    device: str = "auto"
    seed: int = 0

    def __post_init__(self) -> None:
        for key in ("iterations", "batch_size", "lr_step", "val_every", "log_every"):
            if int(getattr(self, key)) < 1:
                raise ConfigError(f"train.{key} must be a positive integer, got {getattr(self, key)!r}")
        if not self.lr > 0:
            raise ConfigError(f"train.lr must be positive, got {self.lr!r}")
        if self.early_stopping is not None and self.early_stopping < 1:
            raise ConfigError("train.early_stopping is the number of validations without improvement; use null or >= 1")

    @classmethod
    def from_params(cls, params: dict[str, Any], **overrides: Any) -> TrainConfig:
        """Build from a params mapping; an unknown key is an error naming it."""
        known = {f.name for f in dataclasses.fields(cls)}
        merged = {**params, **overrides}
        unknown = sorted(set(merged) - known)
        if unknown:
            raise ConfigError(f"train: unknown key(s) {', '.join(unknown)}; known keys are {', '.join(sorted(known))}")
        if "betas" in merged:
            merged["betas"] = tuple(merged["betas"])
        try:
            return cls(**merged)
        except TypeError as exc:
            raise ConfigError(f"train: {exc}") from None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
