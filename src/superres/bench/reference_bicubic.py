"""REFERENCE ONLY: a straightforward numpy port of MATLAB's bicubic ``imresize``, as found in common SR code.

It exists for the bench, which needs an independent implementation of the same formula to set the
project's against: the speed-up of :func:`superres.data.resize.imresize` over it is a target, and
the two must agree (max abs difference <= 1e-5; a test pins it to 1e-12). It is per-pixel
contributions, then a loop over output rows and columns accumulating weighted sums: slow on purpose.
The project never resizes with it.
"""

from __future__ import annotations

import math

import numpy as np


def _reference_cubic(x: np.ndarray) -> np.ndarray:
    absx = np.abs(x)
    absx2, absx3 = absx**2, absx**3
    return ((1.5 * absx3 - 2.5 * absx2 + 1) * (absx <= 1)
            + (-0.5 * absx3 + 2.5 * absx2 - 4 * absx + 2) * ((absx > 1) & (absx <= 2)))


def _reference_contributions(in_len: int, out_len: int, scale: float, antialias: bool) -> tuple[np.ndarray, np.ndarray]:
    """Per output pixel: its tap weights and its (mirrored, 0-based) input indices, as MATLAB computes them."""
    shrink = scale < 1 and antialias
    width = 4.0 / scale if shrink else 4.0
    weights = np.zeros((out_len, int(math.ceil(width)) + 2))
    indices = np.zeros(weights.shape, dtype=np.int64)
    for i in range(out_len):
        u = (i + 1) / scale + 0.5 * (1 - 1 / scale)
        left = math.floor(u - width / 2)
        for j in range(weights.shape[1]):
            index = left + j
            distance = u - index
            weights[i, j] = scale * _reference_cubic(scale * distance) if shrink else _reference_cubic(distance)
            k = (index - 1) % (2 * in_len)
            indices[i, j] = k if k < in_len else 2 * in_len - 1 - k
        weights[i] /= weights[i].sum()
    return weights, indices


def reference_imresize(img: np.ndarray, scale: float, antialias: bool = True) -> np.ndarray:
    """REFERENCE ONLY, the benchmark's baseline: the straightforward numpy port of MATLAB's bicubic
    ``imresize`` as found in common SR code (per-pixel contributions, then a loop over output rows and
    columns accumulating weighted sums). ``superres.data.resize.imresize`` is the implementation the project uses."""
    out = img.astype(np.float64)
    for axis in (0, 1):  # equal scales: height first, as MATLAB
        in_len = out.shape[axis]
        out_len = int(math.ceil(in_len * scale))
        weights, indices = _reference_contributions(in_len, out_len, scale, antialias)
        moved = np.moveaxis(out, axis, 0)
        result = np.zeros((out_len, *moved.shape[1:]))
        for i in range(out_len):
            result[i] = np.tensordot(weights[i], moved[indices[i]], axes=1)
        out = np.moveaxis(result, 0, axis)
    return out
