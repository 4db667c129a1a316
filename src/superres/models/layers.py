"""Building blocks shared by several architectures of the zoo.

Scale checks (every model refuses an unsupported ``prepare.scale`` with a :class:`ConfigError`),
3x3 convolutions, sub-pixel upsampling, BasicSR's scaled Kaiming initialisation, the [0, 1] <-> [-1, 1]
conversion, the pad-to-a-multiple / crop pair that lets encoder-decoder networks take any input size,
and the renaming of a published checkpoint's tensors by an explicit table.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from superres.errors import ConfigError, WeightsError


def format_scales(scales: tuple[int, ...]) -> str:
    """``(2, 3, 4)`` -> ``'2, 3 and 4'``."""
    names = [str(s) for s in scales]
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def check_scale(architecture: str, scale: object, scales: tuple[int, ...], *, any_integer: bool = False) -> int:
    """Return ``scale`` if ``architecture`` supports it, else raise a ConfigError naming ``prepare.scale``.

    ``any_integer`` accepts every integer >= 2 (models that work on the bicubic-upsampled input);
    ``scales`` then only lists the usual ones.
    """
    if isinstance(scale, bool) or not isinstance(scale, int):
        raise ConfigError(f"{architecture} needs an integer scale, not {scale!r} (prepare.scale)")
    if any_integer and scale >= 2:
        return scale
    if not any_integer and scale in scales:
        return scale
    supported = "any integer scale >= 2" if any_integer else f"scales {format_scales(scales)}"
    raise ConfigError(f"{architecture} supports {supported}, not {scale} (prepare.scale)")


def conv3x3(in_channels: int, out_channels: int, *, bias: bool = True) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=bias)


def scaled_kaiming_(convs: list[nn.Conv2d], scale: float) -> None:
    """BasicSR's ``default_init_weights(convs, scale)``: Kaiming-normal weights (fan-in, gain sqrt(2)),
    multiplied by ``scale``, and zero biases. A residual branch initialised with ``scale=0.1`` starts
    close to zero, so its block starts close to the identity."""
    for conv in convs:
        nn.init.kaiming_normal_(conv.weight)
        with torch.no_grad():
            conv.weight.mul_(scale)
        if conv.bias is not None:
            nn.init.zeros_(conv.bias)


def subpixel_steps(scale: int, n_feats: int, activation: type[nn.Module] | None = None) -> list[nn.Module]:
    """Sub-pixel convolution: log2(scale) x2 steps for powers of two, one x3 step for 3.

    Each step is a 3x3 conv to ``r*r*n_feats`` channels and ``PixelShuffle(r)``, followed by a
    fresh ``activation()`` if one is given. The caller checks ``scale`` first.
    """
    factors = [3] if scale == 3 else [2] * int(math.log2(scale))
    layers: list[nn.Module] = []
    for r in factors:
        layers += [conv3x3(n_feats, r * r * n_feats), nn.PixelShuffle(r)]
        if activation is not None:
            layers.append(activation())
    return layers


def to_symmetric(x: torch.Tensor) -> torch.Tensor:
    """[0, 1] -> [-1, 1]."""
    return x * 2 - 1


def from_symmetric(x: torch.Tensor) -> torch.Tensor:
    """[-1, 1] -> [0, 1] (not clipped)."""
    return (x + 1) / 2


def pad_to_multiple(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """Pad the bottom and right of ``x`` so both sides are multiples of ``multiple``.

    Reflect padding where the image is large enough for it, replicate padding otherwise
    (reflection cannot pad by as much as the side itself). Returns the padded tensor and the
    original ``(height, width)`` for :func:`crop_to`.
    """
    h, w = x.shape[-2:]
    pad_h, pad_w = -h % multiple, -w % multiple
    if pad_h or pad_w:
        mode = "reflect" if pad_h < h and pad_w < w else "replicate"
        x = F.pad(x, (0, pad_w, 0, pad_h), mode=mode)
    return x, (h, w)


def crop_to(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    return x[..., : size[0], : size[1]]


def check_keys(state: dict[str, torch.Tensor], table: dict[str, str], what: str) -> None:
    """Every key of ``state`` is in ``table`` and every entry of ``table`` in ``state``; otherwise a
    :class:`WeightsError` starting ``what`` lists the unknown and the missing keys."""
    unknown, missing = sorted(set(state) - set(table)), sorted(set(table) - set(state))
    if unknown or missing:
        raise WeightsError(f"{what}: " + "; ".join(f"{kind} key(s) {', '.join(keys)}"
                                                   for kind, keys in (("unknown", unknown), ("missing", missing))
                                                   if keys))


def renamed(state: dict[str, torch.Tensor], table: dict[str, str], expected: dict[str, torch.Tensor],
            architecture: str) -> dict[str, torch.Tensor]:
    """The tensors of a published checkpoint under the model's names, by ``table`` (theirs -> ours).

    The keys must match the table (:func:`check_keys`), and each tensor must have the shape the model
    (its ``state_dict()``: ``expected``) has under the new name.
    """
    check_keys(state, table, f"not the {architecture} checkpoint this table reads")
    converted = {}
    for key, tensor in state.items():
        name = table[key]
        if tensor.shape != expected[name].shape:
            raise WeightsError(f"{architecture} checkpoint: {key} has shape {tuple(tensor.shape)}, the network its "
                               f"other tensors describe needs {tuple(expected[name].shape)} there")
        converted[name] = tensor
    return converted
