"""EDSR: Lim, Son, Kim, Nah, Lee, "Enhanced Deep Residual Networks for Single Image
Super-Resolution" (CVPRW 2017).

Residual blocks without batch normalisation (conv-ReLU-conv, output scaled by ``res_scale``),
a long skip over the body, and sub-pixel upsampling. The baseline is ``n_resblocks=16,
n_feats=64, res_scale=1``; the full model ``n_resblocks=32, n_feats=256, res_scale=0.1``.
The DIV2K RGB mean is subtracted at the input and added back at the output (a fixed buffer,
not a parameter).

Checked against the authors' code (EDSR-PyTorch, ``src/model/edsr.py`` and ``common.py``): the same
head, residual blocks (conv-ReLU-conv, the branch multiplied by ``res_scale``), closing conv and long
skip, the same upsampler (conv to 4 (9) x ``n_feats`` + pixel shuffle per x2 (x3) step, no
activation) and tail; every convolution has a bias and zero padding of 1; the initialisation is
PyTorch's default in both, and the parameter counts are the reference ones. The mean shift: the
authors' ``MeanShift`` is a frozen 1x1 convolution subtracting ``rgb_range * mean`` from images in
[0, ``rgb_range``] (255 for their models); here the images are in [0, 1] and the same mean is
subtracted as a buffer, so it is neither a parameter nor in the state dict. Every layer scales with
its input, so a network of theirs (on [0, 255]) is this one with its biases divided by 255.
With ``channels=1`` the red channel's mean is used (the authors' code is RGB only).

Input: N x 3 x h x w in [0, 1]. Output: N x 3 x (scale*h) x (scale*w). Scales 2, 3, 4 and 8.
"""

from __future__ import annotations

import torch
from torch import nn

from superres.models.layers import check_scale, conv3x3, subpixel_steps

DIV2K_RGB_MEAN = (0.4488, 0.4371, 0.4040)


class ResBlock(nn.Module):
    def __init__(self, n_feats: int, res_scale: float) -> None:
        super().__init__()
        self.body = nn.Sequential(conv3x3(n_feats, n_feats), nn.ReLU(inplace=True), conv3x3(n_feats, n_feats))
        self.res_scale = res_scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x) * self.res_scale


class Upsampler(nn.Sequential):
    """Sub-pixel convolution: log2(scale) x2 steps for powers of two, one x3 step for 3."""

    def __init__(self, scale: int, n_feats: int) -> None:
        super().__init__(*subpixel_steps(check_scale("EDSR", scale, EDSR.SCALES), n_feats))


class EDSR(nn.Module):
    SCALES: tuple[int, ...] = (2, 3, 4, 8)

    def __init__(
        self,
        scale: int,
        n_resblocks: int = 16,
        n_feats: int = 64,
        res_scale: float = 1.0,
        channels: int = 3,
    ) -> None:
        super().__init__()
        self.scale = check_scale("EDSR", scale, self.SCALES)
        self.register_buffer("mean", torch.tensor(DIV2K_RGB_MEAN[:channels]).view(1, channels, 1, 1), persistent=False)
        self.head = conv3x3(channels, n_feats)
        blocks = [ResBlock(n_feats, res_scale) for _ in range(n_resblocks)]
        self.body = nn.Sequential(*blocks, conv3x3(n_feats, n_feats))
        self.tail = nn.Sequential(Upsampler(scale, n_feats), conv3x3(n_feats, channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.head(x - self.mean)
        x = x + self.body(x)
        return self.tail(x) + self.mean
