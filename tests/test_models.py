"""The zoo: output shapes for every supported scale, reference parameter counts, learning."""

from __future__ import annotations

import pytest
import torch
from conftest import SMALL_MODELS as SMALL

from superres.errors import ConfigError
from superres.models import REGISTRY, count_parameters, create_model
from superres.models.edsr import EDSR


def test_every_architecture_has_a_small_config():
    assert set(SMALL) == set(REGISTRY)


@pytest.mark.parametrize("name", list(REGISTRY))
def test_output_is_scale_times_the_input(name):
    scales = REGISTRY[name].SCALES
    assert scales and all(isinstance(s, int) and s >= 2 for s in scales)
    for scale in scales:
        model = create_model(name, scale=scale, **SMALL[name])
        y = model(torch.rand(2, 3, 10, 13))
        assert y.shape == (2, 3, 10 * scale, 13 * scale)


@pytest.mark.parametrize(("scale", "cfg", "expected"), [
    (2, {}, 1_369_859),                                           # EDSR baseline x2
    (4, {}, 1_517_571),                                           # EDSR baseline x4
    (4, {"n_resblocks": 32, "n_feats": 256, "res_scale": 0.1}, 43_089_923),  # EDSR full x4
])
def test_edsr_parameter_counts_match_the_reference(scale, cfg, expected):
    assert count_parameters(EDSR(scale=scale, **cfg)) == expected


def test_srcnn_955_parameter_count():
    # 3*64*81+64 + 64*32*25+32 + 32*3*25+3 (Dong et al.'s 9-5-5 on RGB)
    assert count_parameters(create_model("srcnn", scale=2)) == 15_616 + 51_232 + 2_403


def test_bicubic_has_nothing_to_learn():
    assert count_parameters(create_model("bicubic", scale=4)) == 0


def test_unknown_architecture_and_bad_keys_are_config_errors():
    with pytest.raises(ConfigError, match="known architectures"):
        create_model("nope", scale=2)
    with pytest.raises(ConfigError, match="edsr.model: unknown key.* n_blocks; the keys of edsr.model are n_resblocks"):
        create_model("edsr", scale=2, n_blocks=3)
    with pytest.raises(ConfigError, match="scales 2, 3, 4 and 8"):
        create_model("edsr", scale=5)


@pytest.mark.parametrize("name", [n for n in REGISTRY if n != "bicubic"])
@pytest.mark.parametrize("value", [-3, 0, 2.5, True, "64"])
def test_a_count_that_is_not_a_positive_integer_names_its_key(name, value):
    key = "n_feats" if "n_feats" in SMALL[name] else next(iter(SMALL[name]))
    with pytest.raises(ConfigError, match=rf"^{name}\.model\.{key} must be a positive integer, got {value!r}"):
        create_model(name, scale=2, **{**SMALL[name], key: value})


def test_a_float_argument_must_be_a_number():
    with pytest.raises(ConfigError, match=r"edsr\.model\.res_scale must be a number, got 'x'"):
        create_model("edsr", scale=2, res_scale="x")
    assert count_parameters(create_model("edsr", scale=2, n_resblocks=1, n_feats=8, res_scale=1)) > 0  # an int will do


def test_a_constructor_that_refuses_its_values_is_a_config_error_naming_the_section(monkeypatch):
    class Picky(torch.nn.Module):
        SCALES = (2,)

        def __init__(self, scale: int, n_feats: int = 8, groups: int = 1) -> None:
            super().__init__()
            self.conv = torch.nn.Conv2d(3, n_feats, 3, groups=groups)  # torch: n_feats must divide by groups

    monkeypatch.setitem(REGISTRY, "picky", Picky)
    refused = r"^picky\.model: the Picky constructor refused n_feats=8, groups=3 at scale 2 \(ValueError: .*groups"
    with pytest.raises(ConfigError, match=refused + r".*\); check the values of picky\.model"):
        create_model("picky", scale=2, n_feats=8, groups=3)


@pytest.mark.parametrize("name", [n for n in REGISTRY if n != "bicubic"])
def test_overfits_one_small_batch(name):
    torch.manual_seed(0)
    model = create_model(name, scale=2, **SMALL[name])
    hr = torch.nn.functional.interpolate(torch.rand(4, 3, 4, 4), size=(16, 16), mode="bilinear", align_corners=False)
    lr = torch.nn.functional.avg_pool2d(hr, 2)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(100):
        loss = torch.nn.functional.l1_loss(model(lr), hr)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.3 * losses[0]
