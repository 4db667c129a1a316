"""SPAN: Wan, Yu, Xu, Liu, Ding, Jiang, Li, Wang, "Swift Parameter-free Attention Network for
Efficient Super-Resolution" (CVPR Workshops 2024; the winner of the NTIRE 2024 efficient SR challenge).

A 3x3 convolution to ``n_feats`` features, ``n_blocks`` swift parameter-free attention blocks
(SPAB), a 3x3 convolution of the last block's output, a 1x1 convolution of the concatenation of
[the first convolution's features, that convolution's output, the first block's output, the last
block's first convolution (before its activation)] to ``tail_feats`` maps, and one sub-pixel step
(a 3x3 convolution to ``channels * scale^2`` maps and a pixel shuffle).

An SPAB is three 3x3 convolutions, the first two followed by SiLU; its attention has no
parameters: with ``out`` the third convolution's output and ``x`` the block's input, the block
gives ``(out + x) * (sigmoid(out) - 0.5)``.

The authors train each 3x3 convolution over-parameterised (Conv3XC: a 1x1 expansion to twice the
channels, a 3x3 convolution, a 1x1 reduction, plus a 1x1 skip) and collapse it into one 3x3
convolution for inference (their ``eval_conv``). The collapse is exact (up to the border, where
their training form pads before the first 1x1 convolution), so this module trains the plain 3x3
convolution, the network the published weights describe; it does not have the training-time
dynamics of the expanded form.

As in the authors' code the DIV2K RGB mean is subtracted from the input, which is then multiplied
by ``img_range`` (255); the output is the image in [0, 1] (neither rescaled nor the mean added back).
Trained from scratch, ``img_range: 1`` learns faster in a short run: at 255 a freshly initialised
network's output is far off (an L1 loss near 2), and on a CPU its saturated sigmoids produce
denormal numbers that slow every step down several times.

The paper's network is ``n_feats=48, n_blocks=6`` (``tail_feats`` null: ``n_feats``), 426,288
parameters at x4. The NTIRE 2025 entries built on it are narrower, e.g. ``n_feats=28, tail_feats=20``
(146,328 parameters at x4).

Input: N x C x h x w in [0, 1]. Output: N x C x (scale*h) x (scale*w), not clipped. Scales 2, 3 and 4.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from superres.errors import WeightsError
from superres.models.layers import check_keys, check_scale, conv3x3, renamed

DIV2K_RGB_MEAN = (0.4488, 0.4371, 0.4040)


class SPAB(nn.Module):
    """Swift parameter-free attention block. Returns its output and its first convolution's output."""

    def __init__(self, n_feats: int) -> None:
        super().__init__()
        self.conv1 = conv3x3(n_feats, n_feats)
        self.conv2 = conv3x3(n_feats, n_feats)
        self.conv3 = conv3x3(n_feats, n_feats)
        self.act = nn.SiLU()

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        first = self.conv1(x)
        out = self.conv3(self.act(self.conv2(self.act(first))))
        return (out + x) * (torch.sigmoid(out) - 0.5), first


class SPAN(nn.Module):
    SCALES: tuple[int, ...] = (2, 3, 4)

    def __init__(
        self,
        scale: int,
        channels: int = 3,
        n_feats: int = 48,
        n_blocks: int = 6,
        tail_feats: int | None = None,
        img_range: float = 255.0,
    ) -> None:
        super().__init__()
        self.scale = check_scale("SPAN", scale, self.SCALES)
        self.img_range = img_range
        self.register_buffer("mean", torch.tensor(DIV2K_RGB_MEAN[:channels]).view(1, channels, 1, 1), persistent=False)
        tail_feats = tail_feats or n_feats
        self.head = conv3x3(channels, n_feats)
        self.blocks = nn.ModuleList(SPAB(n_feats) for _ in range(n_blocks))
        self.lr_conv = conv3x3(n_feats, n_feats)
        self.fuse = nn.Conv2d(4 * n_feats, tail_feats, 1)
        self.tail = nn.Sequential(conv3x3(tail_feats, channels * scale * scale), nn.PixelShuffle(scale))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.head((x - self.mean) * self.img_range)
        out, first_block = features, None
        for block in self.blocks:
            out, last_first_conv = block(out)
            if first_block is None:
                first_block = out
        out = self.fuse(torch.cat([features, self.lr_conv(out), first_block, last_first_conv], dim=1))
        return self.tail(out)


def _official_names(n_blocks: int) -> dict[str, str]:
    """The parameter names of the authors' code (hongyuanyu/SPAN, re-parameterised: ``eval_conv``)
    and of the NTIRE 2025 entries built on it -> this module's."""
    layers = {"conv_1.eval_conv": "head", "conv_2.eval_conv": "lr_conv", "conv_cat": "fuse", "upsampler.0": "tail.0"}
    for index in range(n_blocks):
        layers |= {f"block_{index + 1}.c{i}_r.eval_conv": f"blocks.{index}.conv{i}" for i in (1, 2, 3)}
    return {f"{theirs}.{kind}": f"{ours}.{kind}" for theirs, ours in layers.items() for kind in ("weight", "bias")}


def from_official(state: dict[str, torch.Tensor], scale: int) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """The model config (constructor keyword arguments, without scale) and the state dict of this
    module's class, from the tensors of the official checkpoint (wrappers such as `params` and a
    `module.` prefix already removed).

    The checkpoint holds the re-parameterised convolutions (``eval_conv``), as the authors' code
    and the NTIRE challenges' entries publish them; one with the training form of Conv3XC (``sk``,
    ``conv.0``...) is refused by its keys. ``n_feats`` is read from the first convolution,
    ``tail_feats`` from ``conv_cat`` (20 in some NTIRE 2025 entries, not ``n_feats``), ``n_blocks``
    from the numbered blocks; the upsampler must be the one of ``scale``.
    """
    needed = ("conv_1.eval_conv.weight", "conv_cat.weight")
    absent = [key for key in needed if key not in state]
    if absent:
        raise WeightsError(f"the SPAN checkpoint lacks {', '.join(absent)}; give re-parameterised SPAN weights "
                           "(eval_conv)")
    first = state["conv_1.eval_conv.weight"]
    n_blocks = 0
    while f"block_{n_blocks + 1}.c1_r.eval_conv.weight" in state:
        n_blocks += 1
    config: dict[str, Any] = {"channels": int(first.shape[1]), "n_feats": int(first.shape[0]), "n_blocks": n_blocks,
                              "tail_feats": int(state["conv_cat.weight"].shape[0]), "img_range": 255.0}
    table = _official_names(n_blocks)
    check_keys(state, table, f"not a re-parameterised SPAN of {n_blocks} blocks")
    upsampler = state["upsampler.0.weight"]
    if upsampler.shape[0] != config["channels"] * scale * scale:
        raise WeightsError(f"the SPAN checkpoint upsamples to {upsampler.shape[0]} maps, not the "
                           f"{config['channels'] * scale * scale} of x{scale}: give the weights of x{scale}")
    model = SPAN(scale, **config)
    return config, renamed(state, table, model.state_dict(), "SPAN")
