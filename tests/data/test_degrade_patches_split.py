"""Degradation, modcrop, patches and the split."""

from __future__ import annotations

import numpy as np
import pytest

from superres.data.degrade import Degradation, degrade, modcrop
from superres.data.patches import extract_patches, grid
from superres.data.sources import EMBEDDED_GROUPS, EMBEDDED_IMAGES
from superres.data.split import check_fractions, split_counts, split_images
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
    assert gray_lr.shape[1] == gray_hr.shape[1] == 3 and np.array_equal(gray_lr[:, 0], gray_lr[:, 2])


def test_split_is_by_image_seeded_and_independent_of_order():
    names = [f"img{i:02d}" for i in range(20)]
    a = split_images(names, {"train": 0.8, "val": 0.1, "test": 0.1}, seed=3)
    b = split_images(reversed(names), {"train": 0.8, "val": 0.1, "test": 0.1}, seed=3)
    c = split_images(names, {"train": 0.8, "val": 0.1, "test": 0.1}, seed=4)
    assert a == b and a != c
    assert sorted(a.values()).count("test") == 2 and sorted(a.values()).count("val") == 2


def test_split_needs_training_images():
    with pytest.raises(ConfigError, match="prepare.split.train is 0"):
        split_images(["a", "b", "c"], {"train": 0.0, "val": 0.5, "test": 0.5}, seed=0)
    with pytest.raises(ConfigError, match="2 usable image"):
        split_images(["a", "b"], {"train": 0.8, "val": 0.1, "test": 0.1}, seed=0)  # val and test need one each


@pytest.mark.parametrize("fractions", [{"train": 0.8, "val": 0.19, "test": 0.1},
                                       {"train": 0.7, "val": 0.1, "test": 0.1}])
def test_fractions_that_do_not_sum_to_one_are_refused_with_their_sum(fractions):
    total = sum(fractions.values())
    with pytest.raises(ConfigError, match=rf"prepare.split: the fractions sum to {total:g}"):
        split_images([f"i{k}" for k in range(10)], fractions, seed=0)


def test_fractions_sum_to_one_within_rounding():
    assert 0.7 + 0.2 + 0.1 != 1  # in floating point
    assert split_counts(10, {"train": 0.7, "val": 0.2, "test": 0.1}) == {"val": 2, "test": 1, "train": 7}
    assert split_counts(19, {"train": 0.7, "val": 0.15, "test": 0.15}) == {"val": 3, "test": 3, "train": 13}


@pytest.mark.parametrize("fractions", [{"train": 1.2, "val": -0.1, "test": -0.1}, {"train": "0.8", "val": 0.1},
                                       {"train": 0.8, "valid": 0.2}, [0.8, 0.1, 0.1]])
def test_bad_fractions_name_the_parameter(fractions):
    with pytest.raises(ConfigError, match="prepare.split"):
        check_fractions(fractions)


def test_a_group_lands_in_one_split_and_the_counts_stay_exact():
    names = [f"img{i:02d}" for i in range(17)] + ["pair_left", "pair_right"]
    groups = {"pair_left": "pair", "pair_right": "pair"}
    fractions = {"train": 0.7, "val": 0.15, "test": 0.15}
    together = set()
    for seed in range(40):
        split = split_images(names, fractions, seed, groups=groups)
        assert split == split_images(reversed(names), fractions, seed, groups=groups)  # seeded, order-free
        assert split["pair_left"] == split["pair_right"]
        together.add(split["pair_left"])
        assert [list(split.values()).count(s) for s in ("train", "val", "test")] == [13, 3, 3]
    assert together == {"train", "val", "test"}  # the group is dealt like any image, not parked in train
    # without the group, some seed separates the pair: the group is what keeps it together
    assert any(len({split_images(names, fractions, s)[n] for n in ("pair_left", "pair_right")}) == 2
               for s in range(40))


def test_groups_that_cannot_fill_a_split_are_refused():
    with pytest.raises(ConfigError, match="4 images, 2 units .* leave val and test empty"):
        split_images(["a1", "a2", "b1", "b2"], {"train": 0.5, "val": 0.25, "test": 0.25}, seed=0,
                     groups={"a1": "a", "a2": "a", "b1": "b", "b2": "b"})


def test_the_embedded_photographs_split_keeps_the_stereo_pair_together():
    for seed in range(10):
        split = split_images(EMBEDDED_IMAGES, {"train": 0.7, "val": 0.15, "test": 0.15}, seed, groups=EMBEDDED_GROUPS)
        assert split["motorcycle_left"] == split["motorcycle_right"]
        assert [list(split.values()).count(s) for s in ("train", "val", "test")] == [12, 3, 3]
    assert set(EMBEDDED_GROUPS) <= set(EMBEDDED_IMAGES)
