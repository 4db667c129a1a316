"""RLFN: Kong, Li, Liu, Xu, Li, Liu, Zhang, "Residual Local Feature Network for Efficient
Super-Resolution" (CVPR Workshops 2022; the winner of the NTIRE 2022 efficient SR challenge's
runtime track).

A 3x3 convolution to ``n_feats`` features, ``n_blocks`` residual local feature blocks (RLFB), a
3x3 convolution, the global residual (the features of the first convolution added back), and one
sub-pixel step (a 3x3 convolution to ``channels * scale^2`` maps and a pixel shuffle).

An RLFB is three 3x3 convolutions (``n_feats`` -> ``mid_feats`` -> ``mid_feats`` -> ``n_feats``),
each + LeakyReLU 0.05, a local residual, a 1x1 convolution, and enhanced spatial attention (ESA,
from RFANet): a 1x1 reduction to ``esa_feats`` maps, a strided 3x3 convolution, a 7x7 max pooling
of stride 3, a 3x3 convolution, bilinear upsampling back to the block's size, the reduced maps
added (through a 1x1 convolution), a 1x1 expansion to ``n_feats`` and a sigmoid that weights the
block's output.

The paper's RLFN is ``n_feats=52, n_blocks=6`` (543K parameters at x4), its RLFN-S ``n_feats=48``;
the network of the authors' NTIRE 2022 entry, the baseline of the NTIRE 2024 efficient SR
challenge, is pruned to ``n_feats=46, mid_feats=48, n_blocks=4`` (317,218 parameters at x4).

The authors trained in the EDSR framework, on pixel values in [0, 255]: their test code and the
NTIRE 2024 challenge's (``data_range`` 255) feed the published weights 0-255 and read 0-255 back.
This module takes [0, 1] and scales by ``img_range`` inside: the input is multiplied by it, the
output divided. A feature map smaller than the max pooling's 7x7 window (an input under 15 pixels
on a side) is padded by replicating its last row and column, so that any size >= 3 works.

Input: N x C x h x w in [0, 1]. Output: N x C x (scale*h) x (scale*w), not clipped. Scales 2, 3 and 4.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from superres.errors import WeightsError
from superres.models.layers import check_keys, check_scale, conv3x3, renamed

POOL = 7  # the max pooling of ESA: 7x7, stride 3


def lrelu() -> nn.LeakyReLU:
    return nn.LeakyReLU(0.05, inplace=True)


def _pad_to(x: torch.Tensor, size: int) -> torch.Tensor:
    """Replicate the last row and column of ``x`` until both sides are at least ``size`` (a no-op
    when they are; written without branches on the size, so that the ONNX export stays dynamic)."""
    pad_h = torch.sym_max(size - x.shape[-2], 0)
    pad_w = torch.sym_max(size - x.shape[-1], 0)
    return F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")


class ESA(nn.Module):
    """Enhanced spatial attention: a sigmoid mask from a coarse, large-receptive-field view."""

    def __init__(self, n_feats: int, esa_feats: int) -> None:
        super().__init__()
        self.reduce = nn.Conv2d(n_feats, esa_feats, 1)
        self.skip = nn.Conv2d(esa_feats, esa_feats, 1)
        self.down = nn.Conv2d(esa_feats, esa_feats, 3, stride=2)
        self.conv = conv3x3(esa_feats, esa_feats)
        self.expand = nn.Conv2d(esa_feats, n_feats, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        reduced = self.reduce(x)
        coarse = F.max_pool2d(_pad_to(self.down(_pad_to(reduced, 3)), POOL), kernel_size=POOL, stride=3)
        coarse = F.interpolate(self.conv(coarse), size=x.shape[-2:], mode="bilinear", align_corners=False)
        return x * torch.sigmoid(self.expand(coarse + self.skip(reduced)))


class RLFB(nn.Module):
    """Residual local feature block: three convolutions, a local residual, a 1x1 convolution, ESA."""

    def __init__(self, n_feats: int, mid_feats: int, esa_feats: int) -> None:
        super().__init__()
        self.body = nn.Sequential(conv3x3(n_feats, mid_feats), lrelu(), conv3x3(mid_feats, mid_feats), lrelu(),
                                  conv3x3(mid_feats, n_feats), lrelu())
        self.fuse = nn.Conv2d(n_feats, n_feats, 1)
        self.esa = ESA(n_feats, esa_feats)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.esa(self.fuse(self.body(x) + x))


class RLFN(nn.Module):
    SCALES: tuple[int, ...] = (2, 3, 4)

    def __init__(
        self,
        scale: int,
        channels: int = 3,
        n_feats: int = 52,
        mid_feats: int | None = None,
        esa_feats: int = 16,
        n_blocks: int = 6,
        img_range: float = 255.0,
    ) -> None:
        super().__init__()
        self.scale = check_scale("RLFN", scale, self.SCALES)
        self.img_range = img_range
        self.head = conv3x3(channels, n_feats)
        self.blocks = nn.Sequential(*(RLFB(n_feats, mid_feats or n_feats, esa_feats) for _ in range(n_blocks)))
        self.lr_conv = conv3x3(n_feats, n_feats)
        self.tail = nn.Sequential(conv3x3(n_feats, channels * scale * scale), nn.PixelShuffle(scale))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.head(x * self.img_range)
        return self.tail(self.lr_conv(self.blocks(features)) + features) / self.img_range


def _official_names(n_blocks: int) -> dict[str, str]:
    """The authors' parameter names (bytedance/RLFN; the NTIRE 2024 baseline's
    ``models/team00_RLFN.py``) -> this module's."""
    layers = {"conv_1": "head", "conv_2": "lr_conv", "upsampler.0": "tail.0"}
    block_layers = {"c1_r": "body.0", "c2_r": "body.2", "c3_r": "body.4", "c5": "fuse",
                    "esa.conv1": "esa.reduce", "esa.conv_f": "esa.skip", "esa.conv2": "esa.down",
                    "esa.conv3": "esa.conv", "esa.conv4": "esa.expand"}
    for index in range(n_blocks):
        layers |= {f"block_{index + 1}.{theirs}": f"blocks.{index}.{ours}" for theirs, ours in block_layers.items()}
    return {f"{theirs}.{kind}": f"{ours}.{kind}" for theirs, ours in layers.items() for kind in ("weight", "bias")}


def from_official(state: dict[str, torch.Tensor], scale: int) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """The model config (constructor keyword arguments, without scale) and the state dict of this
    module's class, from the tensors of the official checkpoint (wrappers such as `params` and a
    `module.` prefix already removed).

    The checkpoint is the authors' (bytedance/RLFN ``rlfn_ntire_x4.pth``, the NTIRE 2024
    baseline's ``team00_rlfn.pth``), made for inputs in [0, 255]: the config says
    ``img_range: 255``. The widths are read from the first block, ``n_blocks`` from the numbered
    blocks; the upsampler must be the one of ``scale``.
    """
    needed = ("conv_1.weight", "block_1.c1_r.weight", "block_1.esa.conv1.weight")
    absent = [key for key in needed if key not in state]
    if absent:
        raise WeightsError(f"the RLFN checkpoint lacks {', '.join(absent)}; give the authors' RLFN weights")
    first = state["conv_1.weight"]
    n_blocks = 0
    while f"block_{n_blocks + 1}.c1_r.weight" in state:
        n_blocks += 1
    config: dict[str, Any] = {
        "channels": int(first.shape[1]),
        "n_feats": int(first.shape[0]),
        "mid_feats": int(state["block_1.c1_r.weight"].shape[0]),
        "esa_feats": int(state["block_1.esa.conv1.weight"].shape[0]),
        "n_blocks": n_blocks,
        "img_range": 255.0,
    }
    table = _official_names(n_blocks)
    check_keys(state, table, f"not an RLFN of {n_blocks} blocks as bytedance/RLFN builds it")
    upsampler = state["upsampler.0.weight"]
    if upsampler.shape[0] != config["channels"] * scale * scale:
        raise WeightsError(f"the RLFN checkpoint upsamples to {upsampler.shape[0]} maps, not the "
                           f"{config['channels'] * scale * scale} of x{scale}: give the weights of x{scale}")
    model = RLFN(scale, **config)
    return config, renamed(state, table, model.state_dict(), "RLFN")
