"""Tiled inference: the same output as the whole image within one level, no seams, spans that cover the image once."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from superres.inference import super_resolve, super_resolve_tiled, tile_spans
from superres.models import create_model


def rng_image(shape: tuple[int, ...], seed: int = 0, dtype=np.uint8, high: int = 256) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, high, shape, dtype=dtype)


@pytest.mark.parametrize(("architecture", "config"),
                         [("edsr", {"n_resblocks": 2, "n_feats": 8}), ("srcnn", {"f1": 8, "f2": 4})])
@pytest.mark.parametrize("channels", [3, 1])
def test_tiled_matches_untiled(architecture, config, channels):
    torch.manual_seed(0)
    model = create_model(architecture, scale=2, **config).eval()
    image = rng_image((45, 71, channels))  # several tiles of 16, sizes no multiple of the tile
    whole = super_resolve(model, image)
    tiled = super_resolve_tiled(model, image, tile=16, overlap=16)
    assert tiled.shape == whole.shape == (90, 142, channels)
    assert np.abs(tiled.astype(int) - whole).max() <= 1


def test_small_overlap_has_no_seams():
    """With too little context tiles differ from the whole image, but the blend spreads the error: no
    row or column at a tile boundary stands out."""
    torch.manual_seed(0)
    model = create_model("edsr", scale=2, n_resblocks=4, n_feats=8).eval()
    image = np.repeat(np.linspace(0, 255, 64, dtype=np.uint8)[None, :, None], 64, axis=0).repeat(3, axis=2)
    whole = super_resolve(model, image).astype(int)
    tiled = super_resolve_tiled(model, image, tile=16, overlap=4).astype(int)
    column_error = np.abs(tiled - whole).mean(axis=(0, 2))
    assert column_error.max() <= 1.0


def test_tile_spans_cover_the_image_once():
    spans = tile_spans(100, 32, 8)
    cores = [(a, b) for _, _, a, b in spans]
    assert cores[0][0] == 0 and cores[-1][1] == 100 and all(b == c for (_, b), (c, _) in itertools.pairwise(cores))
    assert all(max(a - 8, 0) == s and min(b + 8, 100) == e for s, e, a, b in spans)


def test_tiled_x4_in_several_bands_per_tile_row():
    torch.manual_seed(0)
    model = create_model("edsr", scale=4, n_resblocks=1, n_feats=8).eval()
    image = rng_image((150, 77, 3))  # tile rows of 64 + context give more output rows than one band holds
    tiled = super_resolve_tiled(model, image, tile=64, overlap=16)
    assert tiled.shape == (600, 308, 3)
    assert np.abs(tiled.astype(int) - super_resolve(model, image)).max() <= 1
