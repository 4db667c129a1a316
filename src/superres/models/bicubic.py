"""Bicubic interpolation: the baseline every SR paper reports, with no weights.

Input: N x C x h x w in [0, 1]. Output: N x C x (scale*h) x (scale*w), MATLAB-compatible
bicubic (see :func:`superres.data.resize.imresize`), not clipped. Any integer scale.
"""

from __future__ import annotations

import torch
from torch import nn

from superres.data.resize import imresize


class Bicubic(nn.Module):
    def __init__(self, scale: int) -> None:
        super().__init__()
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return imresize(x, scale=self.scale)
