"""Apply a super-resolution model to whole images.

Models see 3-channel NCHW float tensors in [0, 1]. A grayscale image is repeated on three
channels on the way in and averaged back to one on the way out, so it stays grayscale.
"""

from __future__ import annotations

import time

import numpy as np
import torch
from torch import nn


def pick_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA, then Apple's MPS, then the CPU; any other name is used as given."""
    if name != "auto":
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def to_tensor(image: np.ndarray) -> torch.Tensor:
    """uint8 H x W x C (C = 1 or 3) -> float32 C x H x W in [0, 1]."""
    if image.ndim == 2:
        image = image[:, :, None]
    return torch.from_numpy(image.transpose(2, 0, 1).astype(np.float32)).div_(255.0)


def to_uint8(tensor: torch.Tensor) -> np.ndarray:
    """float C x H x W in [0, 1] -> uint8 H x W x C, rounded half to even and clipped."""
    array = tensor.detach().clamp(0, 1).mul(255.0).round().to(torch.uint8).cpu().numpy()
    return array.transpose(1, 2, 0)


@torch.no_grad()
def super_resolve(model: nn.Module, image: np.ndarray, device: torch.device | None = None) -> np.ndarray:
    """Upscale one uint8 H x W x C image (C = 1 or 3) with ``model``; returns uint8 H' x W' x C."""
    if device is None:
        tensors = [*model.parameters(), *model.buffers()]
        device = tensors[0].device if tensors else torch.device("cpu")
    x = to_tensor(image).to(device)
    channels = x.shape[0]
    if channels == 1:
        x = x.expand(3, -1, -1)
    y = model(x.unsqueeze(0)).squeeze(0)
    if channels == 1:
        y = y.mean(dim=0, keepdim=True)
    return to_uint8(y)


@torch.no_grad()
def measure_latency(model: nn.Module, device: torch.device, size: int = 256, repeats: int = 5) -> float:
    """Median seconds to upscale one ``size`` x ``size`` RGB input on ``device`` (after a warm-up)."""
    model = model.to(device).eval()
    x = torch.rand(1, 3, size, size, device=device)
    timings = []
    for i in range(repeats + 1):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        model(x)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if i:  # the first call warms up
            timings.append(time.perf_counter() - start)
    return float(np.median(timings))
