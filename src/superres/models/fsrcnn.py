"""FSRCNN: Dong, Loy, Tang, "Accelerating the Super-Resolution Convolutional Neural Network" (ECCV 2016).

SRCNN made fast: it works on the low-resolution image itself and upsamples only at the end.

1. Feature extraction: a 5x5 convolution to ``d`` features + PReLU.
2. Shrinking: a 1x1 convolution to ``s`` features + PReLU.
3. Mapping: ``m`` 3x3 convolutions of ``s`` features, each + PReLU.
4. Expanding: a 1x1 convolution back to ``d`` features + PReLU.
5. Deconvolution: a 9x9 transposed convolution of stride ``scale`` to the image.

The paper's network is FSRCNN(d=56, s=12, m=4): on one channel 25*56 + 56*12 + 4*9*12*12 + 12*56 +
81*56 = 12,464 weights (the paper's count), plus 173 biases and 172 PReLU slopes (one per feature
map), 12,809 parameters in all; its small variant is FSRCNN-s(32, 5, 1). The paper initialises the
convolutions as He et al. do for PReLU networks and the deconvolution from a Gaussian of standard
deviation 0.001; so does this module. The paper trains and evaluates on the Y channel (``color: y``);
the module works on any number of channels.

Input: N x C x h x w in [0, 1]. Output: N x C x (scale*h) x (scale*w), not clipped. Scales 2, 3 and 4.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from superres.errors import WeightsError
from superres.models.layers import check_keys, check_scale, renamed


def conv_prelu(in_channels: int, out_channels: int, kernel_size: int) -> list[nn.Module]:
    return [nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2), nn.PReLU(out_channels)]


class FSRCNN(nn.Module):
    SCALES: tuple[int, ...] = (2, 3, 4)

    def __init__(self, scale: int, channels: int = 3, d: int = 56, s: int = 12, m: int = 4) -> None:
        super().__init__()
        self.scale = check_scale("FSRCNN", scale, self.SCALES)
        self.head = nn.Sequential(*conv_prelu(channels, d, 5))
        body = conv_prelu(d, s, 1)
        for _ in range(m):
            body += conv_prelu(s, s, 3)
        body += conv_prelu(s, d, 1)
        self.body = nn.Sequential(*body)
        # output size: (h - 1) * scale - 2 * 4 + 9 + (scale - 1) = scale * h
        self.tail = nn.ConvTranspose2d(d, channels, 9, stride=scale, padding=4, output_padding=scale - 1)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(module.bias)
        nn.init.normal_(self.tail.weight, std=0.001)
        nn.init.zeros_(self.tail.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.tail(self.body(self.head(x)))


def _official_names(m: int) -> dict[str, str]:
    """The PyTorch port's parameter names (yjn870/FSRCNN-pytorch) -> this module's, for ``m``
    mapping layers. Both number the layers of one ``nn.Sequential`` alike: convolution, PReLU."""
    table = {"first_part.0.weight": "head.0.weight", "first_part.0.bias": "head.0.bias",
             "first_part.1.weight": "head.1.weight",
             "last_part.weight": "tail.weight", "last_part.bias": "tail.bias"}
    for index in range(0, 2 * (m + 2), 2):  # shrink, m mappings, expand
        table |= {f"mid_part.{index}.weight": f"body.{index}.weight", f"mid_part.{index}.bias": f"body.{index}.bias",
                  f"mid_part.{index + 1}.weight": f"body.{index + 1}.weight"}
    return table


def _tensor(state: dict[str, torch.Tensor], key: str) -> torch.Tensor:
    try:
        return state[key]
    except KeyError:
        raise WeightsError(f"the FSRCNN checkpoint lacks {key}; give the weights of yjn870/FSRCNN-pytorch") from None


def from_official(state: dict[str, torch.Tensor], scale: int) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """The model config (constructor keyword arguments, without scale) and the state dict of this
    module's class, from the tensors of the official checkpoint (wrappers such as `params` and a
    `module.` prefix already removed).

    The checkpoint is the PyTorch port's (yjn870/FSRCNN-pytorch), trained on the Y channel: the
    config says ``color: y``. ``d``, ``s`` and ``m`` are read from the tensors' shapes; the stride
    of the deconvolution is not in them, so ``scale`` must be the one the weights were trained for.
    """
    first, shrink = _tensor(state, "first_part.0.weight"), _tensor(state, "mid_part.0.weight")
    m = sum(1 for key, tensor in state.items()
            if key.startswith("mid_part.") and key.endswith(".weight") and tensor.shape[-2:] == (3, 3))
    config: dict[str, Any] = {"channels": int(first.shape[1]), "d": int(first.shape[0]),
                              "s": int(shrink.shape[0]), "m": m}
    if config["channels"] == 1:
        config["color"] = "y"
    table = _official_names(m)
    check_keys(state, table, f"not the FSRCNN({config['d']}, {config['s']}, {m}) of yjn870/FSRCNN-pytorch")
    model = FSRCNN(scale, **{k: v for k, v in config.items() if k != "color"})
    return config, renamed(state, table, model.state_dict(), "FSRCNN")
