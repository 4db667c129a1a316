"""IMDN: Hui, Gao, Yang, Wang, "Lightweight Image Super-Resolution with Information Multi-distillation
Network" (ACM Multimedia 2019).

A 3x3 convolution to ``n_feats`` features, ``n_blocks`` information multi-distillation blocks (IMDB),
a 1x1 convolution + LeakyReLU fusing the outputs of every block, a 3x3 convolution, the global
residual (the features of the first convolution added back), and one sub-pixel step (a 3x3
convolution to ``channels * scale^2`` maps and a pixel shuffle) at every scale.

An IMDB distils its features progressively: three 3x3 convolutions + LeakyReLU 0.05 each keep a
quarter of their ``n_feats`` outputs (the distilled part) and pass the other three quarters on to
the next; a fourth 3x3 convolution turns what is left into one more quarter. The four quarters
are concatenated, weighted by contrast-aware channel attention (CCA: the mean plus the standard
deviation of each map, then a 1x1 squeeze to ``n_feats / 16`` + ReLU, a 1x1 expansion + sigmoid),
fused by a 1x1 convolution, and added to the block's input.

The paper's network is ``n_feats=64, n_blocks=6``: 694K parameters at x2, 703K at x3, 715K at x4.

Input: N x C x h x w in [0, 1] (the authors' weights: RGB, no mean subtracted).
Output: N x C x (scale*h) x (scale*w), not clipped. Scales 2, 3 and 4.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from superres.errors import ConfigError, WeightsError
from superres.models.layers import check_keys, check_scale, conv3x3, renamed


def lrelu() -> nn.LeakyReLU:
    return nn.LeakyReLU(0.05, inplace=True)


class ContrastChannelAttention(nn.Module):
    """CCA: each map weighted by a function of its contrast (spatial mean + standard deviation)."""

    def __init__(self, n_feats: int, reduction: int = 16) -> None:
        super().__init__()
        squeezed = max(1, n_feats // reduction)
        self.body = nn.Sequential(nn.Conv2d(n_feats, squeezed, 1), nn.ReLU(inplace=True),
                                  nn.Conv2d(squeezed, n_feats, 1), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(dim=(2, 3), keepdim=True)
        std = (x - mean).pow(2).mean(dim=(2, 3), keepdim=True).sqrt()  # the population standard deviation
        return x * self.body(mean + std)


class IMDB(nn.Module):
    """Information multi-distillation block: a quarter of the features distilled at each step."""

    def __init__(self, n_feats: int) -> None:
        super().__init__()
        self.distilled = n_feats // 4
        self.remaining = n_feats - self.distilled
        self.conv1 = conv3x3(n_feats, n_feats)
        self.conv2 = conv3x3(self.remaining, n_feats)
        self.conv3 = conv3x3(self.remaining, n_feats)
        self.conv4 = conv3x3(self.remaining, self.distilled)
        self.act = lrelu()
        self.attention = ContrastChannelAttention(4 * self.distilled)
        self.fuse = nn.Conv2d(4 * self.distilled, n_feats, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        split = (self.distilled, self.remaining)
        distilled1, rest = torch.split(self.act(self.conv1(x)), split, dim=1)
        distilled2, rest = torch.split(self.act(self.conv2(rest)), split, dim=1)
        distilled3, rest = torch.split(self.act(self.conv3(rest)), split, dim=1)
        out = torch.cat([distilled1, distilled2, distilled3, self.conv4(rest)], dim=1)
        return self.fuse(self.attention(out)) + x


class IMDN(nn.Module):
    SCALES: tuple[int, ...] = (2, 3, 4)

    def __init__(self, scale: int, channels: int = 3, n_feats: int = 64, n_blocks: int = 6) -> None:
        super().__init__()
        self.scale = check_scale("IMDN", scale, self.SCALES)
        if n_feats % 4:
            raise ConfigError(f"imdn.model.n_feats must be a multiple of 4 (a quarter is distilled at each step), "
                              f"got {n_feats}; change it in params.yaml")
        self.head = conv3x3(channels, n_feats)
        self.blocks = nn.ModuleList(IMDB(n_feats) for _ in range(n_blocks))
        self.fuse = nn.Sequential(nn.Conv2d(n_feats * n_blocks, n_feats, 1), lrelu())
        self.lr_conv = conv3x3(n_feats, n_feats)
        self.tail = nn.Sequential(conv3x3(n_feats, channels * scale * scale), nn.PixelShuffle(scale))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.head(x)
        outputs = []
        out = features
        for block in self.blocks:
            out = block(out)
            outputs.append(out)
        out = self.lr_conv(self.fuse(torch.cat(outputs, dim=1))) + features
        return self.tail(out)


def _official_names(n_blocks: int) -> dict[str, str]:
    """The authors' parameter names (Zheng222/IMDN, ``model/architecture.py``) -> this module's."""
    layers = {"fea_conv": "head", "c.0": "fuse.0", "LR_conv": "lr_conv", "upsampler.0": "tail.0"}
    block_layers = {"c1": "conv1", "c2": "conv2", "c3": "conv3", "c4": "conv4", "c5": "fuse",
                    "cca.conv_du.0": "attention.body.0", "cca.conv_du.2": "attention.body.2"}
    for index in range(n_blocks):
        layers |= {f"IMDB{index + 1}.{theirs}": f"blocks.{index}.{ours}" for theirs, ours in block_layers.items()}
    return {f"{theirs}.{kind}": f"{ours}.{kind}" for theirs, ours in layers.items() for kind in ("weight", "bias")}


def from_official(state: dict[str, torch.Tensor], scale: int) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """The model config (constructor keyword arguments, without scale) and the state dict of this
    module's class, from the tensors of the official checkpoint (wrappers such as `params` and a
    `module.` prefix already removed).

    The checkpoints are the authors' ``IMDN_x{2,3,4}.pth`` (Zheng222/IMDN). ``channels`` and
    ``n_feats`` are read from the first convolution, ``n_blocks`` from the numbered blocks; the
    upsampler must be the one of ``scale``.
    """
    if "fea_conv.weight" not in state:
        raise WeightsError("the IMDN checkpoint lacks fea_conv.weight; give one of the authors' IMDN_x*.pth")
    first = state["fea_conv.weight"]
    n_blocks = 0
    while f"IMDB{n_blocks + 1}.c1.weight" in state:
        n_blocks += 1
    config: dict[str, Any] = {"channels": int(first.shape[1]), "n_feats": int(first.shape[0]), "n_blocks": n_blocks}
    table = _official_names(n_blocks)
    check_keys(state, table, f"not an IMDN of {n_blocks} blocks as Zheng222/IMDN builds it")
    upsampler = state["upsampler.0.weight"]
    if upsampler.shape[0] != config["channels"] * scale * scale:
        raise WeightsError(f"the IMDN checkpoint upsamples to {upsampler.shape[0]} maps, not the "
                           f"{config['channels'] * scale * scale} of x{scale}: give the weights of x{scale}")
    model = IMDN(scale, **config)
    return config, renamed(state, table, model.state_dict(), "IMDN")
