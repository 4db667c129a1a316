"""The model zoo: one explicit registry from architecture key to model class.

``create_model(name, scale=..., **cfg)`` builds a model from its key and configuration (the
``model`` section of the architecture's parameters). Adding an architecture is one module here
plus one entry in ``REGISTRY`` and one section in ``params.yaml``. Every model class lists the
scales it supports in ``SCALES`` and refuses others with a ConfigError naming ``prepare.scale``.
``srgan`` and ``esrgan`` are generators (SRResNet, RRDBNet) meant for adversarial training; their
discriminators are built by ``create_discriminator(name, **cfg)`` from ``DISCRIMINATORS``.

Every section also takes ``color``: ``rgb`` (the default) or ``y``, a one-channel network on the
luminance of the image, as the early papers trained theirs (:mod:`superres.models.ychannel`).
"""

from __future__ import annotations

import inspect
import typing
from typing import Any

from torch import nn

from superres.errors import ConfigError
from superres.models.autoencoder import Autoencoder
from superres.models.bicubic import Bicubic
from superres.models.discriminators import SRGANDiscriminator, VGGStyleDiscriminator
from superres.models.edsr import EDSR
from superres.models.fsrcnn import FSRCNN
from superres.models.imdn import IMDN
from superres.models.lapsrn import LapSRN
from superres.models.lapsrn_lai import LapSRNLai
from superres.models.rlfn import RLFN
from superres.models.rrdbnet import RRDBNet
from superres.models.span import SPAN
from superres.models.srcnn import SRCNN
from superres.models.srresnet import SRResNet
from superres.models.unet import UNet
from superres.models.vdsr import VDSR
from superres.models.ychannel import COLORS, YChannel

REGISTRY: dict[str, type[nn.Module]] = {
    "bicubic": Bicubic,
    "srcnn": SRCNN,
    "vdsr": VDSR,
    "edsr": EDSR,
    "unet": UNet,
    "lapsrn": LapSRN,
    "lapsrn_lai": LapSRNLai,  # the LapSRN of Lai et al. 2017 as released; `lapsrn` is the project's variant
    "autoencoder": Autoencoder,
    "srresnet": SRResNet,
    "srgan": SRResNet,  # SRGAN is the SRResNet generator trained adversarially
    "esrgan": RRDBNet,
    "fsrcnn": FSRCNN,
    "imdn": IMDN,
    "rlfn": RLFN,
    "span": SPAN,
}

DISCRIMINATORS: dict[str, type[nn.Module]] = {
    "srgan": SRGANDiscriminator,
    "vgg": VGGStyleDiscriminator,
}


def _check_arguments(cls: type[nn.Module], cfg: dict[str, Any], where: str) -> None:
    """Check ``cfg`` against the constructor of ``cls`` before building anything: every key is a
    constructor argument, every argument annotated ``int`` (counts and sizes: features, blocks,
    depths, kernels, channels) is a positive integer, and every one annotated ``float`` a
    number. ``where`` is the parameter section (``edsr.model``) that errors name."""
    signature = inspect.signature(cls.__init__)
    arguments = [p for p in signature.parameters.values() if p.name not in ("self", "scale")]
    if not any(p.kind is p.VAR_KEYWORD for p in arguments):
        known = [p.name for p in arguments if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
        unknown = sorted(set(cfg) - set(known))
        if unknown:
            raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}; the keys of {where} are "
                              f"{', '.join(known) or 'none'}")
    hints = typing.get_type_hints(cls.__init__)
    for key, value in cfg.items():
        if hints.get(key) is int and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ConfigError(f"{where}.{key} must be a positive integer, got {value!r}; change it in params.yaml")
        if hints.get(key) is float and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise ConfigError(f"{where}.{key} must be a number, got {value!r}; change it in params.yaml")


def create_model(name: str, *, scale: int, color: str = "rgb", **cfg: Any) -> nn.Module:
    """Build the architecture ``name`` for an upscaling factor ``scale`` from its config keys.

    ``color="y"`` builds it with one channel and wraps it in :class:`YChannel`. A wrong key or
    value is a ConfigError naming ``<name>.model.<key>``, found before the constructor runs where
    it can be (unknown keys, counts that are not positive integers); any other refusal of the
    constructor is reported with the values it was given."""
    try:
        cls = REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(REGISTRY))
        raise ConfigError(f"unknown architecture {name!r}; known architectures: {known}") from None
    if color not in COLORS:
        raise ConfigError(f"{name}.model.color must be one of {', '.join(COLORS)}, got {color!r}; "
                          "change it in params.yaml")
    if color == "y":
        if cfg.setdefault("channels", 1) != 1:
            raise ConfigError(f"{name}.model: color: y runs a one-channel network, but channels is "
                              f"{cfg['channels']!r}; remove channels or set it to 1")
        if name == "bicubic":
            raise ConfigError("bicubic.model.color: bicubic has no network to run on the luminance; remove color")
    _check_arguments(cls, cfg, f"{name}.model")
    try:
        model = cls(scale=scale, **cfg)
        return YChannel(model, scale) if color == "y" else model
    except ConfigError:
        raise
    except (TypeError, ValueError, RuntimeError) as exc:
        values = ", ".join(f"{key}={value!r}" for key, value in cfg.items()) or "no keys"
        raise ConfigError(f"{name}.model: the {cls.__name__} constructor refused {values} at scale {scale} "
                          f"({type(exc).__name__}: {exc}); check the values of {name}.model in params.yaml") from exc


def create_discriminator(name: str, **cfg: Any) -> nn.Module:
    """Build the discriminator ``name`` (a key of ``DISCRIMINATORS``) from its config keys."""
    try:
        cls = DISCRIMINATORS[name]
    except KeyError:
        known = ", ".join(sorted(DISCRIMINATORS))
        raise ConfigError(f"unknown discriminator {name!r}; known discriminators: {known}") from None
    try:
        return cls(**cfg)
    except TypeError as exc:
        raise ConfigError(f"discriminator {name!r}: {exc}; check the discriminator keys in params.yaml") from None


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters (buffers such as EDSR's mean shift are not counted)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
