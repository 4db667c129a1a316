"""The typed sections of ``params.yaml``: ``data``, ``prepare``, ``benchmarks`` and ``evaluate``,
validated once where they enter the code (the nodes), then read as attributes.

Each section is a pydantic model with strict types (``scale: 4.5`` is an error, not 4, and ``true``
is not a number), no unknown keys, and its ranges and cross-key rules checked (``prepare.split``
sums to 1, the patch size is a multiple of the scale...). A key left out takes its default, and
the defaults are the values of the default profile's ``params.yaml`` (a test keeps the two equal),
so there is one set of defaults. ``Section.from_params(mapping)`` returns the object or raises a
``ConfigError`` whose one-line message names each bad key as ``params.yaml`` spells it, e.g.
``prepare.scale: must be 2, 3, 4 or 8, got 5``.

One module per section (``superres.params.data``, ``.prepare``, ``.benchmarks``, ``.evaluate``),
so that a stage depends on the code of the sections it reads only; this module holds what they share.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic_core import PydanticCustomError

from superres.errors import ConfigError

__all__ = ["Section", "error", "path_text"]

_OURS = "superres"  # the type of the errors whose message names the key itself


def error(message: str) -> PydanticCustomError:
    """A validation error whose message is ``message`` as it is (it names the key)."""
    return PydanticCustomError(_OURS, "{message}", {"message": message})


def path_text(value: Any) -> Any:
    """A path given as a ``Path`` (from code, not YAML) read as the string YAML would give."""
    return os.fspath(value) if isinstance(value, os.PathLike) else value


class Section(BaseModel):
    """A section of ``params.yaml``: strict, closed, read-only."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)
    SECTION: ClassVar[str] = ""

    @classmethod
    def from_params(cls, params: Mapping[str, Any] | Section | None):  # -> Self
        """The section ``params`` (a mapping as Kedro passes it; None = every default), checked.
        Raises ``ConfigError`` naming every bad key, on one line."""
        if isinstance(params, cls):
            return params
        if params is None:
            params = {}
        if not isinstance(params, Mapping):
            raise ConfigError(f"{cls.SECTION}: must be a mapping of keys, got {params!r}")
        try:
            return cls.model_validate(dict(params))
        except ValidationError as exc:
            raise ConfigError("; ".join(_message(cls, detail) for detail in exc.errors())) from None


def _message(model: type[BaseModel], detail: Mapping[str, Any]) -> str:
    """One validation error as ``section.key: what is wrong, got <value>``."""
    loc = [str(part) for part in detail["loc"]]
    key = "".join([model.SECTION, *(f"[{part}]" if isinstance(part, int) else f".{part}" for part in detail["loc"])])
    if detail["type"] == _OURS:
        return detail["msg"]
    if detail["type"] == "extra_forbidden":
        known = _known_keys(model, loc[:-1])
        return f"{key}: unknown key; known keys are {', '.join(known)}" if known else f"{key}: unknown key"
    if detail["type"] == "literal_error":  # as the checks before the typed sections said it
        names = [str(part) for part in detail["loc"] if not isinstance(part, int)]
        name = names[-1] if names else model.SECTION
        if isinstance(detail["loc"][-1], int):
            name = name.removesuffix("s")  # benchmarks.sets[1]: "not a known set"
        choices = str(detail.get("ctx", {}).get("expected", "")).replace("'", "").replace(" or ", ", ")
        return f"{key}: {detail['input']!r} is not a known {name}; choose one of {choices}"
    if detail["type"] in ("model_type", "model_attributes_type", "dict_type"):
        return f"{key}: must be a mapping of keys, got {detail['input']!r}"
    message = detail["msg"][:1].lower() + detail["msg"][1:]
    return f"{key}: {message}, got {detail['input']!r}"


def _known_keys(model: type[BaseModel], loc: list[str]) -> list[str]:
    """The keys of the section (or nested section) at ``loc``."""
    for part in loc:
        field = model.model_fields.get(part)
        annotation = field.annotation if field is not None else None
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return []
        model = annotation
    return list(model.model_fields)
