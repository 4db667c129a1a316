"""The architectures: the registry and create_model's checks, output shapes at every supported scale,
reference parameter counts, residual structure, batch normalisation in eval mode, learning one batch,
and the discriminators."""

from __future__ import annotations

import pytest
import torch
from conftest import SMALL_MODELS as SMALL

from superres.data.resize import imresize
from superres.errors import ConfigError
from superres.models import DISCRIMINATORS, REGISTRY, count_parameters, create_discriminator, create_model
from superres.models.edsr import EDSR
from superres.models.rrdbnet import RRDBNet
from superres.models.srresnet import SRResNet


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


ANY_SCALE = ["bicubic", "srcnn", "vdsr", "unet", "autoencoder"]  # they work on the bicubic-upsampled input
BATCH_NORM = ["unet", "srresnet", "srgan"]


def test_registry_holds_exactly_the_zoo():
    zoo = ["bicubic", "srcnn", "vdsr", "edsr", "unet", "lapsrn", "lapsrn_lai", "autoencoder", "srresnet", "srgan",
           "esrgan", "fsrcnn", "imdn", "rlfn", "span"]
    assert list(REGISTRY) == zoo
    assert REGISTRY["srgan"] is REGISTRY["srresnet"] is SRResNet
    assert REGISTRY["esrgan"] is RRDBNet


def test_rrdbnet_paper_size_has_the_reference_parameter_count():
    model = RRDBNet(scale=4)
    assert count_parameters(model) == 16_697_987
    # the names the ESRGAN authors published, so their weights map onto this module
    names = set(model.state_dict())
    assert {"conv_first.weight", "body.22.rdb3.conv5.weight", "conv_body.weight", "conv_up1.weight",
            "conv_up2.weight", "conv_hr.weight", "conv_last.weight"} <= names
    assert "conv_up3.weight" not in names


@pytest.mark.parametrize("name", [n for n in REGISTRY if n not in ANY_SCALE])
def test_a_scale_outside_scales_is_a_config_error(name):
    unsupported = next(s for s in (3, 5, 6) if s not in REGISTRY[name].SCALES)
    with pytest.raises(ConfigError, match=r"prepare\.scale"):
        create_model(name, scale=unsupported)


@pytest.mark.parametrize("name", ANY_SCALE)
def test_models_on_the_bicubic_input_take_any_integer_scale(name):
    y = create_model(name, scale=5, **SMALL[name])(torch.rand(1, 3, 6, 7))
    assert y.shape == (1, 3, 30, 35)
    for bad in (1, 0, 2.5, True):
        with pytest.raises(ConfigError, match=r"prepare\.scale"):
            create_model(name, scale=bad)


def last_conv(model: torch.nn.Module) -> torch.nn.Conv2d:
    return [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)][-1]


@pytest.mark.parametrize("name", ["vdsr", "unet", "autoencoder", "lapsrn"])
def test_global_residual_over_bicubic(name):
    # with the residual branch silenced, what is left is exactly the bicubic upsampling
    torch.manual_seed(0)
    model = create_model(name, scale=2, **SMALL[name]).eval()
    torch.nn.init.normal_(last_conv(model).weight, std=0.1)  # a trained-looking residual branch
    x = torch.rand(2, 3, 9, 11)
    assert not torch.allclose(model(x), imresize(x, scale=2), atol=1e-3)
    torch.nn.init.zeros_(last_conv(model).weight)
    torch.nn.init.zeros_(last_conv(model).bias)
    torch.testing.assert_close(model(x), imresize(x, scale=2), atol=1e-5, rtol=0)


def test_an_untrained_unet_is_bicubic_and_its_tail_learns():
    # the zero tail: training starts from bicubic, and the tail still gets a gradient
    model = create_model("unet", scale=2, **SMALL["unet"])
    x, target = torch.rand(2, 3, 9, 11), torch.rand(2, 3, 18, 22)
    torch.testing.assert_close(model.eval()(x), imresize(x, scale=2), atol=1e-6, rtol=0)
    torch.nn.functional.l1_loss(model.train()(x), target).backward()
    assert last_conv(model).weight.grad.abs().sum() > 0


@pytest.mark.parametrize("name", ["unet", "autoencoder"])
@pytest.mark.parametrize("size", [(5, 7), (8, 8), (3, 17)])
def test_encoder_decoders_take_sizes_that_are_not_multiples_of_their_depth(name, size):
    model = create_model(name, scale=3, **{**SMALL[name], "depth": 3}).eval()
    assert model(torch.rand(1, 3, *size)).shape == (1, 3, 3 * size[0], 3 * size[1])


@pytest.mark.parametrize("name", BATCH_NORM)
def test_batch_norm_models_run_on_one_image_in_eval_mode(name):
    torch.manual_seed(0)
    model = create_model(name, scale=2, **SMALL[name])
    x = torch.rand(4, 3, 12, 12)
    model(x)  # one training step's forward updates the running statistics
    model.eval()
    single = model(x[:1])
    assert single.shape == (1, 3, 24, 24) and torch.isfinite(single).all()
    # eval mode uses the running statistics: an image's output does not depend on its batch
    torch.testing.assert_close(model(x)[:1], single, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("name", list(DISCRIMINATORS))
@pytest.mark.parametrize("size", [32, 48, 96])
def test_discriminators_give_one_logit_per_patch(name, size):
    model = create_discriminator(name, n_feats=8)
    logits = model(torch.rand(3, 3, size, size))
    assert logits.shape == (3, 1)
    logits.sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    model.eval()
    assert model(torch.rand(1, 3, size, size + 5)).shape == (1, 1)


@pytest.mark.parametrize("name", list(DISCRIMINATORS))
def test_discriminators_learn_to_tell_patches_apart(name):
    torch.manual_seed(0)
    model = create_discriminator(name, n_feats=8)
    real = torch.rand(8, 3, 32, 32)
    fake = torch.nn.functional.avg_pool2d(real, 5, stride=1, padding=2)  # blurred: what an SR net might give
    labels = torch.cat([torch.ones(8, 1), torch.zeros(8, 1)])
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(30):
        loss = torch.nn.functional.binary_cross_entropy_with_logits(model(torch.cat([real, fake])), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    assert (model(real) > model(fake).max()).all()


def test_discriminator_paper_widths():
    srgan = create_discriminator("srgan")
    convs = [m for m in srgan.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [64, 64, 128, 128, 256, 256, 512, 512]
    assert [c.stride[0] for c in convs] == [1, 2] * 4
    linears = [m for m in srgan.modules() if isinstance(m, torch.nn.Linear)]
    assert [(lin.in_features, lin.out_features) for lin in linears] == [(512, 1024), (1024, 1)]
    vgg = create_discriminator("vgg")
    linears = [m for m in vgg.modules() if isinstance(m, torch.nn.Linear)]
    assert [(lin.in_features, lin.out_features) for lin in linears] == [(512, 100), (100, 1)]


def test_unknown_discriminator_and_bad_keys_are_config_errors():
    with pytest.raises(ConfigError, match="known discriminators: srgan, vgg"):
        create_discriminator("patchgan")
    with pytest.raises(ConfigError, match="discriminator 'vgg'"):
        create_discriminator("vgg", num_feat=64)
