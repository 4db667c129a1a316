"""Pixel losses by name. Every loss takes (prediction, target) NCHW tensors in [0, 1].

``dssim`` is ``1 - SSIM`` with the usual Gaussian window (11x11, sigma 1.5) and a data range of 1;
the SSIM comes from ``pytorch_msssim``, which is differentiable.
"""

from __future__ import annotations

import torch
from pytorch_msssim import ssim
from torch import nn

from superres.errors import ConfigError

SSIM_WINDOW = 11
SSIM_SIGMA = 1.5


class DSSIMLoss(nn.Module):
    """``1 - SSIM(pred, target)``, averaged over the batch: 0 for identical images."""

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        height, width = pred.shape[-2:]
        if min(height, width) < SSIM_WINDOW:
            raise ConfigError(
                f"train.loss: dssim needs images of at least {SSIM_WINDOW}x{SSIM_WINDOW} pixels, got {height}x{width}; "
                "use larger training patches or another loss"
            )
        similarity = ssim(pred, target, data_range=1.0, size_average=True, win_size=SSIM_WINDOW, win_sigma=SSIM_SIGMA)
        return 1.0 - similarity


LOSSES: dict[str, type[nn.Module]] = {
    "l1": nn.L1Loss,
    "mse": nn.MSELoss,
    "dssim": DSSIMLoss,
}


def build_loss(name: str) -> nn.Module:
    try:
        return LOSSES[name]()
    except KeyError:
        raise ConfigError(f"train.loss: unknown loss {name!r}; choose one of {', '.join(LOSSES)}") from None
