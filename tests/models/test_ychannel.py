"""Luminance-only models (``color: y``): MATLAB's YCbCr both ways, the chroma upscaled by the MATLAB
bicubic, gray images, and create_model's checks of the key."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import SMALL_MODELS as SMALL

from superres.data.resize import imresize
from superres.errors import ConfigError
from superres.metrics import rgb_to_y
from superres.models import REGISTRY, create_model
from superres.models.ychannel import YChannel, rgb_to_ycbcr, ycbcr_to_rgb


class Identity(torch.nn.Module):
    """A "network" that upscales Y with the same bicubic as the chroma: the wrapper must then be
    exactly bicubic on every channel (the conversions are linear)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return imresize(x, scale=2)


def test_luma_is_matlab_rgb2ycbcr_and_the_conversion_inverts():
    rgb = torch.rand(2, 3, 9, 7, dtype=torch.float64)
    ycbcr = rgb_to_ycbcr(rgb)
    image = (rgb[0].permute(1, 2, 0).numpy() * 255)
    np.testing.assert_allclose(ycbcr[0, 0].numpy() * 255, rgb_to_y(image), atol=1e-9)
    assert float(ycbcr[:, 0].min()) >= 16 / 255 - 1e-12 and float(ycbcr[:, 0].max()) <= 235 / 255 + 1e-12
    np.testing.assert_allclose(ycbcr_to_rgb(ycbcr).numpy(), rgb.numpy(), atol=1e-12)


def test_the_wrapper_runs_the_network_on_y_and_bicubic_on_the_chroma():
    rgb = torch.rand(1, 3, 12, 10, dtype=torch.float64)
    out = YChannel(Identity(), 2)(rgb)
    torch.testing.assert_close(out, imresize(rgb, scale=2), atol=1e-10, rtol=0)


def test_a_gray_image_is_its_own_luma():
    gray = torch.rand(1, 1, 8, 8, dtype=torch.float64)
    seen = []

    class Spy(torch.nn.Module):
        def forward(self, x):
            seen.append(x)
            return imresize(x, scale=2)

    out = YChannel(Spy(), 2)(gray)
    torch.testing.assert_close(seen[0], 16 / 255 + gray * 219 / 255)  # the studio range of a colour image's Y
    torch.testing.assert_close(out, imresize(gray, scale=2))


@pytest.mark.parametrize("name", [n for n in REGISTRY if n != "bicubic"])
def test_every_network_can_run_on_the_luminance(name):
    model = create_model(name, scale=2, color="y", **SMALL[name])
    assert isinstance(model, YChannel) and all(k.startswith("net.") for k in model.state_dict())
    assert model(torch.rand(1, 3, 10, 12)).shape == (1, 3, 20, 24)
    assert model(torch.rand(1, 1, 10, 12)).shape == (1, 1, 20, 24)


def test_color_is_checked():
    with pytest.raises(ConfigError, match=r"srcnn\.model\.color must be one of rgb, y, got 'ycbcr'"):
        create_model("srcnn", scale=2, color="ycbcr")
    with pytest.raises(ConfigError, match="color: y runs a one-channel network, but channels is 3"):
        create_model("srcnn", scale=2, color="y", channels=3)
    with pytest.raises(ConfigError, match="bicubic has no network"):
        create_model("bicubic", scale=2, color="y")
