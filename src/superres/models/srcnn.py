"""SRCNN: Dong, Loy, He, Tang, "Image Super-Resolution Using Deep Convolutional Networks" (2014).

Three convolutions: patch extraction (``k1`` x ``k1``, ``f1`` filters), non-linear mapping
(``k2`` x ``k2``, ``f2`` filters) and reconstruction (``k3`` x ``k3``). The paper's 9-5-5 network is
``k1=9, k2=5, k3=5`` with 64 and 32 filters; its 9-1-5 variant is ``k2=1``.

Input: N x C x h x w in [0, 1], the low-resolution image; the network upsamples it with bicubic
interpolation first and works at the output size (zero padding keeps the size).
Output: N x C x (scale*h) x (scale*w). Any integer scale >= 2.
"""

from __future__ import annotations

import torch
from torch import nn

from superres.data.resize import imresize
from superres.models.layers import check_scale


class SRCNN(nn.Module):
    SCALES: tuple[int, ...] = (2, 3, 4, 8)  # the usual ones: any integer scale >= 2 works

    def __init__(
        self,
        scale: int,
        channels: int = 3,
        f1: int = 64,
        f2: int = 32,
        k1: int = 9,
        k2: int = 5,
        k3: int = 5,
    ) -> None:
        super().__init__()
        self.scale = check_scale("SRCNN", scale, self.SCALES, any_integer=True)
        self.body = nn.Sequential(
            nn.Conv2d(channels, f1, k1, padding=k1 // 2),
            nn.ReLU(inplace=True),
            nn.Conv2d(f1, f2, k2, padding=k2 // 2),
            nn.ReLU(inplace=True),
            nn.Conv2d(f2, channels, k3, padding=k3 // 2),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(imresize(x, scale=self.scale))
