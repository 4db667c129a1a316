"""Tests of the evaluation metrics."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from superres.errors import ConfigError, InvalidImageError
from superres.metrics import aggregate, image_metrics, json_safe, psnr, rgb_to_y, ssim


@pytest.fixture
def pair() -> tuple[np.ndarray, np.ndarray]:
    """A fixed (sr, gt) pair of 48x40 RGB uint8 images."""
    i, j, c = np.meshgrid(np.arange(48), np.arange(40), np.arange(3), indexing="ij")
    b = (7 * i + 13 * j + 50 * c) % 256
    s = np.clip(b + ((i * j + 31 * c) % 17) - 8, 0, 255)
    gt = b.astype(np.uint8)[..., ::-1]
    sr = s.astype(np.uint8)[..., ::-1]
    return sr, gt


@pytest.mark.parametrize(
    ("shave", "rgb_psnr", "rgb_ssim", "y_psnr", "y_ssim"),
    [
        (0, 34.234990, 0.985636, 38.856305, 0.990982),
        (4, 34.287652, 0.985505, 38.878599, 0.990833),
    ],
)
def test_reference_values(pair, shave, rgb_psnr, rgb_ssim, y_psnr, y_ssim) -> None:
    sr, gt = pair
    assert psnr(sr, gt, shave=shave) == pytest.approx(rgb_psnr, abs=1e-5)
    assert ssim(sr, gt, shave=shave) == pytest.approx(rgb_ssim, abs=1e-5)
    assert psnr(sr, gt, shave=shave, y_channel=True) == pytest.approx(y_psnr, abs=1e-5)
    assert ssim(sr, gt, shave=shave, y_channel=True) == pytest.approx(y_ssim, abs=1e-5)


def test_image_metrics(pair) -> None:
    sr, gt = pair
    m = image_metrics(sr, gt, scale=4)
    assert set(m) == {"psnr_y", "ssim_y", "psnr_rgb", "mae", "mse"}
    assert m["psnr_y"] == pytest.approx(38.878599, abs=1e-5)
    assert m["ssim_y"] == pytest.approx(0.990833, abs=1e-5)
    assert m["psnr_rgb"] == pytest.approx(34.287652, abs=1e-5)
    diff = (sr[4:-4, 4:-4].astype(np.float64) - gt[4:-4, 4:-4]) / 255
    assert m["mae"] == pytest.approx(np.abs(diff).mean())
    assert m["mse"] == pytest.approx((diff**2).mean())
    # PSNR and MSE agree: both in [0, 1] scale here.
    assert m["psnr_rgb"] == pytest.approx(10 * math.log10(1 / m["mse"]))


def test_image_metrics_requires_uint8(pair) -> None:
    sr, gt = pair
    with pytest.raises(InvalidImageError, match="uint8"):
        image_metrics(sr / 255.0, gt, scale=2)


def test_identical_images(pair) -> None:
    _, gt = pair
    assert psnr(gt, gt) == math.inf
    assert psnr(gt, gt, y_channel=True, shave=2) == math.inf
    assert ssim(gt, gt) == pytest.approx(1.0)
    assert ssim(gt, gt, y_channel=True) == pytest.approx(1.0)


def test_known_mse() -> None:
    hr = np.full((20, 20, 3), 100, dtype=np.uint8)
    sr = hr + np.uint8(1)
    assert psnr(sr, hr) == pytest.approx(48.1308036, abs=1e-6)
    assert psnr(sr, hr) == pytest.approx(10 * math.log10(255**2))
    assert psnr(sr / 255.0, hr / 255.0, data_range=1.0) == pytest.approx(48.1308036, abs=1e-6)


def test_rgb_to_y() -> None:
    img = np.array([[[0, 0, 0], [255, 255, 255], [255, 0, 0]]], dtype=np.float64)
    y = rgb_to_y(img)
    assert y.shape == (1, 3)
    np.testing.assert_allclose(y[0], [16.0, 235.0, 16 + 65.481])


def test_gray_images(pair) -> None:
    sr, gt = pair
    gray_sr, gray_gt = sr[..., 1], gt[..., 1]
    np.testing.assert_array_equal(rgb_to_y(gray_gt), gray_gt)
    np.testing.assert_array_equal(rgb_to_y(gray_gt[..., None]), gray_gt)
    plain = psnr(gray_sr, gray_gt, shave=2)
    assert psnr(gray_sr, gray_gt, shave=2, y_channel=True) == plain
    assert psnr(gray_sr[..., None], gray_gt[..., None], shave=2, y_channel=True) == plain
    assert ssim(gray_sr[..., None], gray_gt[..., None]) == ssim(gray_sr, gray_gt)
    m = image_metrics(gray_sr[..., None], gray_gt[..., None], scale=2)
    assert m["psnr_y"] == m["psnr_rgb"] == pytest.approx(plain)


def test_mismatched_shapes(pair) -> None:
    sr, gt = pair
    with pytest.raises(InvalidImageError, match=r"\(46, 40, 3\).*\(48, 40, 3\)"):
        psnr(sr[:46], gt)
    with pytest.raises(InvalidImageError):
        ssim(sr[:, :38], gt)


def test_too_small_for_shave() -> None:
    img = np.zeros((8, 10, 3), dtype=np.uint8)
    with pytest.raises(InvalidImageError, match="8x10 is too small to shave 4"):
        psnr(img, img, shave=4)
    with pytest.raises(InvalidImageError, match="too small"):
        ssim(img, img, shave=0)  # smaller than the 11x11 window
    big = np.zeros((16, 16), dtype=np.uint8)
    with pytest.raises(InvalidImageError, match="too small"):
        image_metrics(big, big, scale=4)  # 8x8 left for SSIM


def test_aggregate() -> None:
    per_image = [{"psnr_y": 30.0, "mse": 0.1}, {"psnr_y": 32.0, "mse": 0.3}]
    assert aggregate(per_image) == pytest.approx({"psnr_y": 31.0, "mse": 0.2})
    with_inf = [{"psnr_y": 30.0}, {"psnr_y": math.inf}]
    assert aggregate(with_inf)["psnr_y"] == math.inf
    with pytest.raises(ConfigError):
        aggregate([])
    with pytest.raises(ValueError):
        aggregate([{"a": 1.0}, {"b": 2.0}])


def test_json_safe() -> None:
    value = {
        "psnr": math.inf,
        "low": -math.inf,
        "ssim": math.nan,
        "n": np.float64(2.5),
        "list": (1, np.float32(math.inf)),
        "name": "x",
    }
    safe = json_safe(value)
    assert safe == {
        "psnr": "inf",
        "low": "-inf",
        "ssim": None,
        "n": 2.5,
        "list": [1, "inf"],
        "name": "x",
    }
    json.dumps(safe, allow_nan=False)  # strict JSON
