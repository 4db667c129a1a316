"""Import the weights that papers published into the project's own architectures.

``import_official(source, architecture, scale)`` reads a checkpoint in its authors' format, maps
every tensor to the project's architecture with that architecture's explicit table (its
``from_official``), and returns :class:`~superres.models.weights.Weights` that
:func:`~superres.models.weights.save_weights` writes as safetensors + ``config.json``: a folder
that ``--model`` and the pipelines accept like any trained model.

Formats, told apart by their content:

- PyTorch state dicts, zip or legacy serialisation, with the usual wrappers (``params_ema``,
  ``params``, ``state_dict``, ``model``) and a ``module.`` prefix, read with
  ``torch.load(weights_only=True)``;
- a pickled whole ``nn.Module`` (as some ports saved theirs): read by
  :mod:`superres.models.safe_pickle`, which builds tensors and containers only and keeps every
  other object as inert data, so nothing in the file runs;
- MatConvNet DagNN ``.mat`` files (:mod:`superres.models.matconvnet`);
- re-parameterised ``eval_conv`` keys (the NTIRE efficient-SR entries) are mapped by their
  architecture's table.

The mapping is strict: a tensor the table does not know, a missing one or a shape that differs is a
:class:`~superres.errors.WeightsError` naming it. Nothing is left over and nothing is guessed.
"""

from __future__ import annotations

import csv
import functools
import pickle
import re
import urllib.parse
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import torch
from torch import nn

from superres.data.download import default_cache_dir, download, file_sha256
from superres.errors import WeightsError
from superres.models import (
    REGISTRY,
    create_model,
    fsrcnn,
    imdn,
    lapsrn_lai,
    rlfn,
    span,
    srcnn,
    vdsr,
)
from superres.models.matconvnet import read_dagnn
from superres.models.safe_pickle import load_torch_file, module_state_dict
from superres.models.weights import Weights, unwrap_state_dict
from superres.models.ychannel import YChannel

Converter = Callable[[dict[str, torch.Tensor], int], tuple[dict[str, Any], dict[str, torch.Tensor]]]

# Architecture key -> its table from the authors' names to the project's.
CONVERTERS: dict[str, Converter] = {
    "srcnn": srcnn.from_official,
    "fsrcnn": fsrcnn.from_official,
    "vdsr": vdsr.from_official,
    "lapsrn_lai": lapsrn_lai.from_official,
    "imdn": imdn.from_official,
    "rlfn": rlfn.from_official,
    "span": span.from_official,
}

_MAT_MAGIC = b"MATLAB"
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class Official:
    """A published checkpoint known by name (``src/superres/reference/pretrained.csv``)."""

    name: str
    arch: str
    scale: int
    url: str
    sha256: str
    origin: str


@functools.cache
def official_checkpoints() -> dict[str, Official]:
    """The published checkpoints the project knows by name: their authors' URL, checksum and origin."""
    with resources.files("superres.reference").joinpath("pretrained.csv").open(encoding="utf-8") as f:
        return {row["name"]: Official(**{**row, "scale": int(row["scale"])}) for row in csv.DictReader(f)}


def resolve(source: str, arch: str | None, scale: int | None, sha256: str | None,
            origin: str | None) -> tuple[str, str, int, str | None, str | None]:
    """``(source, arch, scale, sha256, origin)``, a known name (``imdn_x2``) replaced by its URL, and its
    architecture, scale, checksum and origin filling what is not given. A path or URL needs ``arch``
    and ``scale``; a known name refuses values that contradict it."""
    known = official_checkpoints().get(source)
    if known is None:
        if arch is None or scale is None:
            raise WeightsError(f"{source}: give the architecture and scale of the checkpoint (--arch, --scale), "
                               f"or one of the known names: {', '.join(official_checkpoints())}")
        return source, arch, scale, sha256, origin
    for what, given, value in (("architecture", arch, known.arch), ("scale", scale, known.scale),
                               ("sha256", sha256, known.sha256)):
        if given is not None and given != value:
            raise WeightsError(f"{source} is the {known.arch} x{known.scale} checkpoint of {known.origin}; "
                               f"its {what} is {value}, not {given}")
    return known.url, known.arch, known.scale, known.sha256, origin or known.origin


def fetch(source: str | Path, sha256: str | None = None, cache_dir: str | Path | None = None) -> Path:
    """The local file of ``source``: a path, or an http(s) URL downloaded once into ``cache_dir``
    (default: the project's download cache) and checked against ``sha256`` when it is given. A
    local file is checked against ``sha256`` too."""
    if sha256 is not None and not _SHA256.match(sha256.strip().lower()):
        raise WeightsError(f"--sha256 {sha256!r} is not a SHA-256 digest (64 hexadecimal characters)")
    expected = sha256.strip().lower() if sha256 else None
    text = str(source)
    if urllib.parse.urlsplit(text).scheme.lower() in ("http", "https"):
        folder = Path(cache_dir) if cache_dir is not None else default_cache_dir() / "pretrained"
        return download(text, folder, sha256=expected)
    path = Path(text)
    if not path.is_file():
        raise WeightsError(f"{path} not found; give the path of a checkpoint or its http(s) URL")
    if expected is not None and (actual := file_sha256(path)) != expected:
        raise WeightsError(f"{path} has sha256 {actual}, not the expected {expected}; the file is not the one "
                           "published, or it is corrupt: download it again")
    return path


def read_tensors(path: str | Path) -> tuple[dict[str, torch.Tensor], str]:
    """The tensors of the checkpoint at ``path`` by their names in the file, and its format's name."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            head = f.read(128)
    except FileNotFoundError:
        raise WeightsError(f"{path} not found; check the path") from None
    except OSError as exc:
        raise WeightsError(f"{path} cannot be read ({exc})") from None
    if head.startswith(_MAT_MAGIC):
        return read_dagnn(path), "MatConvNet DagNN (.mat)"
    kind = "zip" if zipfile.is_zipfile(path) else "legacy"
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        # Not tensors and containers only: a pickled module, read as inert data.
        state = module_state_dict(load_torch_file(path), source=path)
        return state, f"pickled PyTorch module ({kind} serialisation), read inertly"
    except (RuntimeError, OSError, EOFError, ValueError) as exc:
        raise WeightsError(f"{path} is neither a PyTorch checkpoint nor a MatConvNet .mat file ({exc})") from None
    return unwrap_state_dict(checkpoint, path), f"PyTorch state dict ({kind} serialisation)"


def _target(model: nn.Module) -> nn.Module:
    """The network whose tensors a checkpoint holds (inside the luminance wrapper for Y models)."""
    return model.net if isinstance(model, YChannel) else model


def convert(tensors: dict[str, torch.Tensor], architecture: str, scale: int) -> tuple[nn.Module, dict[str, Any]]:
    """The model of ``architecture`` at ``scale`` holding ``tensors``, and its config (``model`` keys)."""
    try:
        converter = CONVERTERS[architecture]
    except KeyError:
        known = ", ".join(sorted(CONVERTERS))
        hint = "" if architecture in REGISTRY else " (it is not an architecture of the project)"
        raise WeightsError(f"no import table for {architecture!r}{hint}; the architectures with one: {known}") from None
    config, state = converter(tensors, scale)
    model = create_model(architecture, scale=scale, **config)
    expected = _target(model).state_dict()
    missing = sorted(set(expected) - set(state))
    extra = sorted(set(state) - set(expected))
    if missing or extra:
        raise WeightsError(f"the checkpoint does not fill the {architecture} model at x{scale}: "
                           f"missing {', '.join(missing) or 'nothing'}; not used {', '.join(extra) or 'nothing'}")
    wrong = [f"{key} {tuple(state[key].shape)} (the model's is {tuple(expected[key].shape)})"
             for key in expected if state[key].shape != expected[key].shape]
    if wrong:
        raise WeightsError(f"the checkpoint's tensors do not fit the {architecture} model at x{scale}: "
                           f"{'; '.join(wrong)}; check --scale and --arch")
    _target(model).load_state_dict({k: v.float() for k, v in state.items()}, strict=True)
    return model.eval(), config


def import_official(path: str | Path, architecture: str, scale: int,
                    source: dict[str, Any] | None = None) -> Weights:
    """The weights of the official checkpoint at ``path`` as the project's ``architecture`` at ``scale``.

    ``source`` (where the file came from: its URL, checksum, origin) is kept in the config under
    ``pretrained``, with the format that was read."""
    tensors, fmt = read_tensors(path)
    model, config = convert(tensors, architecture, scale)
    pretrained = {"format": fmt, "tensors": len(tensors), **(source or {})}
    return Weights(model.state_dict(),
                   {"architecture": architecture, "scale": scale, "model": config, "pretrained": pretrained})
