"""RRDBNet: the generator of ESRGAN, Wang et al., "ESRGAN: Enhanced Super-Resolution Generative
Adversarial Networks" (ECCV Workshops 2018).

``n_blocks`` residual-in-residual dense blocks (RRDB) at the low resolution, no batch
normalisation. A dense block has five 3x3 convolutions, each seeing the concatenation of the
block input and every earlier output (``growth`` channels each, LeakyReLU 0.2), and returns
``x + 0.2 * conv5``; an RRDB chains three of them and again returns ``x + 0.2 * body(x)``. A conv
closes the trunk, with a long skip from the head. Upsampling is log2(scale) steps of x2
nearest-neighbour interpolation + 3x3 conv + LeakyReLU 0.2, then a 3x3 conv + LeakyReLU and the
final conv. The paper's network is ``n_blocks=23, n_feats=64, growth=32`` (16,697,987 parameters
at x4). The state-dict names follow the ones the ESRGAN authors published (``conv_first``,
``body.<i>.rdb<j>.conv<k>``, ``conv_body``, ``conv_up<i>``, ``conv_hr``, ``conv_last``).

Checked against the paper and BasicSR's ``rrdbnet_arch.py`` (the authors' code): the same blocks,
residual scaling (0.2), biases on every convolution, zero padding, nearest-neighbour upsampling and
LeakyReLU 0.2. Initialisation as both ("smaller initialisation", one of the paper's changes): the
convolutions of every dense block start from Kaiming-normal weights scaled by 0.1 and zero biases
(BasicSR's ``default_init_weights(..., 0.1)``); the other convolutions keep PyTorch's default, as
in BasicSR. Deliberate difference: other scales than the paper's x4 take log2(scale) upsampling
steps; BasicSR's x2 model (Real-ESRGAN's) instead pixel-unshuffles the input by 2 and keeps the
two x2 steps, so its x2 weights do not fit this module.

Input: N x 3 x h x w in [0, 1]. Output: N x 3 x (scale*h) x (scale*w), not clipped.
Scales 2, 4 and 8.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from superres.models.layers import check_scale, conv3x3, scaled_kaiming_

RESIDUAL_SCALE = 0.2
INIT_SCALE = 0.1  # the dense blocks' Kaiming-normal start, scaled (ESRGAN's smaller initialisation)


def lrelu(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, 0.2)


class ResidualDenseBlock(nn.Module):
    def __init__(self, n_feats: int, growth: int) -> None:
        super().__init__()
        for k in range(1, 5):
            self.add_module(f"conv{k}", conv3x3(n_feats + (k - 1) * growth, growth))
        self.conv5 = conv3x3(n_feats + 4 * growth, n_feats)
        scaled_kaiming_([getattr(self, f"conv{k}") for k in range(1, 6)], INIT_SCALE)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = [x]
        for k in range(1, 5):
            features.append(lrelu(getattr(self, f"conv{k}")(torch.cat(features, dim=1))))
        return x + RESIDUAL_SCALE * self.conv5(torch.cat(features, dim=1))


class RRDB(nn.Module):
    def __init__(self, n_feats: int, growth: int) -> None:
        super().__init__()
        self.rdb1 = ResidualDenseBlock(n_feats, growth)
        self.rdb2 = ResidualDenseBlock(n_feats, growth)
        self.rdb3 = ResidualDenseBlock(n_feats, growth)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + RESIDUAL_SCALE * self.rdb3(self.rdb2(self.rdb1(x)))


class RRDBNet(nn.Module):
    SCALES: tuple[int, ...] = (2, 4, 8)

    def __init__(self, scale: int, channels: int = 3, n_blocks: int = 23, n_feats: int = 64, growth: int = 32) -> None:
        super().__init__()
        self.scale = check_scale("ESRGAN (RRDBNet)", scale, self.SCALES)
        self.n_up = int(math.log2(scale))
        self.conv_first = conv3x3(channels, n_feats)
        self.body = nn.Sequential(*(RRDB(n_feats, growth) for _ in range(n_blocks)))
        self.conv_body = conv3x3(n_feats, n_feats)
        for i in range(1, self.n_up + 1):
            self.add_module(f"conv_up{i}", conv3x3(n_feats, n_feats))
        self.conv_hr = conv3x3(n_feats, n_feats)
        self.conv_last = conv3x3(n_feats, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat = self.conv_first(x)
        feat = feat + self.conv_body(self.body(feat))
        for i in range(1, self.n_up + 1):
            feat = lrelu(getattr(self, f"conv_up{i}")(F.interpolate(feat, scale_factor=2, mode="nearest")))
        return self.conv_last(lrelu(self.conv_hr(feat)))
