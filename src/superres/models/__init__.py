"""The model zoo: one explicit registry from architecture key to model class.

``create_model(name, scale=..., **cfg)`` builds a model from its key and configuration (the
``model`` section of the architecture's parameters). Adding an architecture is one module here
plus one entry in ``REGISTRY`` and one section in ``params.yaml``. Every model class lists the
scales it supports in ``SCALES`` and refuses others with a ConfigError naming ``prepare.scale``.
``srgan`` and ``esrgan`` are generators (SRResNet, RRDBNet) meant for adversarial training; their
discriminators are built by ``create_discriminator(name, **cfg)`` from ``DISCRIMINATORS``.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from superres.errors import ConfigError
from superres.models.autoencoder import Autoencoder
from superres.models.bicubic import Bicubic
from superres.models.discriminators import SRGANDiscriminator, VGGStyleDiscriminator
from superres.models.edsr import EDSR
from superres.models.lapsrn import LapSRN
from superres.models.rrdbnet import RRDBNet
from superres.models.srcnn import SRCNN
from superres.models.srresnet import SRResNet
from superres.models.unet import UNet
from superres.models.vdsr import VDSR

REGISTRY: dict[str, type[nn.Module]] = {
    "bicubic": Bicubic,
    "srcnn": SRCNN,
    "vdsr": VDSR,
    "edsr": EDSR,
    "unet": UNet,
    "lapsrn": LapSRN,
    "autoencoder": Autoencoder,
    "srresnet": SRResNet,
    "srgan": SRResNet,  # SRGAN is the SRResNet generator trained adversarially
    "esrgan": RRDBNet,
}

DISCRIMINATORS: dict[str, type[nn.Module]] = {
    "srgan": SRGANDiscriminator,
    "vgg": VGGStyleDiscriminator,
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
