"""SRResNet: the generator of Ledig et al., "Photo-Realistic Single Image Super-Resolution Using a
Generative Adversarial Network" (CVPR 2017). SRGAN is this network trained adversarially.

A 9x9 head convolution to ``n_feats`` features with PReLU; ``n_blocks`` residual blocks
(conv-BN-PReLU-conv-BN plus the identity); a conv-BN closing the body, with a long skip from
the head; sub-pixel upsampling by x2 steps, each followed by PReLU (one x3 step for scale 3);
and a 9x9 tail convolution back to the image. The paper's network is ``n_blocks=16,
n_feats=64``. Batch normalisation makes eval mode (running statistics) differ from train mode.

Checked against the paper, BasicSR (``srresnet_arch.py``: its MSRResNet is a modified network without
batch normalisation, 3x3 head, LeakyReLU and a bilinear skip; ``arch_util.default_init_weights``) and
the PyTorch port with batch normalisation (Lornatang/SRGAN-PyTorch). The same structure as the paper
and that port: 9x9 head and tail, conv-BN-PReLU-conv-BN blocks, a conv-BN closing the body, PReLU
after each pixel shuffle, zero padding. Deliberate differences, each kept for the weights already
trained with this module:

- initialisation: the convolutions of the residual branches start as BasicSR's
  ``default_init_weights(..., 0.1)`` (Kaiming-normal weights scaled by 0.1, zero biases), the other
  convolutions from PyTorch's default; the port draws every convolution Kaiming-normal unscaled and
  sets every BN weight to 1, as here. The 0.1 does not make the blocks start close to the
  identity: in training mode each branch ends in a batch normalisation, which rescales the branch to
  unit variance whatever the scale of its weights (it shrinks the branch only in eval mode, before
  the running statistics are learned). A near-identity start would need the closing BN's weight
  scaled instead, which no reference does;
- biases: the convolutions before a batch normalisation keep their bias (the port has none there:
  the normalisation subtracts it, so it never learns), 2 * n_feats * n_blocks + n_feats idle
  parameters;
- PReLU: one slope per activation (PyTorch's default, as the port); the paper does not say;
- range: the paper scales the HR images to [-1, 1]; here the output is in [0, 1] like the input,
  which the last (linear) convolution absorbs (weights halved, bias halved plus 0.5).

Input: N x 3 x h x w in [0, 1]. Output: N x 3 x (scale*h) x (scale*w), not clipped (no final
activation). Scales 2, 3, 4 and 8.
"""

from __future__ import annotations

import torch
from torch import nn

from superres.models.layers import check_scale, conv3x3, scaled_kaiming_, subpixel_steps

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
        scaled_kaiming_([self.body[0], self.body[3]], init_scale)

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
