"""Training patches in memory: LR/HR pairs as uint8 arrays, sampled with random flips and
rotations. The arrays may be memory-mapped ``.npy`` files, so nothing is decoded per sample."""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from superres.errors import ConfigError


class PatchDataset(Dataset):
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

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        lr = torch.from_numpy(np.array(self.lr[index], dtype=np.float32)).div_(255.0)
        hr = torch.from_numpy(np.array(self.hr[index], dtype=np.float32)).div_(255.0)
        if self.augment:
            flips = torch.randint(0, 2, (3,))
            if flips[0]:
                lr, hr = lr.flip(-1), hr.flip(-1)
            if flips[1]:
                lr, hr = lr.flip(-2), hr.flip(-2)
            if flips[2]:
                lr, hr = lr.transpose(-1, -2), hr.transpose(-1, -2)
        return lr.contiguous(), hr.contiguous()
