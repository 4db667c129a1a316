"""Degradation, modcrop, patches and the split."""

from __future__ import annotations

import numpy as np
import pytest

from superres.data.degrade import Degradation, degrade, modcrop
from superres.data.patches import extract_patches, grid
from superres.data.split import split_images
from superres.errors import ConfigError


def image(h=40, w=30, c=3, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, c), dtype=np.uint8)


def test_modcrop_trims_to_a_multiple_of_the_scale():
    assert modcrop(image(41, 30), 4).shape == (40, 28, 3)


def test_degrade_shrinks_and_is_seeded():
    hr = modcrop(image(40, 30), 2)
    lr = degrade(hr, 2)
    assert lr.shape == (20, 15, 3) and lr.dtype == np.uint8
    noisy = Degradation(noise_sigma=5.0, blur_sigma=0.8, jpeg_quality=60, grayscale=True)
    a, b, c = degrade(hr, 2, noisy, seed=1), degrade(hr, 2, noisy, seed=1), degrade(hr, 2, noisy, seed=2)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert np.array_equal(a[..., 0], a[..., 1])  # grayscale kept on 3 channels


def test_degradation_parameters_are_checked():
    with pytest.raises(ConfigError, match="jpeg_quality"):
        Degradation.from_params({"jpeg_quality": 0})
    with pytest.raises(ConfigError, match="unknown key"):
        Degradation.from_params({"blur": 1})


def test_patches_are_aligned_and_cover_the_edges():
    assert grid(10, 4, 4) == [0, 4, 6]
    hr = image(16, 12)
    lr = hr[::2, ::2]  # a stand-in LR whose pixel (i, j) is HR pixel (2i, 2j)
    lr_p, hr_p = extract_patches([(lr, hr)], scale=2, patch_size=8, stride=8)
    assert lr_p.shape == (4, 3, 4, 4) and hr_p.shape == (4, 3, 8, 8)
    assert np.array_equal(hr_p[:, :, ::2, ::2], lr_p)
    gray_lr, gray_hr = extract_patches([(lr[..., :1], hr[..., :1])], 2, 8, 8)
    assert gray_lr.shape[1] == 3 and np.array_equal(gray_lr[:, 0], gray_lr[:, 2])


def test_split_is_by_image_seeded_and_independent_of_order():
    names = [f"img{i:02d}" for i in range(20)]
    a = split_images(names, {"train": 0.8, "val": 0.1, "test": 0.1}, seed=3)
    b = split_images(reversed(names), {"train": 0.8, "val": 0.1, "test": 0.1}, seed=3)
    c = split_images(names, {"train": 0.8, "val": 0.1, "test": 0.1}, seed=4)
    assert a == b and a != c
    assert sorted(a.values()).count("test") == 2 and sorted(a.values()).count("val") == 2


def test_split_needs_training_images():
    with pytest.raises(ConfigError, match="none for training"):
        split_images(["a", "b"], {"train": 0.0, "val": 0.5, "test": 0.5}, seed=0)
