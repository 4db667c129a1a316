"""SRResNet: the generator of Ledig et al., "Photo-Realistic Single Image Super-Resolution Using a
Generative Adversarial Network" (CVPR 2017). SRGAN is this network trained adversarially.

A 9x9 head convolution to ``n_feats`` features with PReLU; ``n_blocks`` residual blocks
(conv-BN-PReLU-conv-BN plus the identity); a conv-BN closing the body, with a long skip from
the head; sub-pixel upsampling by x2 steps, each followed by PReLU (one x3 step for scale 3);
and a 9x9 tail convolution back to the image. The paper's network is ``n_blocks=16,
n_feats=64``. Batch normalisation makes eval mode (running statistics) differ from train mode.

The convolutions of the residual branches start from Kaiming-normal weights scaled by 0.1 (as
BasicSR initialises SRResNet and RRDB): each block starts close to the identity, so a small
network at a high learning rate does not land on a different solution for every seed.

Input: N x 3 x h x w in [0, 1]. Output: N x 3 x (scale*h) x (scale*w), not clipped (no final
activation). Scales 2, 3, 4 and 8.
"""

from __future__ import annotations

import torch
from torch import nn

from superres.models.layers import check_scale, conv3x3, subpixel_steps

RESIDUAL_INIT_SCALE = 0.1  # BasicSR's scale of the residual branches' initial weights


class ResidualBlock(nn.Module):
    def __init__(self, n_feats: int, init_scale: float = RESIDUAL_INIT_SCALE) -> None:
        super().__init__()
        self.body = nn.Sequential(
            conv3x3(n_feats, n_feats),
            nn.BatchNorm2d(n_feats),
            nn.PReLU(),
            conv3x3(n_feats, n_feats),
            nn.BatchNorm2d(n_feats),
        )
        for conv in (self.body[0], self.body[3]):
            nn.init.kaiming_normal_(conv.weight)
            conv.weight.data.mul_(init_scale)
            nn.init.zeros_(conv.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class SRResNet(nn.Module):
    SCALES: tuple[int, ...] = (2, 3, 4, 8)

    def __init__(self, scale: int, channels: int = 3, n_blocks: int = 16, n_feats: int = 64) -> None:
        super().__init__()
        self.scale = check_scale("SRResNet", scale, self.SCALES)
        self.head = nn.Sequential(nn.Conv2d(channels, n_feats, 9, padding=4), nn.PReLU())
        self.body = nn.Sequential(
            *(ResidualBlock(n_feats) for _ in range(n_blocks)),
            conv3x3(n_feats, n_feats),
            nn.BatchNorm2d(n_feats),
        )
        self.upsample = nn.Sequential(*subpixel_steps(scale, n_feats, activation=nn.PReLU))
        self.tail = nn.Conv2d(n_feats, channels, 9, padding=4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.head(x)
        x = x + self.body(x)
        return self.tail(self.upsample(x))
