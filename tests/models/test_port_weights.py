"""The published ports' weights as the project's VDSR and SRCNN (strict conversion, the papers'
parameter counts, the ports' own forward reproduced), refusals of checkpoints the tables do not
describe, and the initialisations taken from the reference code (VDSR, RRDBNet, SRResNet)."""

from __future__ import annotations

import math
import os
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from conftest import ROOT

from superres.data.resize import imresize
from superres.errors import WeightsError
from superres.models import count_parameters
from superres.models.rrdbnet import RRDBNet
from superres.models.safe_pickle import load_torch_file, module_state_dict
from superres.models.srcnn import SRCNN
from superres.models.srcnn import from_official as srcnn_from_official
from superres.models.srresnet import SRResNet
from superres.models.vdsr import VDSR
from superres.models.vdsr import from_official as vdsr_from_official

PRETRAINED = Path(os.environ.get("SUPERRES_PRETRAINED", ROOT.parent / "shared" / "pretrained"))
VDSR_PORT = PRETRAINED / "vdsr_twtygqyy_epoch50.pth"
SRCNN_PORT = PRETRAINED / "srcnn_915_x2.pth"
needs = {name: pytest.mark.skipif(not path.is_file(), reason=f"{path.name} is not in {PRETRAINED} "
                                                              "(set SUPERRES_PRETRAINED to the fixtures' folder)")
         for name, path in (("vdsr", VDSR_PORT), ("srcnn", SRCNN_PORT))}


def build(cls, config: dict, scale: int):
    """The raw class (without the luminance wrapper that ``color`` asks create_model for)."""
    return cls(scale, **{key: value for key, value in config.items() if key != "color"})


def vdsr_port_forward(state: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """twtygqyy/pytorch-vdsr's Net.forward, on the bicubic-upsampled Y."""
    out = F.relu(F.conv2d(x, state["input.weight"], padding=1))
    for i in range(18):
        out = F.relu(F.conv2d(out, state[f"residual_layer.{i}.conv.weight"], padding=1))
    return F.conv2d(out, state["output.weight"], padding=1) + x


def srcnn_port_forward(state: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """Lornatang/SRCNN-PyTorch's SRCNN in evaluation mode (padded), on the bicubic-upsampled Y."""
    out = F.relu(F.conv2d(x, state["features.0.weight"], state["features.0.bias"], padding=4))
    out = F.relu(F.conv2d(out, state["map.0.weight"], state["map.0.bias"]))
    return F.conv2d(out, state["reconstruction.weight"], state["reconstruction.bias"], padding=2)


@needs["vdsr"]
@pytest.mark.parametrize("scale", [2, 3, 4])
def test_the_vdsr_port_is_the_papers_network_at_every_scale(scale):
    tensors = module_state_dict(load_torch_file(VDSR_PORT), source=VDSR_PORT)
    config, state = vdsr_from_official(tensors, scale)
    assert config == {"channels": 1, "depth": 20, "n_feats": 64, "bias": False, "color": "y"}
    model = build(VDSR, config, scale).eval()
    model.load_state_dict(state, strict=True)
    assert len(state) == len(tensors) == 20
    # 64*9 + 18*64*64*9 + 64*9: Kim et al.'s 20 layers of 64 filters, here without biases
    assert count_parameters(model) == sum(t.numel() for t in tensors.values()) == 664_704
    torch.manual_seed(0)
    lr = torch.rand(1, 1, 9, 11)
    with torch.no_grad():
        torch.testing.assert_close(model(lr), vdsr_port_forward(tensors, imresize(lr, scale=scale)),
                                   atol=1e-5, rtol=1e-5)


@needs["srcnn"]
def test_the_srcnn_port_is_the_papers_9_1_5_network():
    tensors = dict(torch.load(SRCNN_PORT, map_location="cpu", weights_only=True))
    config, state = srcnn_from_official(tensors, 2)
    assert config == {"channels": 1, "f1": 64, "f2": 32, "k1": 9, "k2": 1, "k3": 5, "color": "y"}
    model = build(SRCNN, config, 2).eval()
    model.load_state_dict(state, strict=True)
    # 1*64*81+64 + 64*32*1+32 + 32*1*25+1: Dong et al.'s 9-1-5 network on the Y channel
    assert count_parameters(model) == sum(t.numel() for t in tensors.values()) == 8_129
    torch.manual_seed(0)
    lr = torch.rand(1, 1, 9, 11)
    with torch.no_grad():  # the port's evaluation mode pads as this module does: the same output
        torch.testing.assert_close(model(lr), srcnn_port_forward(tensors, imresize(lr, scale=2)),
                                   atol=1e-5, rtol=1e-5)
    assert load_torch_file(SRCNN_PORT).keys() == tensors.keys()  # the inert reader reads it too


def port_vdsr(depth: int = 5, n_feats: int = 8, bias: bool = False) -> dict[str, torch.Tensor]:
    """A small checkpoint with the VDSR port's names."""
    layers = {"input": (n_feats, 1), "output": (1, n_feats)}
    layers |= {f"residual_layer.{i}.conv": (n_feats, n_feats) for i in range(depth - 2)}
    state = {f"{name}.weight": torch.randn(out, inp, 3, 3) for name, (out, inp) in layers.items()}
    if bias:
        state |= {f"{name}.bias": torch.randn(out) for name, (out, _) in layers.items()}
    return state


def port_srcnn(f1: int = 16, f2: int = 8, k2: int = 1) -> dict[str, torch.Tensor]:
    return {"features.0.weight": torch.randn(f1, 1, 9, 9), "features.0.bias": torch.randn(f1),
            "map.0.weight": torch.randn(f2, f1, k2, k2), "map.0.bias": torch.randn(f2),
            "reconstruction.weight": torch.randn(1, f2, 5, 5), "reconstruction.bias": torch.randn(1)}


@pytest.mark.parametrize("bias", [False, True])
def test_the_vdsr_table_reads_depth_width_and_biases_from_the_tensors(bias):
    tensors = port_vdsr(depth=5, n_feats=8, bias=bias)
    config, state = vdsr_from_official(tensors, 3)
    assert config == {"channels": 1, "depth": 5, "n_feats": 8, "bias": bias, "color": "y"}
    model = build(VDSR, config, 3)
    model.load_state_dict(state, strict=True)
    assert torch.equal(model.body[0].weight, tensors["input.weight"])
    assert torch.equal(model.body[4].weight, tensors["residual_layer.1.conv.weight"])
    assert torch.equal(model.body[8].weight, tensors["output.weight"])


def test_the_srcnn_table_reads_the_filters_from_the_tensors():
    tensors = port_srcnn(f1=16, f2=8, k2=5)
    config, state = srcnn_from_official(tensors, 3)
    assert config == {"channels": 1, "f1": 16, "f2": 8, "k1": 9, "k2": 5, "k3": 5, "color": "y"}
    build(SRCNN, config, 3).load_state_dict(state, strict=True)


@pytest.mark.parametrize(("convert", "tensors"), [(vdsr_from_official, port_vdsr), (srcnn_from_official, port_srcnn)],
                         ids=["vdsr", "srcnn"])
def test_unknown_missing_and_misshapen_tensors_are_refused(convert, tensors):
    with pytest.raises(WeightsError, match=r"unknown key\(s\) head\.weight"):
        convert({**tensors(), "head.weight": torch.zeros(1)}, 2)
    incomplete = tensors()
    removed = sorted(key for key in incomplete if key.endswith("bias") or "residual_layer.1" in key)[0]
    del incomplete[removed]
    with pytest.raises(WeightsError, match=rf"missing key\(s\) {removed}"):
        convert(incomplete, 2)
    first = next(iter(tensors()))
    with pytest.raises(WeightsError, match="lacks"):
        convert({key: value for key, value in tensors().items() if key != first}, 2)
    misshapen = tensors()
    last = list(misshapen)[-1]
    misshapen[last] = torch.zeros(*misshapen[last].shape[:-1], 7)
    with pytest.raises(WeightsError, match=rf"{last} has shape"):
        convert(misshapen, 2)


def test_a_vdsr_checkpoint_with_a_gap_in_its_layers_is_refused():
    tensors = port_vdsr(depth=6)
    del tensors["residual_layer.2.conv.weight"]
    with pytest.raises(WeightsError, match=r"unknown key\(s\) residual_layer\.3\.conv\.weight; missing key\(s\) "
                                           r"residual_layer\.2\.conv\.weight"):
        vdsr_from_official(tensors, 2)


# --- the references' initialisation ------------------------------------------------------------------


def kaiming_std(conv: torch.nn.Conv2d) -> float:
    return math.sqrt(2.0 / (conv.in_channels * conv.kernel_size[0] * conv.kernel_size[1]))


def assert_std(conv: torch.nn.Conv2d, expected: float) -> None:
    assert float(conv.weight.detach().std()) == pytest.approx(expected, rel=0.1)


def test_vdsr_starts_as_he_et_al_and_has_biases_only_if_asked():
    torch.manual_seed(0)
    model = VDSR(2, channels=1, depth=20, n_feats=64)
    for conv in (model.body[0], model.body[18], model.body[38]):
        assert_std(conv, kaiming_std(conv))
        assert torch.count_nonzero(conv.bias) == 0
    assert count_parameters(model) == 664_704 + 19 * 64 + 1
    plain = VDSR(2, channels=1, bias=False)
    assert count_parameters(plain) == 664_704
    assert all(m.bias is None for m in plain.modules() if isinstance(m, torch.nn.Conv2d))


def test_rrdb_dense_blocks_start_at_a_tenth_of_kaiming():
    torch.manual_seed(0)
    model = RRDBNet(4, n_blocks=2)
    for conv in (model.body[0].rdb1.conv1, model.body[1].rdb3.conv5):
        assert_std(conv, 0.1 * kaiming_std(conv))
        assert torch.count_nonzero(conv.bias) == 0
    # the convolutions outside the dense blocks keep PyTorch's default (uniform, std 1/sqrt(3 fan_in))
    assert_std(model.conv_body, kaiming_std(model.conv_body) / math.sqrt(6))


def test_srresnet_residual_branches_start_at_a_tenth_of_kaiming():
    torch.manual_seed(0)
    block = SRResNet(4, n_blocks=2).body[1]
    for conv in (block.body[0], block.body[3]):
        assert_std(conv, 0.1 * kaiming_std(conv))
        assert torch.count_nonzero(conv.bias) == 0
