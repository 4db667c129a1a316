"""VDSR: Kim, Lee, Lee, "Accurate Image Super-Resolution Using Very Deep Convolutional Networks"
(CVPR 2016).

A plain stack of ``depth`` 3x3 convolutions (``n_feats`` features, ReLU between them; the first
takes the image, the last returns one) that predicts the residual between the bicubic-upsampled
image and the high-resolution one: ``output = bicubic(x) + body(bicubic(x))``. The paper's network
is ``depth=20, n_feats=64`` on the Y channel (``channels: 1, color: y``); its adjustable gradient
clipping belongs to the training loop.

Checked against the paper and the widely used PyTorch port (twtygqyy/pytorch-vdsr, whose weights
``from_official`` reads): same structure (zero padding keeps the size, ReLU after every convolution
but the last, the global residual over the bicubic input). Initialisation as the paper: He et al.'s
normal weights (``kaiming_normal_``, fan-in) and zero biases; the port draws with fan-out, which is
the same for the 64 -> 64 layers. With PyTorch's default start instead, the first of the paper's 20
layers gets a gradient about 10^7 times smaller than the last (each ReLU layer divides the
signal's variance by 6), which the paper's SGD cannot train; with He's, about 30 times. With Adam on
the default profile's 8 x 32 network PyTorch's start trained better (35.7-35.8 against 34.7-35.4 dB
on Set5 x2 after 600 iterations), so that profile keeps it: ``init: pytorch`` (``he``, the default,
is the paper's). ``bias``: the paper's network has biases, the port's
none (``bias=False``, 664,704 parameters at the paper's size). Where this module differs on purpose:
the port takes the bicubic-upsampled image as input; this module takes the low-resolution image and
upsamples it itself with the project's MATLAB-compatible bicubic, which is how the paper's inputs
were made.

Input: N x C x h x w in [0, 1], the low-resolution image.
Output: N x C x (scale*h) x (scale*w), not clipped. Any integer scale >= 2 (one network per scale
here; the paper trains one network for several, and its weights work at every scale).
"""

from __future__ import annotations

import re
from typing import Any

import torch
from torch import nn

from superres.data.resize import imresize
from superres.errors import ConfigError, WeightsError
from superres.models.layers import check_scale, conv3x3, renamed

INITS = ("he", "pytorch")  # the paper's start, or PyTorch's default (kept by the default profile: see above)


class VDSR(nn.Module):
    SCALES: tuple[int, ...] = (2, 3, 4, 8)  # the usual ones: any integer scale >= 2 works

    def __init__(self, scale: int, channels: int = 3, depth: int = 20, n_feats: int = 64, bias: bool = True,
                 init: str = "he") -> None:
        super().__init__()
        self.scale = check_scale("VDSR", scale, self.SCALES, any_integer=True)
        if init not in INITS:
            raise ConfigError(f"vdsr.model.init must be one of {', '.join(INITS)}, got {init!r}; "
                              "change it in params.yaml")
        layers: list[nn.Module] = [conv3x3(channels, n_feats, bias=bias), nn.ReLU(inplace=True)]
        for _ in range(depth - 2):
            layers += [conv3x3(n_feats, n_feats, bias=bias), nn.ReLU(inplace=True)]
        layers.append(conv3x3(n_feats, channels, bias=bias))
        self.body = nn.Sequential(*layers)
        for module in self.body if init == "he" else ():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
                if module.bias is not None:
                    nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = imresize(x, scale=self.scale)
        return x + self.body(x)


_MIDDLE = re.compile(r"residual_layer\.(\d+)\.conv\.weight")


def _official_names(depth: int, bias: bool) -> dict[str, str]:
    """twtygqyy/pytorch-vdsr's names -> this module's, for ``depth`` convolutions. The port has
    ``input``, ``residual_layer.<i>.conv`` (i < depth - 2) and ``output``; the body here alternates
    convolution and ReLU, so convolution j is ``body.<2j>``."""
    layers = {"input": "body.0", "output": f"body.{2 * (depth - 1)}"}
    layers |= {f"residual_layer.{i}.conv": f"body.{2 * (i + 1)}" for i in range(depth - 2)}
    kinds = ("weight", "bias") if bias else ("weight",)
    return {f"{theirs}.{kind}": f"{ours}.{kind}" for theirs, ours in layers.items() for kind in kinds}


def from_official(state: dict[str, torch.Tensor], scale: int) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """The model config (constructor kwargs, without scale) and the state dict of this module's class,
    from the tensors of the official checkpoint (wrappers and a `module.` prefix already removed).

    The checkpoint is the port's (twtygqyy/pytorch-vdsr: a pickled ``vdsr.Net``, read inertly by
    :mod:`superres.models.safe_pickle`): 20 convolutions of 64 features without biases on the Y
    channel, one network for every scale. ``channels``, ``n_feats``, ``depth`` and ``bias`` are read
    from the tensors; a one-channel network is a luminance model (``color: y``).
    """
    if "input.weight" not in state:
        raise WeightsError("the VDSR checkpoint lacks input.weight; give the weights of twtygqyy/pytorch-vdsr")
    first = state["input.weight"]
    depth = 2 + sum(1 for key in state if _MIDDLE.fullmatch(key))
    config: dict[str, Any] = {"channels": int(first.shape[1]), "depth": depth, "n_feats": int(first.shape[0]),
                              "bias": "input.bias" in state}
    if config["channels"] == 1:
        config["color"] = "y"
    model = VDSR(scale, **{key: value for key, value in config.items() if key != "color"})
    return config, renamed(state, _official_names(depth, config["bias"]), model.state_dict(), "VDSR")
