"""Luminance-only networks on colour images, as SRCNN, FSRCNN, VDSR and LapSRN were trained and
evaluated in their papers.

:class:`YChannel` wraps a one-channel network. An RGB input is converted to YCbCr with MATLAB's
``rgb2ycbcr`` (BT.601, studio range: Y in [16, 235] / 255); the network upscales Y; Cb and Cr are
upscaled with the project's MATLAB-compatible bicubic; the result is converted back to RGB. A gray
(one-channel) input is its own luminance: it is mapped to the same studio range, so the network sees
what it would see of a colour image, and mapped back.

This is the ``color: y`` key of an architecture's ``model`` section (``create_model`` builds the
network with one channel and wraps it); the weights of such a model are stored under ``net.``.

Input: N x 3 (or 1) x h x w in [0, 1]. Output: N x 3 (or 1) x (scale*h) x (scale*w), not clipped.
"""

from __future__ import annotations

import torch
from torch import nn

from superres.data.resize import imresize

COLORS = ("rgb", "y")

# MATLAB's rgb2ycbcr on [0, 1] images: ycbcr = offset + RGB_TO_YCBCR @ rgb, both scaled by 1/255.
_RGB_TO_YCBCR = torch.tensor([
    [65.481, 128.553, 24.966],
    [-37.797, -74.203, 112.0],
    [112.0, -93.786, -18.214],
], dtype=torch.float64) / 255.0
_YCBCR_TO_RGB = torch.linalg.inv(_RGB_TO_YCBCR)
_OFFSET = torch.tensor([16.0, 128.0, 128.0], dtype=torch.float64) / 255.0
_Y_GAIN = float(_RGB_TO_YCBCR[0].sum())  # 219/255: a gray level g has Y = 16/255 + g * 219/255


def _mix(x: torch.Tensor, matrix: torch.Tensor) -> torch.Tensor:
    """``matrix`` applied to the channels of ``x`` (a 1x1 convolution, which ONNX also has)."""
    return torch.nn.functional.conv2d(x, matrix.to(x.dtype)[:, :, None, None])


def rgb_to_ycbcr(x: torch.Tensor) -> torch.Tensor:
    """MATLAB's ``rgb2ycbcr`` of an N x 3 x H x W batch in [0, 1], scaled to [0, 1]."""
    return _mix(x, _RGB_TO_YCBCR.to(x.device)) + _OFFSET.to(x.device, x.dtype).view(1, 3, 1, 1)


def ycbcr_to_rgb(x: torch.Tensor) -> torch.Tensor:
    """The inverse of :func:`rgb_to_ycbcr` (MATLAB's ``ycbcr2rgb``), not clipped."""
    return _mix(x - _OFFSET.to(x.device, x.dtype).view(1, 3, 1, 1), _YCBCR_TO_RGB.to(x.device))


class YChannel(nn.Module):
    """``net`` (one channel in, one out, upscaling by ``scale``) applied to the luminance."""

    def __init__(self, net: nn.Module, scale: int) -> None:
        super().__init__()
        self.net = net
        self.scale = scale
        self.SCALES = getattr(net, "SCALES", (scale,))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] == 1:
            luma = self.net(_OFFSET[0].item() + x * _Y_GAIN)
            return (luma - _OFFSET[0].item()) / _Y_GAIN
        if x.shape[1] != 3:
            raise ValueError(f"a Y-channel model takes 1 or 3 channels, got {x.shape[1]}")
        ycbcr = rgb_to_ycbcr(x)
        luma = self.net(ycbcr[:, :1])
        chroma = imresize(ycbcr[:, 1:], scale=self.scale)
        return ycbcr_to_rgb(torch.cat([luma.to(chroma.dtype), chroma], dim=1))
