"""The training configuration: the ``train`` section of the parameters, checked.

Every key is optional; the defaults train a plain pixel-loss model with Adam and step decay. They
are the one set of defaults: the shared ``train`` section of the default profile's ``params.yaml``
spells the same values (a test keeps the two equal). A value out of range is a ``ConfigError``
naming ``train.<key>``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from superres.errors import ConfigError
from superres.losses.gan import GAN_KINDS
from superres.losses.perceptual import CRITERIA

SCHEDULERS = ("step", "multistep", "cosine")
CLIP_MODES = ("norm", "value", "adjustable")
AUTO_SWITCH = ("auto", True, False)


@dataclass(frozen=True)
class TrainConfig:
    iterations: int = 600
    batch_size: int = 16
    patch_size: int | None = None  # HR pixels of the training crops (null = the prepared patches whole)
    lr: float = 1e-3
    optimizer: str = "adam"  # adam | sgd
    momentum: float = 0.9  # sgd
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    scheduler: str = "step"  # step | multistep | cosine
    lr_step: int = 400  # step: multiply the lr by lr_gamma every lr_step iterations
    lr_gamma: float = 0.5
    milestones: tuple[int, ...] = ()  # multistep: multiply the lr by lr_gamma at each of these iterations
    lr_min: float = 0.0  # cosine: the lr reached at the last iteration
    loss: str = "l1"
    val_every: int = 300
    log_every: int = 10
    early_stopping: int | None = None
    ema: float | None = None  # decay of an exponential moving average of the weights (null = off)
    grad_clip: float | None = None
    clip_mode: str = "norm"  # norm | value | adjustable (VDSR: clip to grad_clip / current lr)
    amp: str = "auto"  # auto (bf16 autocast where the device computes bf16 natively) | bf16 | off
    channels_last: str | bool = "auto"  # auto (CUDA, and CPUs with oneDNN) | true | false
    compile: bool = False
    checkpoint_every: int | None = 200  # a resumable checkpoint every N iterations (with a checkpoint folder)
    augment: bool = True
    device: str = "auto"
    seed: int = 0
    # GAN training (SRGAN, ESRGAN): before gan_start, pixel loss only; from it, perceptual and adversarial too.
    gan_start: int | None = None
    pixel_weight: float = 1.0
    perceptual_weight: float = 0.0
    gan_weight: float = 0.0
    gan_type: str = "vanilla"
    relativistic: bool = False
    d_lr: float | None = None  # discriminator lr (null = lr)
    discriminator: Mapping[str, Any] = field(default_factory=lambda: {"name": "vgg", "n_feats": 64})
    perceptual_layer: str = "conv5_4"
    perceptual_before_activation: bool = True
    perceptual_criterion: str = "l1"  # l1 (ESRGAN) | mse (SRGAN)
    perceptual_weights: str | None = None
    # true: refuse to start without the VGG19 weights (paper profile); false: train without the
    # perceptual term when they cannot be had, and say so in the run and the report.
    perceptual_required: bool = False

    def __post_init__(self) -> None:
        for key in ("iterations", "batch_size", "lr_step", "val_every", "log_every"):
            _positive_int(self, key)
        for key in ("early_stopping", "checkpoint_every", "patch_size"):
            if getattr(self, key) is not None:
                _positive_int(self, key)
        if self.gan_start is not None and (not isinstance(self.gan_start, int) or self.gan_start < 1):
            raise ConfigError("train.gan_start is the first adversarial iteration; use null or >= 1, "
                              f"got {self.gan_start!r}")
        for key in ("lr", "lr_gamma"):
            if not _number(getattr(self, key)) or not getattr(self, key) > 0:
                raise ConfigError(f"train.{key} must be a positive number, got {getattr(self, key)!r}")
        for key in ("grad_clip", "d_lr"):
            value = getattr(self, key)
            if value is not None and (not _number(value) or not value > 0):
                raise ConfigError(f"train.{key} must be null or a positive number, got {value!r}")
        for key in ("momentum", "weight_decay", "lr_min", "pixel_weight", "perceptual_weight", "gan_weight"):
            if not _number(getattr(self, key)) or getattr(self, key) < 0:
                raise ConfigError(f"train.{key} must be a number >= 0, got {getattr(self, key)!r}")
        if self.ema is not None and (not _number(self.ema) or not 0 < self.ema < 1):
            raise ConfigError("train.ema is the decay of the weights' moving average; use null or a number in (0, 1), "
                              f"got {self.ema!r}")
        _choice(self, "optimizer", ("adam", "sgd"))
        _choice(self, "scheduler", SCHEDULERS)
        _choice(self, "clip_mode", CLIP_MODES)
        _choice(self, "amp", ("auto", "bf16", "off"))
        _choice(self, "channels_last", AUTO_SWITCH)
        _choice(self, "compile", (True, False))
        _choice(self, "gan_type", GAN_KINDS)
        _choice(self, "relativistic", (True, False))
        _choice(self, "perceptual_required", (True, False))
        _choice(self, "perceptual_criterion", tuple(CRITERIA))
        if self.scheduler == "multistep" and not self.milestones:
            raise ConfigError("train.milestones: the multistep scheduler needs a list of iterations, e.g. [500, 800]")
        milestones = list(self.milestones)
        if any(not isinstance(m, int) or m < 1 for m in milestones) or milestones != sorted(milestones):
            raise ConfigError(f"train.milestones must be increasing positive iterations, got {list(self.milestones)!r}")
        if not isinstance(self.discriminator, Mapping) or "name" not in self.discriminator:
            raise ConfigError(f"train.discriminator must be a mapping with a 'name' key, got {self.discriminator!r}")

    @classmethod
    def from_params(cls, params: dict[str, Any], **overrides: Any) -> TrainConfig:
        """Build from a params mapping; an unknown key is an error naming it."""
        known = {f.name for f in dataclasses.fields(cls)}
        merged = {**params, **overrides}
        unknown = sorted(set(merged) - known)
        if unknown:
            raise ConfigError(f"train: unknown key(s) {', '.join(unknown)}; known keys are {', '.join(sorted(known))}")
        for key in ("betas", "milestones"):
            if key in merged:
                if not isinstance(merged[key], (list, tuple)):
                    raise ConfigError(f"train.{key} must be a list, got {merged[key]!r}")
                merged[key] = tuple(merged[key])
        if isinstance(merged.get("discriminator"), Mapping):
            merged["discriminator"] = dict(merged["discriminator"])
        try:
            return cls(**merged)
        except TypeError as exc:
            raise ConfigError(f"train: {exc}") from None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _positive_int(config: TrainConfig, key: str) -> None:
    value = getattr(config, key)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfigError(f"train.{key} must be a positive integer, got {value!r}")


def _choice(config: TrainConfig, key: str, choices: tuple[Any, ...]) -> None:
    value = getattr(config, key)
    if not any(value is c or (isinstance(c, str) and value == c) for c in choices):
        names = ", ".join(str(c).lower() for c in choices)
        raise ConfigError(f"train.{key} must be one of {names}; got {value!r}")
