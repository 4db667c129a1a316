"""Losses: pixel losses by name (``build_loss``), the VGG19 perceptual loss and the GAN losses."""

from __future__ import annotations

from superres.losses.gan import GAN_KINDS, GANLoss
from superres.losses.perceptual import (
    VGG19_FILENAME,
    VGG19_LAYERS,
    VGG19_URL,
    PerceptualLoss,
    vgg19_features,
    vgg19_weights,
)
from superres.losses.pixel import LOSSES, DSSIMLoss, build_loss

__all__ = [
    "GAN_KINDS",
    "LOSSES",
    "VGG19_FILENAME",
    "VGG19_LAYERS",
    "VGG19_URL",
    "DSSIMLoss",
    "GANLoss",
    "PerceptualLoss",
    "build_loss",
    "vgg19_features",
    "vgg19_weights",
]
