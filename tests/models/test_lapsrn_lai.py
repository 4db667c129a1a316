"""The LapSRN of Lai et al. and the MatConvNet reader: the authors' .mat files fill the network exactly,
filters land in PyTorch's layout, and the pyramid has the paper's structure and sizes."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch
from conftest import ROOT

from superres.errors import WeightsError
from superres.models import count_parameters, create_model
from superres.models.lapsrn_lai import LapSRNLai, from_official
from superres.models.matconvnet import read_dagnn

PRETRAINED = Path(os.environ.get("SUPERRES_PRETRAINED", ROOT.parent / "shared" / "pretrained"))
needs_fixtures = pytest.mark.skipif(not (PRETRAINED / "lapsrn_official_x4.mat").is_file(),
                                    reason=f"the authors' LapSRN weights are not in {PRETRAINED} (SUPERRES_PRETRAINED)")


def _paper_count(levels: int, depth: int, n: int = 64) -> int:
    """Input conv 1->n, then per level: depth n->n convs, the n->n transposed conv, the n->1 residual
    conv (all with biases) and the 4x4 image upsampler (no bias)."""
    conv = n * n * 9 + n
    return (9 * n + n) + levels * (depth * conv + conv + (9 * n + 1) + 16)


@needs_fixtures
@pytest.mark.parametrize(("scale", "depth"), [(2, 10), (4, 10), (8, 5)])
def test_the_authors_weights_fill_the_network_exactly(scale, depth):
    params = read_dagnn(PRETRAINED / f"lapsrn_official_x{scale}.mat")
    config, state = from_official(params, scale)
    assert config == {"channels": 1, "n_feats": 64, "depth": depth, "color": "y"}
    model = create_model("lapsrn_lai", scale=scale, **config)
    model.net.load_state_dict(state, strict=True)
    total = sum(t.numel() for t in params.values())
    assert count_parameters(model) == total == _paper_count(len(model.net.levels), depth)
    assert len(state) == len(params)


@needs_fixtures
def test_filters_are_transposed_to_pytorch_layouts():
    mat = scipy.io.loadmat(PRETRAINED / "lapsrn_official_x2.mat", squeeze_me=True, struct_as_record=False)
    raw = {str(p.name): np.asarray(p.value) for p in mat["net"].params}
    params = read_dagnn(PRETRAINED / "lapsrn_official_x2.mat")
    conv = params["level1_conv3_f"]  # MatConvNet H x W x C_in x C_out -> C_out x C_in x H x W
    assert conv.shape == (64, 64, 3, 3)
    assert float(conv[5, 7, 0, 2]) == float(raw["level1_conv3_f"][0, 2, 7, 5])
    up = params["level1_upconv_f"]  # H x W x C_out x C_in -> C_in x C_out x H x W (ConvTranspose2d)
    assert float(up[5, 7, 1, 0]) == float(raw["level1_upconv_f"][1, 0, 7, 5])
    first = params["input_conv_f"]  # MATLAB dropped the singleton C_in: restored from the layer's size
    assert first.shape == (64, 1, 3, 3) and float(first[9, 0, 2, 1]) == float(raw["input_conv_f"][2, 1, 9])


def test_the_pyramid_doubles_at_every_level_and_adds_the_residual_to_the_upsampled_image():
    model = LapSRNLai(scale=4, channels=1, n_feats=8, depth=1).eval()
    for level in model.levels:  # residual branch off: the output is the image branch alone
        torch.nn.init.zeros_(level.residual.weight)
        torch.nn.init.zeros_(level.residual.bias)
    x = torch.rand(1, 1, 5, 6)
    expected = model.levels[1].image_up(model.levels[0].image_up(x))
    torch.testing.assert_close(model(x), expected)
    assert model(x).shape == (1, 1, 20, 24)


def test_unknown_and_missing_parameters_are_refused_by_name():
    model = LapSRNLai(scale=2, channels=1, n_feats=4, depth=1)
    with pytest.raises(WeightsError, match="not in the LapSRN of Lai et al. at x2: level2_conv1_f"):
        from_official({"input_conv_f": model.head[0].weight, "level2_conv1_f": torch.zeros(1)}, 2)
    with pytest.raises(WeightsError, match="no input_conv_f"):
        from_official({"level1_conv1_f": torch.zeros(4, 4, 3, 3)}, 2)


def test_a_file_that_is_not_a_dagnn_network_is_refused(tmp_path):
    scipy.io.savemat(tmp_path / "other.mat", {"weights": np.zeros(3)})
    with pytest.raises(WeightsError, match="holds no variable `net`"):
        read_dagnn(tmp_path / "other.mat")
    (tmp_path / "broken.mat").write_bytes(b"MATLAB 5.0 MAT-file, truncated")
    with pytest.raises(WeightsError, match="broken.mat"):
        read_dagnn(tmp_path / "broken.mat")
