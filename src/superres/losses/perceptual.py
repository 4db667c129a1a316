"""Perceptual loss: the distance between VGG19 features of the prediction and of the target.

VGG19 is defined here (only its ``features`` part, which is all a perceptual loss needs) with the
same layer indices as torchvision's ``vgg19().features``, so torchvision's public ImageNet
checkpoint (``vgg19-dcbe5e81.pth``) loads as it is. That file is a pickle: it is read only with
``torch.load(..., weights_only=True)``, which refuses anything but tensors and plain containers.

:func:`vgg19_weights` finds the checkpoint: a given path, else the download cache shared with the
data sources (:mod:`superres.data.download`), else it downloads it there once.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from superres.data.download import default_cache_dir, file_sha256
from superres.data.download import download as download_file
from superres.errors import ConfigError, DownloadError, WeightsError

logger = logging.getLogger(__name__)

VGG19_URL = "https://download.pytorch.org/models/vgg19-dcbe5e81.pth"
VGG19_FILENAME = "vgg19-dcbe5e81.pth"
VGG19_SHA256_PREFIX = "dcbe5e81"  # torchvision names its checkpoints after the start of their sha256
WEIGHTS_PARAM = "<arch>.train.perceptual_weights"

# torchvision's configuration "E": output channels of each 3x3 convolution, "M" for a 2x2 max-pool.
VGG19_CFG: tuple[int | str, ...] = (
    64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"
)  # fmt: skip

# ImageNet statistics the checkpoint was trained with (RGB, inputs in [0, 1]).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

CRITERIA: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {"l1": F.l1_loss, "mse": F.mse_loss}


def _conv_indices() -> dict[str, int]:
    """``{"conv1_1": 0, ..., "conv5_4": 34}``: the index of each convolution in ``features``."""
    indices = {}
    block, conv, index = 1, 0, 0
    for item in VGG19_CFG:
        if item == "M":
            block, conv, index = block + 1, 0, index + 1
            continue
        conv += 1
        indices[f"conv{block}_{conv}"] = index
        index += 2  # the convolution and its ReLU
    return indices


VGG19_LAYERS: dict[str, int] = _conv_indices()


def vgg19_features(end: int | None = None) -> nn.Sequential:
    """torchvision's ``vgg19().features`` (same indices, random weights), cut after index ``end``."""
    layers: list[nn.Module] = []
    channels = 3
    for item in VGG19_CFG:
        if item == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers += [nn.Conv2d(channels, int(item), kernel_size=3, padding=1), nn.ReLU()]
            channels = int(item)
    return nn.Sequential(*layers[: None if end is None else end + 1])


def _layer_index(layer: str, before_activation: bool) -> int:
    if layer not in VGG19_LAYERS:
        choices = ", ".join(VGG19_LAYERS)
        raise ConfigError(f"perceptual loss layer {layer!r} is not a VGG19 layer; choose one of {choices}")
    return VGG19_LAYERS[layer] if before_activation else VGG19_LAYERS[layer] + 1


def _bad_checkpoint(path: Path, problem: str) -> WeightsError:
    return WeightsError(
        f"{path} is not torchvision's ImageNet VGG19 checkpoint ({problem}); delete it and download "
        f"{VGG19_FILENAME} again from {VGG19_URL}, or point {WEIGHTS_PARAM} to a good copy"
    )


def load_vgg19_state(path: str | os.PathLike[str], features: nn.Sequential) -> dict[str, torch.Tensor]:
    """The ``features.N.*`` tensors of the checkpoint at ``path`` that ``features`` needs, keyed as
    in ``features.state_dict()``. Reads the file with ``weights_only=True`` (no code runs)."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"VGG19 weights {path} not found; download {VGG19_URL} there or fix {WEIGHTS_PARAM}")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch.load raises many types for a truncated, foreign or malicious file
        first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise _bad_checkpoint(path, f"cannot be read safely: {first_line}") from None
    if not isinstance(checkpoint, dict):
        raise _bad_checkpoint(path, f"it holds a {type(checkpoint).__name__}, not a state dict")
    wanted = features.state_dict()
    missing = [f"features.{key}" for key in wanted if f"features.{key}" not in checkpoint]
    if missing:
        raise _bad_checkpoint(path, f"missing {', '.join(missing[:4])}{' ...' if len(missing) > 4 else ''}")
    state = {}
    for key, expected in wanted.items():
        tensor = checkpoint[f"features.{key}"]
        if not isinstance(tensor, torch.Tensor) or tensor.shape != expected.shape:
            shape = tuple(tensor.shape) if isinstance(tensor, torch.Tensor) else type(tensor).__name__
            raise _bad_checkpoint(path, f"features.{key} is {shape}, expected {tuple(expected.shape)}")
        state[key] = tensor
    return state


class PerceptualLoss(nn.Module):
    """Distance (``criterion``: ``l1`` or ``mse``) between the VGG19 features at ``layer`` of the
    prediction and of the target, NCHW RGB in [0, 1]; ``before_activation`` takes the convolution's
    output before its ReLU (ESRGAN's choice), otherwise after it (SRGAN's).

    ``weights`` is the path of torchvision's VGG19 checkpoint (see :func:`vgg19_weights`), or None
    for random weights, which are only good for tests. The network is frozen and stays in eval mode.
    """

    def __init__(
        self,
        weights: str | os.PathLike[str] | None,
        layer: str = "conv5_4",
        before_activation: bool = True,
        criterion: str = "l1",
    ) -> None:
        super().__init__()
        if criterion not in CRITERIA:
            raise ConfigError(
                f"perceptual loss criterion {criterion!r} is unknown; choose one of {', '.join(CRITERIA)}"
            )
        self.layer, self.before_activation, self.criterion = layer, bool(before_activation), criterion
        self.features = vgg19_features(end=_layer_index(layer, before_activation))
        if weights is None:
            logger.warning("PerceptualLoss without weights: VGG19 is random, its features mean nothing (tests only)")
        else:
            self.features.load_state_dict(load_vgg19_state(weights, self.features))
        self.features.requires_grad_(False)
        self.features.eval()
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def extra_repr(self) -> str:
        return f"layer={self.layer!r}, before_activation={self.before_activation}, criterion={self.criterion!r}"

    def train(self, mode: bool = True) -> PerceptualLoss:
        super().train(mode)
        self.features.eval()  # frozen: never in training mode
        return self

    def _features(self, images: torch.Tensor) -> torch.Tensor:
        return self.features((images - self.mean) / self.std)

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            target_features = self._features(target)
        # the features may be bf16 (autocast); their distance is computed in fp32
        return CRITERIA[self.criterion](self._features(pred).float(), target_features.float())


def _missing_message(target: Path, url: str, reason: str) -> str:
    return (
        f"VGG19 weights for the perceptual loss are not available ({reason}): put {VGG19_FILENAME} at {target} "
        f"(download it from {url}), or set {WEIGHTS_PARAM} to the path of that file"
    )


def vgg19_weights(
    path: str | os.PathLike[str] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    *,
    download: bool = True,
    url: str = VGG19_URL,
    sha256_prefix: str | None = VGG19_SHA256_PREFIX,
) -> Path:
    """The path of torchvision's VGG19 checkpoint: ``path`` when given (it must exist), else
    ``<cache_dir>/vgg19-dcbe5e81.pth`` (``cache_dir`` defaults to the data sources' download cache),
    downloaded there from ``url`` once when missing and ``download`` is true. A downloaded file
    whose sha256 does not start with ``sha256_prefix`` is deleted and refused."""
    if path is not None:
        given = Path(path).expanduser()
        if not given.is_file():
            raise WeightsError(f"{WEIGHTS_PARAM}: {given} does not exist; fix the path or download {url} there")
        return given
    cache = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    target = cache / VGG19_FILENAME
    if target.is_file() and target.stat().st_size > 0:
        return target
    if not download:
        raise WeightsError(_missing_message(target, url, "not in the cache and downloads are off"))
    try:
        fetched = download_file(url, cache, filename=VGG19_FILENAME)
    except (DownloadError, ConfigError) as exc:
        raise WeightsError(_missing_message(target, url, str(exc))) from exc
    if sha256_prefix is not None:
        actual = file_sha256(fetched)
        if not actual.startswith(sha256_prefix.lower()):
            fetched.unlink(missing_ok=True)
            raise WeightsError(
                _missing_message(target, url, f"the downloaded file's sha256 is {actual}, not {sha256_prefix}...")
            )
    return fetched
