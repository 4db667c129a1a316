"""Aligned LR/HR training patches cut on a regular grid."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np


def grid(length: int, patch: int, stride: int) -> list[int]:
    """Top-left offsets along one side: every ``stride``, plus the last patch flush with the edge."""
    if length < patch:
        return []
    offsets = list(range(0, length - patch + 1, stride))
    if offsets[-1] != length - patch:
        offsets.append(length - patch)
    return offsets


def extract_patches(
    pairs: Iterable[tuple[np.ndarray, np.ndarray]], scale: int, patch_size: int, stride: int
) -> tuple[np.ndarray, np.ndarray]:
    """Cut ``(lr, hr)`` uint8 H x W x C pairs into N x 3 x p x p LR and N x 3 x sp x sp HR patches.

    ``patch_size`` and ``stride`` are in HR pixels and must be multiples of ``scale``. A gray
    image gives 3-channel patches (the channel repeated), as models are trained on RGB.
    """
    lp, ls = patch_size // scale, stride // scale
    lr_out: list[np.ndarray] = []
    hr_out: list[np.ndarray] = []
    for lr, hr in pairs:
        if lr.shape[2] == 1:
            lr = np.repeat(lr, 3, axis=2)
        if hr.shape[2] == 1:
            hr = np.repeat(hr, 3, axis=2)
        for y in grid(lr.shape[0], lp, ls):
            for x in grid(lr.shape[1], lp, ls):
                lr_out.append(lr[y : y + lp, x : x + lp].transpose(2, 0, 1))
                hr_out.append(hr[y * scale : (y + lp) * scale, x * scale : (x + lp) * scale].transpose(2, 0, 1))
    if not lr_out:
        return np.zeros((0, 3, lp, lp), np.uint8), np.zeros((0, 3, patch_size, patch_size), np.uint8)
    return np.stack(lr_out), np.stack(hr_out)
