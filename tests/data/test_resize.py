"""Tests of the MATLAB-compatible bicubic imresize."""

from __future__ import annotations

import math
import sys
from collections.abc import Iterator

import numpy as np
import pytest
import torch

from superres.data import resize
from superres.data.resize import imresize, imresize_np
from superres.errors import ConfigError, InvalidImageError


@pytest.fixture
def ramp() -> np.ndarray:
    return np.arange(64, dtype=np.float64).reshape(8, 8) / 63


# Values of MATLAB's imresize(x, scale, 'bicubic') on the 8x8 ramp.
def test_ramp_half(ramp: np.ndarray) -> None:
    out = imresize_np(ramp, 0.5)
    assert out.shape == (4, 4)
    np.testing.assert_allclose(out[0], [0.064174, 0.096540, 0.128658, 0.161024], atol=1e-6)


def test_ramp_quarter(ramp: np.ndarray) -> None:
    out = imresize_np(ramp, 0.25)
    np.testing.assert_allclose(out, [[0.196568, 0.263997], [0.736003, 0.803432]], atol=1e-6)


def test_ramp_half_without_antialias(ramp: np.ndarray) -> None:
    out = imresize_np(ramp, 0.5, antialias=False)
    np.testing.assert_allclose(out[0], [0.062500, 0.095238, 0.126984, 0.159722], atol=1e-6)


# A slow, loop-by-loop transcription of MATLAB's formulas, used only as an oracle.
def _oracle_cubic(x: float) -> float:
    ax = abs(x)
    if ax <= 1:
        return 1.5 * ax**3 - 2.5 * ax**2 + 1
    if ax <= 2:
        return -0.5 * ax**3 + 2.5 * ax**2 - 4 * ax + 2
    return 0.0


def _oracle_fold(i: int, n: int) -> int:
    """Mirror a 1-based index into 1..n, the edge pixel repeated (..., 2, 1 | 1, 2, ...)."""
    while i < 1 or i > n:
        i = 1 - i if i < 1 else 2 * n + 1 - i
    return i


def _oracle_1d(signal: list[float], out_len: int, scale: float) -> list[float]:
    n = len(signal)
    if scale < 1:
        width = 4 / scale

        def kernel(x: float) -> float:
            return scale * _oracle_cubic(scale * x)
    else:
        width = 4.0
        kernel = _oracle_cubic
    out = []
    for i in range(1, out_len + 1):
        u = i / scale + 0.5 * (1 - 1 / scale)
        left = math.floor(u - width / 2)
        taps = [left + p for p in range(math.ceil(width) + 2)]
        weights = [kernel(u - t) for t in taps]
        total = sum(weights)
        out.append(
            sum(w / total * signal[_oracle_fold(t, n) - 1] for w, t in zip(weights, taps, strict=True))
        )
    return out


def _oracle(img: np.ndarray, scale: float) -> np.ndarray:
    h, w = img.shape
    out_h, out_w = math.ceil(h * scale - 1e-9), math.ceil(w * scale - 1e-9)
    cols = [_oracle_1d(list(img[:, x]), out_h, scale) for x in range(w)]
    rows_resized = np.array(cols).T  # out_h x w
    return np.array([_oracle_1d(list(row), out_w, scale) for row in rows_resized])


@pytest.mark.parametrize("scale", [0.5, 1 / 3, 0.25, 2, 3, 4])
def test_matches_per_pixel_oracle(scale: float) -> None:
    img = np.random.default_rng(0).random((13, 10))
    expected = _oracle(img, scale)
    out = imresize_np(img, scale)
    assert out.shape == expected.shape
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-10)


@pytest.mark.parametrize("scale", [2, 3, 0.5, 1 / 3])
def test_constant_image_stays_constant(scale: float) -> None:
    x = torch.full((3, 9, 7), 0.37, dtype=torch.float64)
    out = imresize(x, scale=scale)
    torch.testing.assert_close(out, torch.full_like(out, 0.37), rtol=0, atol=1e-12)


@pytest.mark.parametrize(
    ("shape", "scale", "expected"),
    [
        ((7, 5), 0.5, (4, 3)),
        ((10, 10), 1 / 3, (4, 4)),
        ((5, 4), 3, (15, 12)),
        ((300, 300), 1 / 3, (100, 100)),
        ((30, 20), 0.1, (3, 2)),
    ],
)
def test_output_shape(shape: tuple[int, int], scale: float, expected: tuple[int, int]) -> None:
    assert imresize(torch.zeros(2, *shape), scale=scale).shape == (2, *expected)


def test_size_argument_matches_scale(ramp: np.ndarray) -> None:
    x = torch.from_numpy(ramp)
    torch.testing.assert_close(imresize(x, size=(4, 4)), imresize(x, scale=0.5))
    assert imresize(x, size=(5, 12)).shape == (5, 12)


def test_batch_equals_per_image() -> None:
    x = torch.rand(3, 3, 11, 9, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    for scale in (0.5, 3):
        batch = imresize(x, scale=scale)
        for n in range(x.shape[0]):
            torch.testing.assert_close(batch[n], imresize(x[n], scale=scale), rtol=0, atol=1e-14)


def test_float32_close_to_float64() -> None:
    x = torch.rand(3, 16, 12, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    for scale in (0.25, 0.5, 2, 4):
        out64 = imresize(x, scale=scale)
        out32 = imresize(x.float(), scale=scale)
        assert out32.dtype == torch.float32
        torch.testing.assert_close(out32.double(), out64, rtol=0, atol=1e-5)


def test_no_rounding_or_clipping() -> None:
    x = torch.zeros(1, 8, 8, dtype=torch.float64)
    x[..., 4:] = 1.0
    out = imresize(x, scale=2)
    assert out.max() > 1.0 and out.min() < 0.0  # bicubic overshoot at the step is kept


def test_imresize_np_hwc_matches_channels() -> None:
    img = np.random.default_rng(3).random((9, 6, 3))
    out = imresize_np(img, 2)
    assert out.shape == (18, 12, 3) and out.dtype == np.float64
    for ch in range(3):
        np.testing.assert_allclose(out[..., ch], imresize_np(img[..., ch], 2), atol=1e-14)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"scale": 0},
        {"scale": -2},
        {"scale": float("nan")},
        {"scale": float("inf")},
        {},
        {"scale": 2, "size": (4, 4)},
        {"size": (0, 4)},
        {"size": (4,)},
    ],
)
def test_bad_arguments_raise_config_error(kwargs: dict) -> None:
    with pytest.raises(ConfigError):
        imresize(torch.zeros(1, 8, 8), **kwargs)


def test_non_float_input_raises() -> None:
    with pytest.raises(InvalidImageError):
        imresize(torch.zeros(8, 8, dtype=torch.uint8), scale=2)
    with pytest.raises(InvalidImageError):
        imresize_np(np.zeros((8, 8), dtype=np.uint8), 2)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu() -> None:
    x = torch.rand(2, 3, 20, 16, generator=torch.Generator().manual_seed(4))
    for scale in (0.25, 3):
        out = imresize(x.cuda(), scale=scale)
        assert out.device.type == "cuda"
        torch.testing.assert_close(out.cpu(), imresize(x, scale=scale), rtol=0, atol=1e-5)


@pytest.fixture
def banded(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Make imresize take the banded path at every size, with small blocks so that tiny images have several."""
    monkeypatch.setattr(resize, "_BLOCK_SPAN", 8)
    monkeypatch.setattr(resize, "_BANDED_MIN_NUMEL", 0)
    monkeypatch.setattr(resize, "_BANDED_MAX_DENSITY", 1.0)
    resize._bands.cache_clear()
    yield
    resize._bands.cache_clear()


def _dense(monkeypatch: pytest.MonkeyPatch, x: torch.Tensor, scale: float) -> torch.Tensor:
    with monkeypatch.context() as m:
        m.setattr(resize, "_BANDED_MIN_NUMEL", sys.maxsize)
        return imresize(x, scale=scale)


def _channels_last(shape: tuple[int, ...], seed: int) -> torch.Tensor:
    """A CHW view of an HWC array, as imresize_np and the degradation pass it."""
    c, h, w = shape
    return torch.rand(h, w, c, generator=torch.Generator().manual_seed(seed), dtype=torch.float64).permute(2, 0, 1)


@pytest.mark.parametrize("scale", [0.5, 1 / 3, 0.25, 2, 3, 4])
@pytest.mark.parametrize(
    "make",
    [
        lambda: torch.rand(37, 29, generator=torch.Generator().manual_seed(5), dtype=torch.float64),
        lambda: torch.rand(2, 3, 41, 33, generator=torch.Generator().manual_seed(6), dtype=torch.float64),
        lambda: _channels_last((3, 45, 31), seed=7),
        lambda: torch.rand(2, 5, 39, 43, generator=torch.Generator().manual_seed(8), dtype=torch.float64)[..., ::2, 1:],
    ],
    ids=["HW", "NCHW", "channels-last", "strided"],
)
def test_banded_path_equals_dense_path(banded: None, monkeypatch: pytest.MonkeyPatch, make, scale: float) -> None:
    x = make()
    h, w = x.shape[-2:]
    out_h, out_w = resize._out_len(h, scale), resize._out_len(w, scale)
    for in_len, out_len in ((h, out_h), (w, out_w)):  # the banded path is really taken, with several blocks
        bands = resize._bands(in_len, out_len, scale, True)
        assert len(bands.blocks) > 1 and resize._prefer_bands(x, bands)
    out = imresize(x, scale=scale)
    expected = _dense(monkeypatch, x, scale)
    assert out.shape == expected.shape == (*x.shape[:-2], out_h, out_w)
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-10)


def test_banded_path_matches_oracle(banded: None) -> None:
    img = np.random.default_rng(9).random((23, 19))
    for scale in (0.25, 3):
        np.testing.assert_allclose(imresize_np(img, scale), _oracle(img, scale), rtol=0, atol=1e-10)


def test_banded_path_gradients(banded: None, monkeypatch: pytest.MonkeyPatch) -> None:
    x = torch.rand(2, 3, 17, 15, generator=torch.Generator().manual_seed(10), dtype=torch.float64)
    torch.autograd.gradcheck(lambda t: imresize(t, scale=2), (x.clone().requires_grad_(True),))
    grads = []
    for fn in (lambda t: imresize(t, scale=3), lambda t: _dense(monkeypatch, t, 3)):
        leaf = x.clone().requires_grad_(True)
        (fn(leaf) * torch.linspace(0, 1, 45, dtype=torch.float64)).sum().backward()
        grads.append(leaf.grad)
    assert grads[0].abs().sum() > 0
    torch.testing.assert_close(grads[0], grads[1], rtol=0, atol=1e-10)


def test_path_choice_by_size() -> None:
    """Large CPU images go banded; training patches keep the dense matmul, which is faster there."""
    assert resize._prefer_bands(torch.empty(3, 1356, 2040), resize._bands(1356, 339, 0.25, True))
    assert resize._prefer_bands(torch.empty(1, 3, 512, 512), resize._bands(512, 2048, 4.0, True))
    assert not resize._prefer_bands(torch.empty(16, 3, 24, 24), resize._bands(24, 48, 2.0, True))
    assert not resize._prefer_bands(torch.empty(3, 64, 64), resize._bands(64, 16, 0.25, True))


@pytest.mark.parametrize("scale", [2, 0.5])
def test_autocast_leaves_the_resize_in_fp32(scale: float) -> None:
    """Inside a bf16 autocast region (a model's forward) the bicubic stays the fp32 one, bit for bit."""
    x = torch.rand(1, 3, 24, 20, generator=torch.Generator().manual_seed(0))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        inside = imresize(x, scale=scale)
    assert inside.dtype == torch.float32
    assert torch.equal(inside, imresize(x, scale=scale))
