"""VDSR: Kim, Lee, Lee, "Accurate Image Super-Resolution Using Very Deep Convolutional Networks"
(CVPR 2016).

A plain stack of ``depth`` 3x3 convolutions (``n_feats`` features, ReLU between them; the first
takes the image, the last returns one) that predicts the residual between the bicubic-upsampled
image and the high-resolution one: ``output = bicubic(x) + body(bicubic(x))``. The paper's network
is ``depth=20, n_feats=64``; its adjustable gradient clipping belongs to the training loop.

Input: N x C x h x w in [0, 1], the low-resolution image; the network upsamples it with the
project's MATLAB-compatible bicubic first and works at the output size.
Output: N x C x (scale*h) x (scale*w), not clipped. Any integer scale >= 2 (one network per scale
here; the paper trains one network for several).
"""

from __future__ import annotations

import torch
from torch import nn

from superres.data.resize import imresize
from superres.models.layers import check_scale, conv3x3


class VDSR(nn.Module):
    SCALES: tuple[int, ...] = (2, 3, 4, 8)  # the usual ones: any integer scale >= 2 works

    def __init__(self, scale: int, channels: int = 3, depth: int = 20, n_feats: int = 64) -> None:
        super().__init__()
        self.scale = check_scale("VDSR", scale, self.SCALES, any_integer=True)
        layers: list[nn.Module] = [conv3x3(channels, n_feats), nn.ReLU(inplace=True)]
        for _ in range(depth - 2):
            layers += [conv3x3(n_feats, n_feats), nn.ReLU(inplace=True)]
        layers.append(conv3x3(n_feats, channels))
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = imresize(x, scale=self.scale)
        return x + self.body(x)
