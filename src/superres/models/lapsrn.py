"""A Laplacian-pyramid residual network, after Lai, Huang, Ahuja, Yang, "Deep Laplacian Pyramid
Networks for Fast and Accurate Super-Resolution" (CVPR 2017), in the form this project specifies
rather than the paper's exact network.

How the design is read here:

1. Feature extraction at the low resolution: a 3x3 conv to ``n_feats_in`` channels, then two 3x3
   convs to ``n_feats`` channels, each followed by LeakyReLU 0.2.
2. ``n_blocks`` pyramid blocks in a chain. Block ``i`` works at one level of the pyramid, its
   factor ``f`` cycling through x2, x4, x8 (only the levels up to ``scale``: at x2 every block is
   x2, at x4 they alternate x2, x4). A block refines its input ``r`` with two 3x3 convs + LeakyReLU
   into ``h``, upsamples ``h`` by ``f`` with log2(f) stride-2 4x4 transposed convs (LeakyReLU
   between) into the block's upsampled map ``u``, and projects ``u`` back down to the low
   resolution with log2(f) stride-2 4x4 convs. What the block has not recovered, ``r - down(u)``,
   is the residual passed to the next block; the first block gets the extracted features.
3. Every block's upsampled map is brought to the output size (bilinear, when ``f < scale``); the
   maps are concatenated (``n_blocks * n_feats`` channels) and compressed by a 3x3 conv + LeakyReLU
   back to ``n_feats``; a 3x3 conv gives the image residual, which is added to the bicubic
   upsampling of the input (the global skip).

The specified network is ``n_feats_in=512, n_feats=128, n_blocks=12``; a small one (e.g. 32, 16,
3) trains on a CPU. It is meant to be trained with a DSSIM loss (a training parameter).

Input: N x 3 x h x w in [0, 1]. Output: N x 3 x (scale*h) x (scale*w), not clipped.
Scales 2, 4 and 8.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from superres.data.resize import imresize
from superres.models.layers import check_scale, conv3x3


def lrelu() -> nn.LeakyReLU:
    return nn.LeakyReLU(0.2, inplace=True)


def interleave(layers: list[nn.Module]) -> list[nn.Module]:
    """``[a, b, c]`` -> ``[a, lrelu, b, lrelu, c]``."""
    out: list[nn.Module] = []
    for layer in layers:
        out += [layer, lrelu()]
    return out[:-1]


class PyramidBlock(nn.Module):
    def __init__(self, n_feats: int, factor: int) -> None:
        super().__init__()
        steps = int(math.log2(factor))
        self.body = nn.Sequential(conv3x3(n_feats, n_feats), lrelu(), conv3x3(n_feats, n_feats), lrelu())
        self.up = nn.Sequential(*interleave([nn.ConvTranspose2d(n_feats, n_feats, 4, 2, 1) for _ in range(steps)]))
        self.down = nn.Sequential(*interleave([nn.Conv2d(n_feats, n_feats, 4, 2, 1) for _ in range(steps)]))

    def forward(self, r: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The upsampled map and the residual left for the next block."""
        u = self.up(self.body(r))
        return u, r - self.down(u)


class LapSRN(nn.Module):
    SCALES: tuple[int, ...] = (2, 4, 8)

    def __init__(
        self,
        scale: int,
        channels: int = 3,
        n_feats_in: int = 512,
        n_feats: int = 128,
        n_blocks: int = 12,
    ) -> None:
        super().__init__()
        self.scale = check_scale("LapSRN", scale, self.SCALES)
        levels = [2**k for k in range(1, int(math.log2(scale)) + 1)]
        self.factors = [levels[i % len(levels)] for i in range(n_blocks)]
        convs = [conv3x3(channels, n_feats_in), conv3x3(n_feats_in, n_feats), conv3x3(n_feats, n_feats)]
        self.features = nn.Sequential(*interleave(convs), lrelu())
        self.blocks = nn.ModuleList(PyramidBlock(n_feats, f) for f in self.factors)
        self.fuse = nn.Sequential(conv3x3(n_blocks * n_feats, n_feats), lrelu(), conv3x3(n_feats, channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r = self.features(x)
        maps = []
        for block, factor in zip(self.blocks, self.factors, strict=True):
            u, r = block(r)
            if factor != self.scale:
                u = F.interpolate(u, scale_factor=self.scale // factor, mode="bilinear", align_corners=False)
            maps.append(u)
        return imresize(x, scale=self.scale) + self.fuse(torch.cat(maps, dim=1))
