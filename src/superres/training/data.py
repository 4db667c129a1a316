"""Training patches in memory: LR/HR pairs as uint8 arrays, sampled with random flips and
rotations. The arrays may be memory-mapped ``.npy`` files, so nothing is decoded per sample."""

from __future__ import annotations

import functools

import numpy as np
import torch

from superres.errors import ConfigError


class PatchDataset:
    """Pairs of ``lr`` (N x C x p x p) and ``hr`` (N x C x sp x sp) uint8 patches.

    With ``augment`` each sample is flipped horizontally, vertically and transposed at random
    (the eight dihedral transforms), identically on LR and HR.
    """

    def __init__(self, lr: np.ndarray, hr: np.ndarray, augment: bool = True) -> None:
        if len(lr) != len(hr):
            raise ConfigError(
                f"training patches: {len(lr)} LR patches but {len(hr)} HR patches; rerun the prepare stage"
            )
        if len(lr) == 0:
            raise ConfigError(
                "training patches: none were made; use more or larger images, or a smaller prepare.patch_size"
            )
        self.lr, self.hr, self.augment = lr, hr, augment

    def __len__(self) -> int:
        return len(self.lr)

    def batch(
        self, size: int, generator: torch.Generator, crop: int | None = None, device: torch.device | str = "cpu"
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``size`` random pairs as uint8 NCHW tensors, drawn and augmented from ``generator`` alone.

        One fancy-indexing read per array, of the crop window only, then the dihedral transforms
        (:func:`_dihedral`: one copy per sample on the CPU, one gather for the batch on a GPU), so
        this keeps well ahead of the trainer. ``crop`` (HR pixels, a multiple of the scale) is one random aligned window
        of that size in the stored patches, so an architecture can train on smaller patches than
        prepared. The uint8 batch moves to ``device`` before it is augmented, so a GPU does that work.
        """
        index = torch.randint(0, len(self.lr), (size,), generator=generator).numpy()
        lr_window, hr_window = _aligned_window(self.lr.shape, self.hr.shape, crop, generator)
        # one read of just the window: from a memory-mapped file, only those bytes
        lr = torch.from_numpy(np.asarray(self.lr[(index, slice(None), *lr_window)]))
        hr = torch.from_numpy(np.asarray(self.hr[(index, slice(None), *hr_window)]))
        lr, hr = lr.to(device, non_blocking=True), hr.to(device, non_blocking=True)  # uint8: 4x fewer bytes to move
        if self.augment:
            flips = torch.randint(0, 2, (3, size, 1, 1, 1), generator=generator, dtype=torch.bool).to(lr.device)
            lr, hr = (_dihedral(x, flips) for x in (lr, hr))
        return lr.contiguous(), hr.contiguous()


def _aligned_window(
    lr_shape: tuple[int, ...], hr_shape: tuple[int, ...], crop: int | None, generator: torch.Generator
) -> tuple[tuple[slice, slice], tuple[slice, slice]]:
    """The LR and HR (rows, columns) of one random window of ``crop`` HR pixels, aligned to the
    scale so that the two stay each other's pair; the whole patch when ``crop`` is None."""
    if crop is None:
        return (slice(None), slice(None)), (slice(None), slice(None))
    scale = hr_shape[-1] // lr_shape[-1]
    if crop % scale or not scale <= crop <= hr_shape[-1] or crop > hr_shape[-2]:
        raise ConfigError(f"train.patch_size ({crop}) must be a multiple of the scale ({scale}) and at most "
                          f"prepare.patch_size ({hr_shape[-1]})")
    c = crop // scale
    y, x = (int(torch.randint(0, n - c + 1, (1,), generator=generator)) for n in lr_shape[-2:])
    return (slice(y, y + c), slice(x, x + c)), (slice(y * scale, (y + c) * scale), slice(x * scale, (x + c) * scale))


def _dihedral(x: torch.Tensor, flips: torch.Tensor) -> torch.Tensor:
    """Per sample: flip horizontally, vertically and transpose where ``flips[0/1/2]`` say so (a
    non-square patch is never transposed).

    On the CPU each sample is copied once through a NumPy view of its transform: for a batch of 16
    48-pixel patches about a quarter of the time of the gather below, whose index tensor (8 bytes per
    pixel) costs more to build and read than the uint8 pixels it moves. On a GPU, one gather over the
    pixels of the whole batch, each sample reading through the pixel order of its transform (a
    third to a fifth of the time of a ``torch.where`` per transform). Both give the same batch."""
    return _dihedral_views(x, flips) if x.device.type == "cpu" else _dihedral_gather(x, flips)


def _dihedral_gather(x: torch.Tensor, flips: torch.Tensor) -> torch.Tensor:
    """:func:`_dihedral` on a GPU: one gather through each sample's pixel order."""
    n, c, h, w = x.shape
    bits = flips.reshape(3, n).long()
    code = bits[0] + 2 * bits[1] + (4 * bits[2] if h == w else 0)
    index = _dihedral_orders(h, w, x.device)[code]  # n x (h * w)
    return x.reshape(n, c, h * w).gather(2, index[:, None, :].expand(n, c, h * w)).view(n, c, h, w)


def _dihedral_views(x: torch.Tensor, flips: torch.Tensor) -> torch.Tensor:
    """:func:`_dihedral` on the CPU: one copy per sample of its flipped/transposed NumPy view."""
    pixels = x.numpy()
    square = pixels.shape[-1] == pixels.shape[-2]
    out = np.empty_like(pixels)
    for i, (horizontal, vertical, transpose) in enumerate(flips.reshape(3, -1).t().tolist()):
        sample = pixels[i]
        if horizontal:
            sample = sample[..., ::-1]
        if vertical:
            sample = sample[..., ::-1, :]
        if transpose and square:
            sample = sample.swapaxes(-1, -2)
        out[i] = sample
    return torch.from_numpy(out)


@functools.cache
def _dihedral_orders(h: int, w: int, device: torch.device) -> torch.Tensor:
    """Row ``code`` (bit 0: flip horizontally, 1: vertically, 2: transpose; square only) holds, for
    each output pixel of an ``h`` x ``w`` patch, the flat index of the input pixel it comes from."""
    grid = torch.arange(h * w, device=device).view(h, w)
    orders = []
    for code in range(8):
        order = grid.flip(-1) if code & 1 else grid
        order = order.flip(-2) if code & 2 else order
        order = order.transpose(-1, -2) if code & 4 and h == w else order
        orders.append(order.reshape(-1))
    return torch.stack(orders)
