"""LapSRN as its authors built it: Lai, Huang, Ahuja, Yang, "Deep Laplacian Pyramid Networks for Fast
and Accurate Super-Resolution" (CVPR 2017), the network of their MatConvNet release.

The key ``lapsrn`` holds a different Laplacian-pyramid network (see :mod:`superres.models.lapsrn`);
this one, ``lapsrn_lai``, is the paper's, and loads the authors' published weights.

The pyramid has one level per factor of 2 (one at x2, two at x4, three at x8). From the low
resolution:

1. A 3x3 convolution to ``n_feats`` features + LeakyReLU 0.2.
2. Each level, coarsest first: ``depth`` 3x3 convolutions + LeakyReLU; a 3x3 transposed convolution
   of stride 2 + LeakyReLU doubles the feature map (MatConvNet crops the last row and column of its
   ``2h + 1`` output); a 3x3 convolution of those features gives the level's residual image. The next
   level continues from the doubled features (the feature branch).
3. The image branch: each level upsamples the previous level's image (the input at the first) with
   a learnt 4x4 transposed convolution of stride 2 (initialised as bilinear upsampling, as in the paper) and adds the
   level's residual. The last level's image is the output.

Each level has its own weights, as in the paper; sharing them across levels, and recursive blocks,
came with MS-LapSRN (TPAMI 2018). The paper trains every level against the HR image downscaled to
that level with a Charbonnier loss; trained here, only the final output is supervised, with the loss
of ``train.loss``. The paper's network is ``n_feats=64, depth=10``; its x8 release uses ``depth=5``.

Input: N x C x h x w in [0, 1] (the authors' weights: the Y channel, ``color: y``). Output:
N x C x (scale*h) x (scale*w), not clipped. Scales 2, 4 and 8.
"""

from __future__ import annotations

import math
import re
from typing import Any

import torch
from torch import nn

from superres.errors import WeightsError
from superres.models.layers import check_scale, conv3x3


def lrelu() -> nn.LeakyReLU:
    return nn.LeakyReLU(0.2, inplace=True)


class Level(nn.Module):
    """One level of the pyramid: features in at size s, features and residual image out at 2s."""

    def __init__(self, channels: int, n_feats: int, depth: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for _ in range(depth):
            layers += [conv3x3(n_feats, n_feats), lrelu()]
        self.body = nn.Sequential(*layers)
        self.up = nn.ConvTranspose2d(n_feats, n_feats, 3, stride=2)
        self.residual = conv3x3(n_feats, channels)
        self.image_up = nn.ConvTranspose2d(channels, channels, 4, stride=2, padding=1, bias=False)
        with torch.no_grad():  # as in the paper: the image branch starts as bilinear upsampling, channel by channel
            taps = torch.tensor([0.25, 0.75, 0.75, 0.25])
            self.image_up.weight.zero_()
            for c in range(channels):
                self.image_up.weight[c, c] = torch.outer(taps, taps)

    def forward(self, features: torch.Tensor, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = torch.nn.functional.leaky_relu(self.up(self.body(features))[..., :-1, :-1], 0.2)
        return features, self.image_up(image) + self.residual(features)


class LapSRNLai(nn.Module):
    SCALES: tuple[int, ...] = (2, 4, 8)

    def __init__(self, scale: int, channels: int = 3, n_feats: int = 64, depth: int = 10) -> None:
        super().__init__()
        self.scale = check_scale("LapSRN (Lai et al.)", scale, self.SCALES)
        self.head = nn.Sequential(conv3x3(channels, n_feats), lrelu())
        self.levels = nn.ModuleList(Level(channels, n_feats, depth) for _ in range(int(math.log2(scale))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features, image = self.head(x), x
        for level in self.levels:
            features, image = level(features, image)
        return image


# The authors' MatConvNet parameters -> this module's. Their levels are numbered from the finest
# (level1) up, so level L of an x2^L network is this module's levels.0.
_CONV = re.compile(r"^level(\d+)_conv(\d+)_([fb])$")
_OTHER = re.compile(r"^level(\d+)_(upconv|residual_conv|img_up)_([fb])$")
_PARTS = {"upconv": "up", "residual_conv": "residual", "img_up": "image_up"}
_TENSOR = {"f": "weight", "b": "bias"}


def from_official(state: dict[str, torch.Tensor], scale: int) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """The model config and state dict of :class:`LapSRNLai` from the authors' parameters (their
    MatConvNet names, filters already in PyTorch's layout; see :mod:`superres.models.matconvnet`)."""
    levels = int(math.log2(scale))
    converted: dict[str, torch.Tensor] = {}
    depth = 0
    unknown = []
    for name, tensor in state.items():
        if name in ("input_conv_f", "input_conv_b"):
            converted[f"head.0.{_TENSOR[name[-1]]}"] = tensor
            continue
        conv, other = _CONV.match(name), _OTHER.match(name)
        match = conv or other
        if match is None or not 1 <= int(match[1]) <= levels:
            unknown.append(name)
            continue
        index = levels - int(match[1])
        if conv:
            depth = max(depth, int(conv[2]))
            converted[f"levels.{index}.body.{2 * (int(conv[2]) - 1)}.{_TENSOR[conv[3]]}"] = tensor
        else:
            converted[f"levels.{index}.{_PARTS[other[2]]}.{_TENSOR[other[3]]}"] = tensor
    if unknown:
        raise WeightsError(f"parameters not in the LapSRN of Lai et al. at x{scale}: {', '.join(sorted(unknown))}")
    weight = converted.get("head.0.weight")
    if weight is None:
        raise WeightsError("the LapSRN parameters have no input_conv_f")
    config = {"channels": int(weight.shape[1]), "n_feats": int(weight.shape[0]), "depth": depth}
    if config["channels"] == 1:
        config["color"] = "y"
    return config, converted
