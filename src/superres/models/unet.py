"""U-Net for super-resolution, after Ronneberger, Fischer, Brox, "U-Net: Convolutional Networks for
Biomedical Image Segmentation" (MICCAI 2015), applied to the bicubic-upsampled image.

The image is upsampled with the project's MATLAB-compatible bicubic, mapped from [0, 1] to
[-1, 1], and padded (reflect, or replicate when the image is too small to reflect) to a multiple
of ``2**depth``. A 3x3 head conv gives ``n_feats`` features; ``depth`` downsampling blocks each
halve the size with a stride-2 3x3 conv, then a 3x3 conv, both followed by BatchNorm and
LeakyReLU 0.2; the width doubles at every level up to ``8 * n_feats``. Each upsampling block
doubles the size by sub-pixel convolution (3x3 conv to 4x the target width, ``PixelShuffle(2)``),
concatenates the skip of the same level from the encoder and fuses them with a 3x3 conv + BN +
LeakyReLU. A 3x3 tail conv predicts a residual that is added to the bicubic input (a global
residual), the padding is cropped away and the result mapped back to [0, 1]. The tail starts at
zero, so an untrained network is exactly bicubic and training only learns the correction: with
PyTorch's default initialisation the random residual (behind batch norm) costs several dB at the
start, and the default profile's short schedule recovered from it on 1 seed of 5.

Input: N x C x h x w in [0, 1], the low-resolution image, any size. Output: N x C x (scale*h) x
(scale*w), not clipped. Any integer scale >= 2. Batch normalisation makes eval mode (running
statistics) differ from train mode.
"""

from __future__ import annotations

import torch
from torch import nn

from superres.data.resize import imresize
from superres.models.layers import check_scale, conv3x3, crop_to, from_symmetric, pad_to_multiple, to_symmetric


def conv_bn_lrelu(in_channels: int, out_channels: int, stride: int = 1) -> list[nn.Module]:
    return [
        nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.LeakyReLU(0.2, inplace=True),
    ]


class Down(nn.Sequential):
    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(
            *conv_bn_lrelu(in_channels, out_channels, stride=2), *conv_bn_lrelu(out_channels, out_channels)
        )


class Up(nn.Module):
    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.upsample = nn.Sequential(conv3x3(in_channels, 4 * out_channels), nn.PixelShuffle(2))
        self.fuse = nn.Sequential(*conv_bn_lrelu(2 * out_channels, out_channels))

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.fuse(torch.cat([self.upsample(x), skip], dim=1))


class UNet(nn.Module):
    SCALES: tuple[int, ...] = (2, 3, 4, 8)  # the usual ones: any integer scale >= 2 works

    def __init__(self, scale: int, channels: int = 3, n_feats: int = 64, depth: int = 4) -> None:
        super().__init__()
        self.scale = check_scale("UNet", scale, self.SCALES, any_integer=True)
        self.depth = depth
        widths = [n_feats * 2 ** min(level, 3) for level in range(depth + 1)]
        self.head = nn.Sequential(conv3x3(channels, n_feats), nn.LeakyReLU(0.2, inplace=True))
        self.down = nn.ModuleList(Down(widths[i], widths[i + 1]) for i in range(depth))
        self.up = nn.ModuleList(Up(widths[i + 1], widths[i]) for i in reversed(range(depth)))
        self.tail = conv3x3(n_feats, channels)
        nn.init.zeros_(self.tail.weight)
        nn.init.zeros_(self.tail.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        upsampled = to_symmetric(imresize(x, scale=self.scale))
        padded, size = pad_to_multiple(upsampled, 2**self.depth)
        feat = self.head(padded)
        skips = []
        for down in self.down:
            skips.append(feat)
            feat = down(feat)
        for up, skip in zip(self.up, reversed(skips), strict=True):
            feat = up(feat, skip)
        return from_symmetric(upsampled + crop_to(self.tail(feat), size))
