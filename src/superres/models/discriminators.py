"""Discriminators for adversarial training (SRGAN, ESRGAN): they tell HR patches from SR ones.

- :class:`SRGANDiscriminator`, after Ledig et al. (CVPR 2017): eight 3x3 convs, ``n_feats`` to
  ``8 * n_feats`` channels (64 -> 512 in the paper), stride 2 in every other one, BatchNorm on all
  but the first, LeakyReLU 0.2; then a dense layer of 1024 units, LeakyReLU 0.2 and a dense layer
  to one logit.
- :class:`VGGStyleDiscriminator`, after ESRGAN (Wang et al., ECCV Workshops 2018): five pairs of
  a 3x3 conv and a stride-2 4x4 conv, BatchNorm on all but the first conv, LeakyReLU 0.2,
  ``n_feats`` up to ``8 * n_feats`` channels (64, 128, 256, 512, 512); then a linear layer of
  100 units, LeakyReLU 0.2 and a linear layer to one logit.

Both originals flatten a fixed-size map (96 and 128 pixel patches); here an
``AdaptiveAvgPool2d(1)`` (global average pooling) sits between the convs and the dense layers,
so any patch of at least 32 x 32 pixels works and the dense layers see ``8 * n_feats`` features.

Input: N x 3 x H x W in [0, 1], H and W >= 32 (mapped to [-1, 1] inside). Output: raw logits,
N x 1 (no sigmoid: use ``BCEWithLogitsLoss`` or a relativistic loss on them).
"""

from __future__ import annotations

import torch
from torch import nn

from superres.models.layers import to_symmetric


def conv_block(in_channels: int, out_channels: int, kernel: int, stride: int, norm: bool) -> list[nn.Module]:
    layers: list[nn.Module] = [nn.Conv2d(in_channels, out_channels, kernel, stride, padding=1, bias=not norm)]
    if norm:
        layers.append(nn.BatchNorm2d(out_channels))
    layers.append(nn.LeakyReLU(0.2, inplace=True))
    return layers


def classifier(in_features: int, hidden: int) -> nn.Sequential:
    """Global average pooling, then dense -> LeakyReLU 0.2 -> dense to one logit."""
    return nn.Sequential(
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(in_features, hidden),
        nn.LeakyReLU(0.2, inplace=True),
        nn.Linear(hidden, 1),
    )


class SRGANDiscriminator(nn.Module):
    def __init__(self, channels: int = 3, n_feats: int = 64, hidden: int = 1024) -> None:
        super().__init__()
        widths = [n_feats, n_feats, 2 * n_feats, 2 * n_feats, 4 * n_feats, 4 * n_feats, 8 * n_feats, 8 * n_feats]
        layers: list[nn.Module] = []
        in_channels = channels
        for i, width in enumerate(widths):
            layers += conv_block(in_channels, width, 3, stride=1 + i % 2, norm=i > 0)
            in_channels = width
        self.features = nn.Sequential(*layers)
        self.classifier = classifier(in_channels, hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(to_symmetric(x)))


class VGGStyleDiscriminator(nn.Module):
    def __init__(self, channels: int = 3, n_feats: int = 64, hidden: int = 100) -> None:
        super().__init__()
        widths = [n_feats, 2 * n_feats, 4 * n_feats, 8 * n_feats, 8 * n_feats]
        layers: list[nn.Module] = []
        in_channels = channels
        for i, width in enumerate(widths):
            layers += conv_block(in_channels, width, 3, stride=1, norm=i > 0)
            layers += conv_block(width, width, 4, stride=2, norm=True)
            in_channels = width
        self.features = nn.Sequential(*layers)
        self.classifier = classifier(in_channels, hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(to_symmetric(x)))
