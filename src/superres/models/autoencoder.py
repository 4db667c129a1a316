"""A convolutional encoder-decoder (autoencoder) on the bicubic-upsampled image: the simplest
"compress then reconstruct" baseline, a U-Net without skip connections, in the spirit of
Mao, Shen, Yang, "Image Restoration Using Very Deep Convolutional Encoder-Decoder Networks"
(NIPS 2016) but with strided rather than pooled downsampling.

The image is upsampled with the project's MATLAB-compatible bicubic and padded (reflect, or
replicate when too small) to a multiple of ``2**depth``. A 3x3 head conv gives ``n_feats``
features; the encoder has ``depth`` stride-2 3x3 convs with ReLU, doubling the width at each step
up to ``8 * n_feats``; the decoder mirrors it with stride-2 4x4 transposed convs with ReLU; a 3x3
tail conv predicts a residual added to the bicubic input (a global residual), and the padding is
cropped away. No batch normalisation.

Input: N x C x h x w in [0, 1], the low-resolution image, any size. Output: N x C x (scale*h) x
(scale*w), not clipped. Any integer scale >= 2.
"""

from __future__ import annotations

import torch
from torch import nn

from superres.data.resize import imresize
from superres.models.layers import check_scale, conv3x3, crop_to, pad_to_multiple


class Autoencoder(nn.Module):
    SCALES: tuple[int, ...] = (2, 3, 4, 8)  # the usual ones: any integer scale >= 2 works

    def __init__(self, scale: int, channels: int = 3, n_feats: int = 64, depth: int = 3) -> None:
        super().__init__()
        self.scale = check_scale("autoencoder", scale, self.SCALES, any_integer=True)
        self.depth = depth
        widths = [n_feats * 2 ** min(level, 3) for level in range(depth + 1)]
        encoder: list[nn.Module] = [conv3x3(channels, n_feats), nn.ReLU(inplace=True)]
        for i in range(depth):
            encoder += [nn.Conv2d(widths[i], widths[i + 1], 3, stride=2, padding=1), nn.ReLU(inplace=True)]
        decoder: list[nn.Module] = []
        for i in reversed(range(depth)):
            decoder += [nn.ConvTranspose2d(widths[i + 1], widths[i], 4, stride=2, padding=1), nn.ReLU(inplace=True)]
        self.encoder = nn.Sequential(*encoder)
        self.decoder = nn.Sequential(*decoder, conv3x3(n_feats, channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        upsampled = imresize(x, scale=self.scale)
        padded, size = pad_to_multiple(upsampled, 2**self.depth)
        return upsampled + crop_to(self.decoder(self.encoder(padded)), size)
