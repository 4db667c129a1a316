"""The whole measuring chain against the published bicubic row on Set5: modcrop, MATLAB
bicubic down (LR rounded to 8 bits), bicubic up, PSNR/SSIM on Y with ``scale`` pixels shaved."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import SET5

from superres.data.degrade import bicubic_resize, degrade, modcrop
from superres.data.imageio import read_image
from superres.metrics import image_metrics

# Published bicubic baselines on Set5 (e.g. Kim et al. 2016, Lim et al. 2017): PSNR-Y, SSIM-Y.
PUBLISHED = {2: (33.66, 0.9299), 3: (30.39, 0.8682), 4: (28.42, 0.8104)}


@pytest.mark.skipif(not SET5.is_dir(), reason=f"Set5 not found at {SET5} (set SUPERRES_BENCHMARKS to its parent)")
@pytest.mark.parametrize("scale", sorted(PUBLISHED))
def test_bicubic_on_set5_reproduces_the_published_row(scale):
    psnr, ssim = [], []
    for path in sorted(SET5.glob("*.png")):
        hr = modcrop(read_image(path, max_pixels=10**8)[0], scale)
        sr = bicubic_resize(degrade(hr, scale), scale)
        metrics = image_metrics(sr, hr, scale)
        psnr.append(metrics["psnr_y"])
        ssim.append(metrics["ssim_y"])
    assert len(psnr) == 5
    assert np.mean(psnr) == pytest.approx(PUBLISHED[scale][0], abs=0.03)
    assert np.mean(ssim) == pytest.approx(PUBLISHED[scale][1], abs=0.002)
