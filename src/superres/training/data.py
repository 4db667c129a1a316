"""Training patches in memory: LR/HR pairs as uint8 arrays, sampled with random flips and
rotations. The arrays may be memory-mapped ``.npy`` files, so nothing is decoded per sample."""

from __future__ import annotations

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
            raise ConfigError(f"training patches: {len(lr)} LR patches but {len(hr)} HR patches; rerun the prepare stage")
        if len(lr) == 0:
            raise ConfigError("training patches: none were made; use more or larger images, or a smaller prepare.patch_size")
        self.lr, self.hr, self.augment = lr, hr, augment

    def __len__(self) -> int:
        return len(self.lr)

    def batch(
        self, size: int, generator: torch.Generator, crop: int | None = None, device: torch.device | str = "cpu"
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``size`` random pairs as uint8 NCHW tensors, drawn and augmented from ``generator`` alone.

        One fancy-indexing read per array, and the dihedral transforms applied to the whole
        batch with masks: no Python per sample, so this keeps well ahead of the trainer.
        ``crop`` (HR pixels, a multiple of the scale) cuts one random aligned window of that size
        out of the stored patches, so an architecture can train on smaller patches than prepared.
        The uint8 batch moves to ``device`` before it is augmented, so a GPU does that work.
        """
        index = torch.randint(0, len(self.lr), (size,), generator=generator).numpy()
        lr, hr = torch.from_numpy(np.asarray(self.lr[index])), torch.from_numpy(np.asarray(self.hr[index]))
        if crop is not None:
            lr, hr = _aligned_crop(lr, hr, crop, generator)
        lr, hr = lr.to(device, non_blocking=True), hr.to(device, non_blocking=True)  # uint8: 4x fewer bytes to move
        if self.augment:
            flips = torch.randint(0, 2, (3, size, 1, 1, 1), generator=generator, dtype=torch.bool).to(lr.device)
            lr, hr = (_dihedral(x, flips) for x in (lr, hr))
        return lr.contiguous(), hr.contiguous()


def _aligned_crop(lr: torch.Tensor, hr: torch.Tensor, crop: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    scale = hr.shape[-1] // lr.shape[-1]
    if crop % scale or not scale <= crop <= hr.shape[-1] or crop > hr.shape[-2]:
        raise ConfigError(f"train.patch_size ({crop}) must be a multiple of the scale ({scale}) and at most "
                          f"prepare.patch_size ({hr.shape[-1]})")
    c = crop // scale
    y, x = (int(torch.randint(0, n - c + 1, (1,), generator=generator)) for n in lr.shape[-2:])
    return lr[..., y : y + c, x : x + c], hr[..., y * scale : (y + c) * scale, x * scale : (x + c) * scale]


def _dihedral(x: torch.Tensor, flips: torch.Tensor) -> torch.Tensor:
    """Per sample: flip horizontally, vertically and transpose where ``flips[0/1/2]`` say so."""
    x = torch.where(flips[0], x.flip(-1), x)
    x = torch.where(flips[1], x.flip(-2), x)
    if x.shape[-1] == x.shape[-2]:
        x = torch.where(flips[2], x.transpose(-1, -2), x)
    return x
