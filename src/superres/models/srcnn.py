"""SRCNN: Dong, Loy, He, Tang, "Image Super-Resolution Using Deep Convolutional Networks" (2014).

Three convolutions: patch extraction (``k1`` x ``k1``, ``f1`` filters), non-linear mapping
(``k2`` x ``k2``, ``f2`` filters) and reconstruction (``k3`` x ``k3``). The paper's 9-5-5 network is
``k1=9, k2=5, k3=5`` with 64 and 32 filters; its 9-1-5 variant is ``k2=1`` (8,129 parameters on the
Y channel: ``channels: 1, color: y``, as the paper trains it).

Checked against the paper, the authors' Caffe/MATLAB release and the PyTorch port whose weights
``from_official`` reads (Lornatang/SRCNN-PyTorch): same layers, biases, ReLU after the first two
convolutions, no activation after the last, no residual. Deliberate differences:

- padding: zero padding of ``k // 2`` keeps the size. The paper (and the port's training mode) use
  unpadded convolutions and a loss on the centre only; the port's evaluation mode pads as here, so
  its weights run unchanged;
- initialisation: PyTorch's default. The paper draws every filter from a Gaussian of standard
  deviation 0.001 for SGD at 1e-4 over 10^8 backpropagations; with Adam at the project's learning
  rates that start is far slower (28.7 dB against 31.9 dB on Set5 x2 after 600 iterations of the
  9-1-5 network; the port's start, He-normal for the first two layers and 0.001 for the last, gave
  31.5 dB);
- the paper's smaller learning rate for the last layer belongs to the training loop.

Input: N x C x h x w in [0, 1], the low-resolution image; the network upsamples it with the
project's MATLAB-compatible bicubic first and works at the output size.
Output: N x C x (scale*h) x (scale*w), not clipped. Any integer scale >= 2.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from superres.data.resize import imresize
from superres.errors import WeightsError
from superres.models.layers import check_scale, renamed


class SRCNN(nn.Module):
    SCALES: tuple[int, ...] = (2, 3, 4, 8)  # the usual ones: any integer scale >= 2 works

    def __init__(
        self,
        scale: int,
        channels: int = 3,
        f1: int = 64,
        f2: int = 32,
        k1: int = 9,
        k2: int = 5,
        k3: int = 5,
    ) -> None:
        super().__init__()
        self.scale = check_scale("SRCNN", scale, self.SCALES, any_integer=True)
        self.body = nn.Sequential(
            nn.Conv2d(channels, f1, k1, padding=k1 // 2),
            nn.ReLU(inplace=True),
            nn.Conv2d(f1, f2, k2, padding=k2 // 2),
            nn.ReLU(inplace=True),
            nn.Conv2d(f2, channels, k3, padding=k3 // 2),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(imresize(x, scale=self.scale))


# Lornatang/SRCNN-PyTorch's layers -> this module's (body alternates convolution and ReLU)
_OFFICIAL_LAYERS = {"features.0": "body.0", "map.0": "body.2", "reconstruction": "body.4"}


def from_official(state: dict[str, torch.Tensor], scale: int) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """The model config (constructor kwargs, without scale) and the state dict of this module's class,
    from the tensors of the official checkpoint (wrappers and a `module.` prefix already removed).

    The checkpoint is the port's (Lornatang/SRCNN-PyTorch: ``features.0``, ``map.0``,
    ``reconstruction``), a state dict trained on the Y channel. The filter counts and sizes and the
    number of channels are read from the tensors; a one-channel network is a luminance model
    (``color: y``). Nothing in the tensors says the scale: ``scale`` must be the one the weights were
    trained for.
    """
    absent = [f"{layer}.weight" for layer in _OFFICIAL_LAYERS if f"{layer}.weight" not in state]
    if absent:
        raise WeightsError(f"the SRCNN checkpoint lacks {', '.join(absent)}; give the weights of "
                           "Lornatang/SRCNN-PyTorch")
    first, mapping, last = (state[f"{layer}.weight"] for layer in _OFFICIAL_LAYERS)
    config: dict[str, Any] = {"channels": int(first.shape[1]), "f1": int(first.shape[0]), "f2": int(mapping.shape[0]),
                              "k1": int(first.shape[-1]), "k2": int(mapping.shape[-1]), "k3": int(last.shape[-1])}
    if config["channels"] == 1:
        config["color"] = "y"
    table = {f"{theirs}.{kind}": f"{ours}.{kind}" for theirs, ours in _OFFICIAL_LAYERS.items()
             for kind in ("weight", "bias")}
    model = SRCNN(scale, **{key: value for key, value in config.items() if key != "color"})
    return config, renamed(state, table, model.state_dict(), "SRCNN")
