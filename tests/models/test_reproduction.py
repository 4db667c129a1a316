"""The papers' own checkpoints, measured here: imported with `superres import`'s code and evaluated on
Set5 and Set14 with the project's evaluation (modcrop, MATLAB bicubic LR rounded to 8 bits, PSNR-Y with
`scale` pixels shaved), each must reproduce its published PSNR-Y: within 0.05 dB for the authors'
weights, 0.15 dB for ports (whose own evaluation may differ slightly). The published numbers are those
the fixtures' SOURCES.md cites (the paper, or the port's README)."""

from __future__ import annotations

import functools
import os
import tempfile
from pathlib import Path

import pytest
from conftest import ROOT
from PIL import Image

from superres.evaluation import evaluate_model, folder_pairs
from superres.models.official import import_official

PRETRAINED = Path(os.environ.get("SUPERRES_PRETRAINED", ROOT.parent / "shared" / "pretrained"))
DATASETS = Path(os.environ.get("SUPERRES_BENCHMARKS", ROOT.parent / "shared" / "datasets"))
AUTHORS, PORT = 0.05, 0.15

# checkpoint, architecture, scale, set, published PSNR-Y, tolerance
PUBLISHED = [
    ("imdn_x2.pth", "imdn", 2, "set5", 38.00, AUTHORS),
    ("imdn_x3.pth", "imdn", 3, "set5", 34.36, AUTHORS),
    ("imdn_x4.pth", "imdn", 4, "set5", 32.21, AUTHORS),
    ("imdn_x2.pth", "imdn", 2, "set14", 33.63, AUTHORS),
    ("imdn_x3.pth", "imdn", 3, "set14", 30.32, AUTHORS),
    ("imdn_x4.pth", "imdn", 4, "set14", 28.58, AUTHORS),
    ("lapsrn_official_x2.mat", "lapsrn_lai", 2, "set5", 37.52, AUTHORS),
    ("lapsrn_official_x4.mat", "lapsrn_lai", 4, "set5", 31.54, AUTHORS),
    ("lapsrn_official_x4.mat", "lapsrn_lai", 4, "set14", 28.19, AUTHORS),
    ("vdsr_twtygqyy_epoch50.pth", "vdsr", 2, "set5", 37.65, PORT),
    ("vdsr_twtygqyy_epoch50.pth", "vdsr", 3, "set5", 33.77, PORT),
    ("vdsr_twtygqyy_epoch50.pth", "vdsr", 4, "set5", 31.45, PORT),
    ("fsrcnn_x2.pth", "fsrcnn", 2, "set5", 37.12, PORT),
    ("fsrcnn_x3.pth", "fsrcnn", 3, "set5", 33.22, PORT),
    ("fsrcnn_x4.pth", "fsrcnn", 4, "set5", 30.50, PORT),
    ("srcnn_915_x2.pth", "srcnn", 2, "set5", 36.25, PORT),
]

# Published numbers these files do not give, and why (found, not guessed; see each reason). Strict: if
# one starts to reproduce, the test says so.
DO_NOT_REPRODUCE = {
    ("fsrcnn_x3.pth", "set5"): "32.61 dB: the x3 file does not give the port's README number. Not the LR (PIL's "
    "bicubic gives the same), not the alignment of the x3 deconvolution (the output shifted by one pixel is 4-6 dB "
    "worse); x2 and x4 of the same port reproduce",
    ("srcnn_915_x2.pth", "set5"): "8.2 dB: the weights are broken, not read wrongly (the port's own forward, padded "
    "as in its test mode, gives the same output to 1e-5); a constant image comes out at about 7% of its value",
}
CASES = [pytest.param(*row, id=f"{row[0]}-{row[3]}-x{row[2]}",
                      marks=[pytest.mark.xfail(strict=True, reason=DO_NOT_REPRODUCE[row[0], row[3]])]
                      if (row[0], row[3]) in DO_NOT_REPRODUCE else [])
         for row in PUBLISHED]


@functools.cache
def measured(checkpoint: str, architecture: str, scale: int) -> dict[str, float]:
    """Set5 and Set14 (gray images as RGB, as the authors read them) PSNR-Y / SSIM-Y of the imported
    checkpoint, in fp32 (the papers' precision)."""
    weights = import_official(PRETRAINED / checkpoint, architecture, scale)
    with tempfile.TemporaryDirectory() as work:
        set14 = Path(work) / "set14"
        set14.mkdir()
        for image in sorted((DATASETS / "Set14").glob("*.png")):
            with Image.open(image) as img:
                img.convert("RGB").save(set14 / image.name)
        sets = folder_pairs([DATASETS / "Set5", set14], [scale], Path(work) / "pairs", max_pixels=10**8)
        return evaluate_model(weights, benchmarks=sets, device="cpu", latency=False, precision="fp32").means


@pytest.mark.skipif(not PRETRAINED.is_dir() or not (DATASETS / "Set14").is_dir(),
                    reason=f"the published checkpoints ({PRETRAINED}) or Set5/Set14 ({DATASETS}) are not here "
                           "(SUPERRES_PRETRAINED, SUPERRES_BENCHMARKS)")
@pytest.mark.parametrize(("checkpoint", "architecture", "scale", "dataset", "published", "tolerance"), CASES)
def test_the_published_psnr_is_reproduced(checkpoint, architecture, scale, dataset, published, tolerance):
    got = measured(checkpoint, architecture, scale)[f"{dataset}_x{scale}/psnr_y"]
    assert abs(got - published) <= tolerance, f"{checkpoint} on {dataset} x{scale}: {got:.3f} dB, published {published}"
