"""One entry of the ``pretrained`` section of ``params.yaml``: a published checkpoint that the
pipeline imports (``superres import``'s code) and measures beside the trained models."""

from __future__ import annotations

import re
from typing import ClassVar

from pydantic import field_validator

from superres.data.degrade import SCALES
from superres.errors import ConfigError
from superres.params import Section, error, path_text

NAME = re.compile(r"^[a-z][a-z0-9_]*$")
ROW_PREFIX = "pretrained:"  # the report row and MLflow run of the checkpoint ``imdn_x2`` are ``pretrained:imdn_x2``


class PretrainedParams(Section):
    """``pretrained.<name>``: where the checkpoint is, which architecture and scale it is for."""

    SECTION: ClassVar[str] = "pretrained"
    source: str  # a known name (imdn_x2...), a path (relative to the project) or an http(s) URL (downloaded once)
    arch: str | None = None  # the project's architecture key (one with an import table); a known name sets it
    scale: int | None = None  # a known name sets it
    sha256: str | None = None  # checked before the file is read; pins a local file's content too
    origin: str | None = None  # who published the weights, as the report names them

    @field_validator("source", mode="before")
    @classmethod
    def _path(cls, value: object) -> object:
        return path_text(value)

    @field_validator("scale")
    @classmethod
    def _scale(cls, value: int | None) -> int | None:
        if value is not None and value not in SCALES:
            raise error(f"pretrained.scale must be one of {', '.join(map(str, SCALES))}, got {value!r}")
        return value

    @field_validator("sha256")
    @classmethod
    def _digest(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[0-9a-fA-F]{64}", value):
            raise error(f"pretrained.sha256 must be 64 hexadecimal characters, got {value!r}")
        return value.lower() if value else value


def check_name(name: str) -> str:
    """A name of the ``pretrained`` section: lowercase letters, digits and underscores."""
    if not NAME.match(name):
        raise ConfigError(f"pretrained: the name {name!r} must be lowercase letters, digits and underscores, "
                    "starting with a letter (it names the DVC stage and the report row)")
    return name
