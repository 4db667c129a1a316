"""Bicubic interpolation: the baseline every SR paper reports, with no weights.

Input: N x C x h x w in [0, 1]. Output: N x C x (scale*h) x (scale*w), MATLAB-compatible
bicubic (see :func:`superres.data.resize.imresize`), not clipped. Any integer scale >= 2.
"""

from __future__ import annotations

import torch
from torch import nn

from superres.data.resize import imresize
from superres.models.layers import check_scale


class Bicubic(nn.Module):
    SCALES: tuple[int, ...] = (2, 3, 4, 8)  # the usual ones: any integer scale >= 2 works

    def __init__(self, scale: int) -> None:
        super().__init__()
        self.scale = check_scale("bicubic", scale, self.SCALES, any_integer=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return imresize(x, scale=self.scale)
