"""Tests of the losses: pixel losses by name (DSSIM included), the VGG19 perceptual loss and its
checkpoint (loading, refusing unsafe or broken files, finding and downloading it), the GAN losses.

Perceptual-loss tests use VGG19 with random weights or with checkpoints of random tensors the tests
write: the real ImageNet checkpoint is never needed. Downloads run against a real HTTP server on
127.0.0.1 (the ``server`` fixture of conftest.py).
"""

from __future__ import annotations

import hashlib
import os
import pickle
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from conftest import Server
from skimage.metrics import structural_similarity
from torch import nn

from superres.errors import ConfigError, WeightsError
from superres.losses import (
    VGG19_FILENAME,
    VGG19_URL,
    GANLoss,
    PerceptualLoss,
    build_loss,
    vgg19_features,
    vgg19_weights,
)

# Indices of the convolutions in torchvision's vgg19().features (the keys of its checkpoint).
TORCHVISION_CONV_INDICES = [0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34]


def images(seed: int, shape: tuple[int, ...] = (2, 3, 32, 32)) -> torch.Tensor:
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed))


# --- pixel losses ----------------------------------------------------------------------------


def test_build_loss_by_name() -> None:
    pred, target = images(0), images(1)
    assert torch.allclose(build_loss("l1")(pred, target), (pred - target).abs().mean())
    assert torch.allclose(build_loss("mse")(pred, target), ((pred - target) ** 2).mean())
    with pytest.raises(ConfigError, match=r"train\.loss: unknown loss 'ssim'; choose one of l1, mse, dssim"):
        build_loss("ssim")


def test_dssim_is_zero_for_identical_images_and_grows_with_noise() -> None:
    dssim = build_loss("dssim")
    target = images(0)
    assert dssim(target, target.clone()).item() == pytest.approx(0.0, abs=1e-6)
    values = [dssim((target + sigma * images(1 + i) - sigma / 2).clamp(0, 1), target).item()
              for i, sigma in enumerate((0.05, 0.2, 0.6))]
    assert 0 < values[0] < values[1] < values[2] <= 1


def test_dssim_matches_scikit_image_ssim() -> None:
    """Gaussian window 11x11, sigma 1.5, data range 1: the SSIM of Wang et al. as scikit-image computes it."""
    pred, target = images(2, (1, 3, 40, 48)), images(3, (1, 3, 40, 48))
    pred = (0.7 * target + 0.3 * pred).double()
    reference = structural_similarity(
        pred[0].numpy(), target[0].double().numpy(), channel_axis=0, data_range=1.0,
        gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
    )
    assert build_loss("dssim")(pred, target.double()).item() == pytest.approx(1 - reference, abs=1e-6)


def test_dssim_gradients_reach_the_input() -> None:
    target = images(0, (1, 1, 24, 24))
    pred = images(1, (1, 1, 24, 24)).requires_grad_(True)
    build_loss("dssim")(pred, target).backward()
    assert pred.grad is not None and pred.grad.abs().sum() > 0


def test_dssim_refuses_images_smaller_than_its_window() -> None:
    with pytest.raises(ConfigError, match=r"train\.loss: dssim needs images of at least 11x11 pixels, got 8x16"):
        build_loss("dssim")(images(0, (1, 3, 8, 16)), images(1, (1, 3, 8, 16)))


# --- VGG19 and the perceptual loss -----------------------------------------------------------


def test_vgg19_features_have_torchvision_indices() -> None:
    features = vgg19_features()
    assert len(features) == 37
    convs = [i for i, layer in enumerate(features) if isinstance(layer, nn.Conv2d)]
    assert convs == TORCHVISION_CONV_INDICES
    assert [i for i, layer in enumerate(features) if isinstance(layer, nn.MaxPool2d)] == [4, 9, 18, 27, 36]
    assert features[34].out_channels == 512 and features[0].in_channels == 3


def test_perceptual_layer_cut() -> None:
    """Random weights (tests only): conv5_4 before its activation is features index 34, after it 35."""
    before = PerceptualLoss(None, layer="conv5_4", before_activation=True)
    assert len(before.features) == 35 and isinstance(before.features[-1], nn.Conv2d)
    after = PerceptualLoss(None, layer="conv2_2", before_activation=False)
    assert len(after.features) == 9 and isinstance(after.features[-1], nn.ReLU)
    with pytest.raises(ConfigError, match="conv6_1"):
        PerceptualLoss(None, layer="conv6_1")
    with pytest.raises(ConfigError, match="criterion 'huber'"):
        PerceptualLoss(None, criterion="huber")


def test_perceptual_loss_with_random_weights(caplog: pytest.LogCaptureFixture) -> None:
    """VGG19 with RANDOM weights (no checkpoint): the loss still has to be 0 for identical images,
    positive otherwise, differentiable with respect to the prediction, with the network frozen."""
    with caplog.at_level("WARNING"):
        loss = PerceptualLoss(None, layer="conv2_2", criterion="mse")
    assert "random" in caplog.text
    target = images(0, (1, 3, 24, 24))
    assert loss(target, target.clone()).item() == 0.0
    pred = images(1, (1, 3, 24, 24)).requires_grad_(True)
    value = loss(pred, target)
    assert value.ndim == 0 and value.item() > 0
    value.backward()
    assert pred.grad is not None and pred.grad.abs().sum() > 0
    assert all(not p.requires_grad and p.grad is None for p in loss.features.parameters())
    loss.train()
    assert not loss.features.training


def torchvision_like_checkpoint(path: Path, seed: int = 0, up_to: int = 10) -> dict[str, torch.Tensor]:
    """Write a state dict keyed like torchvision's VGG19 (features up to index ``up_to``, plus
    ``classifier.*``) of random tensors; returns it."""
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for name, tensor in vgg19_features(end=up_to).state_dict().items():
        state[f"features.{name}"] = torch.randn(tensor.shape, generator=generator)
    state["classifier.0.weight"] = torch.randn(8, 4, generator=generator)
    state["classifier.0.bias"] = torch.randn(8, generator=generator)
    torch.save(state, path)
    return state


def test_perceptual_loss_loads_torchvision_keys(tmp_path: Path) -> None:
    state = torchvision_like_checkpoint(tmp_path / VGG19_FILENAME)
    loss = PerceptualLoss(tmp_path / VGG19_FILENAME, layer="conv2_2")
    loaded = loss.features.state_dict()
    assert sorted(loaded) == sorted(f"{i}.{p}" for i in (0, 2, 5, 7) for p in ("weight", "bias"))
    for name, tensor in loaded.items():
        assert torch.equal(tensor, state[f"features.{name}"])
    assert all(not p.requires_grad for p in loss.parameters())


def test_perceptual_loss_refuses_a_checkpoint_without_the_layers(tmp_path: Path) -> None:
    torchvision_like_checkpoint(tmp_path / "short.pth", up_to=4)  # stops before conv2_1
    with pytest.raises(WeightsError, match=r"short\.pth is not torchvision's ImageNet VGG19.*missing features\.5"):
        PerceptualLoss(tmp_path / "short.pth", layer="conv2_2")
    torch.save({"features.0.weight": torch.zeros(64, 3, 5, 5), "features.0.bias": torch.zeros(64)}, tmp_path / "x.pth")
    with pytest.raises(WeightsError, match=r"features\.0\.weight is \(64, 3, 5, 5\), expected \(64, 3, 3, 3\)"):
        PerceptualLoss(tmp_path / "x.pth", layer="conv1_1")
    torch.save([torch.zeros(1)], tmp_path / "list.pth")
    with pytest.raises(WeightsError, match="holds a list, not a state dict"):
        PerceptualLoss(tmp_path / "list.pth", layer="conv1_1")


class _Payload:
    """Unpickling this runs a shell command that creates a marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return os.system, (f"touch '{self.marker}'",)


@pytest.mark.parametrize("writer", ["torch.save", "pickle.dump"])
def test_perceptual_loss_refuses_a_malicious_pickle(tmp_path: Path, writer: str) -> None:
    evil = tmp_path / VGG19_FILENAME
    payload = {"features.0.weight": _Payload(tmp_path / "pwned")}
    if writer == "torch.save":
        torch.save(payload, evil)
    else:
        evil.write_bytes(pickle.dumps(payload, protocol=2))
    # the payload is real: a plain unpickler runs it
    pickle.loads(pickle.dumps({"x": _Payload(tmp_path / "control")}))
    assert (tmp_path / "control").exists()

    with pytest.raises(WeightsError, match=rf"{VGG19_FILENAME} is not torchvision's .*cannot be read safely.*download"):
        PerceptualLoss(evil, layer="conv1_1")
    assert not (tmp_path / "pwned").exists()


def test_perceptual_loss_refuses_truncated_and_missing_files(tmp_path: Path) -> None:
    torchvision_like_checkpoint(tmp_path / "full.pth")
    data = (tmp_path / "full.pth").read_bytes()
    (tmp_path / "cut.pth").write_bytes(data[: len(data) // 2])
    with pytest.raises(WeightsError, match=r"cut\.pth is not torchvision's ImageNet VGG19 checkpoint"):
        PerceptualLoss(tmp_path / "cut.pth", layer="conv1_1")
    with pytest.raises(WeightsError, match=r"nothere\.pth not found"):
        PerceptualLoss(tmp_path / "nothere.pth")


# --- finding and downloading the checkpoint --------------------------------------------------


def test_vgg19_weights_given_path(tmp_path: Path) -> None:
    (tmp_path / "mine.pth").write_bytes(b"x")
    assert vgg19_weights(tmp_path / "mine.pth", download=False) == tmp_path / "mine.pth"
    with pytest.raises(WeightsError, match=r"perceptual_weights: .*gone\.pth does not exist"):
        vgg19_weights(tmp_path / "gone.pth")


def test_vgg19_weights_downloads_once_into_the_cache(server: Server, tmp_path: Path) -> None:
    state = torchvision_like_checkpoint(server.root / "vgg.pth", up_to=2)
    prefix = hashlib.sha256((server.root / "vgg.pth").read_bytes()).hexdigest()[:8]
    cache = tmp_path / "cache"
    path = vgg19_weights(cache_dir=cache, url=server.url("vgg.pth"), sha256_prefix=prefix)
    assert path == cache / VGG19_FILENAME
    assert path.read_bytes() == (server.root / "vgg.pth").read_bytes()
    assert sorted(p.name for p in cache.iterdir()) == [VGG19_FILENAME]  # no .part left behind
    assert vgg19_weights(cache_dir=cache, url=server.url("vgg.pth"), sha256_prefix=prefix) == path
    assert server.requests["/vgg.pth"] == 1
    loss = PerceptualLoss(path, layer="conv1_2")
    assert torch.equal(loss.features[2].weight, state["features.2.weight"])


def test_vgg19_weights_refuses_a_wrong_checksum(server: Server, tmp_path: Path) -> None:
    (server.root / "vgg.pth").write_bytes(b"not the VGG19 checkpoint")
    assert not hashlib.sha256(b"not the VGG19 checkpoint").hexdigest().startswith("dcbe5e81")
    cache = tmp_path / "cache"
    with pytest.raises(WeightsError, match=r"sha256 is [0-9a-f]{64}, not dcbe5e81"):
        vgg19_weights(cache_dir=cache, url=server.url("vgg.pth"))
    assert list(cache.iterdir()) == []


def test_vgg19_weights_unavailable(
    server: Server,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    expected = tmp_path / "xdg" / "superres" / VGG19_FILENAME
    with pytest.raises(WeightsError) as error:
        vgg19_weights(download=False)
    message = str(error.value)
    assert str(expected) in message and VGG19_URL in message and "<arch>.train.perceptual_weights" in message
    with pytest.raises(WeightsError, match="HTTP 404") as error:
        vgg19_weights(cache_dir=tmp_path / "cache", url=server.url("missing.pth"))
    message = str(error.value)
    assert str(tmp_path / "cache" / VGG19_FILENAME) in message and server.url("missing.pth") in message


# --- GAN losses ------------------------------------------------------------------------------

REAL = torch.tensor([2.0, -0.5, 1.0, 3.0], dtype=torch.float64)
FAKE = torch.tensor([-1.0, 0.5, -2.0, 0.25], dtype=torch.float64)


def log_sigmoid(x: torch.Tensor) -> torch.Tensor:
    return torch.log(1 / (1 + torch.exp(-x)))


def log_one_minus_sigmoid(x: torch.Tensor) -> torch.Tensor:
    return torch.log(1 - 1 / (1 + torch.exp(-x)))


def expected_gan(kind: str, relativistic: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """(discriminator loss, generator loss) written out from the papers' formulas."""
    r, f = REAL, FAKE
    if relativistic:
        r, f = REAL - FAKE.mean(), FAKE - REAL.mean()  # D_ra(real, fake), D_ra(fake, real)
    if kind == "vanilla":
        d = -log_sigmoid(r).mean() - log_one_minus_sigmoid(f).mean()
        g = -log_sigmoid(f).mean() - (log_one_minus_sigmoid(r).mean() if relativistic else 0)
    elif kind == "lsgan":
        fake_label = -1 if relativistic else 0
        d = ((r - 1) ** 2).mean() + ((f - fake_label) ** 2).mean()
        g = ((f - 1) ** 2).mean() + (((r - fake_label) ** 2).mean() if relativistic else 0)
    else:
        d = torch.clamp(1 - r, min=0).mean() + torch.clamp(1 + f, min=0).mean()
        hinge = torch.clamp(1 - f, min=0).mean() + torch.clamp(1 + r, min=0).mean()
        g = hinge if relativistic else -f.mean()
    return d, g


@pytest.mark.parametrize("relativistic", [False, True])
@pytest.mark.parametrize("kind", ["vanilla", "lsgan", "hinge"])
def test_gan_loss_values(kind: str, relativistic: bool) -> None:
    loss = GANLoss(kind, relativistic=relativistic)
    d, g = expected_gan(kind, relativistic)
    torch.testing.assert_close(loss.discriminator_loss(REAL, FAKE), d)
    torch.testing.assert_close(loss.generator_loss(REAL, FAKE), g)
    if not relativistic:
        torch.testing.assert_close(loss.generator_loss(None, FAKE), g)


def test_vanilla_gan_is_binary_cross_entropy() -> None:
    loss = GANLoss("vanilla")
    bce = F.binary_cross_entropy_with_logits
    torch.testing.assert_close(
        loss.discriminator_loss(REAL, FAKE), bce(REAL, torch.ones_like(REAL)) + bce(FAKE, torch.zeros_like(FAKE))
    )


@pytest.mark.parametrize("relativistic", [False, True])
@pytest.mark.parametrize("kind", ["vanilla", "lsgan", "hinge"])
def test_gan_gradients_push_the_right_way(kind: str, relativistic: bool) -> None:
    """A discriminator step raises real logits and lowers fake ones; a generator step raises fake ones."""
    loss = GANLoss(kind, relativistic=relativistic)
    real, fake = torch.zeros(4, requires_grad=True), torch.zeros(4, requires_grad=True)
    real_logits, fake_logits = real - 0.2, fake + 0.2  # a discriminator that is wrong, inside every margin
    loss.discriminator_loss(real_logits, fake_logits).backward()
    assert (real.grad < 0).all() and (fake.grad > 0).all()
    fake.grad = None
    loss.generator_loss(real_logits.detach(), fake_logits).backward()
    assert (fake.grad < 0).all()


def test_gan_loss_unknown_kind() -> None:
    with pytest.raises(ConfigError, match=r"train\.gan_type: unknown GAN loss 'wgan'; choose one of vanilla, lsgan"):
        GANLoss("wgan")
    with pytest.raises(ValueError, match="real images"):
        GANLoss("vanilla", relativistic=True).generator_loss(None, FAKE)
