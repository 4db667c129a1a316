"""Profiles: named sets of parameters, switched into ``params.yaml`` by one command.

``params.yaml`` stays the one source of parameters (DVC and Kedro read it). A profile is a
YAML file in ``conf/profiles/`` holding only the settings it changes; ``superres profile paper``
writes them into ``params.yaml`` in place, keeping its comments and every other key, and
``superres profile default`` writes the default values back. A section's key is set as a whole
(all of ``edsr.model``, all of ``edsr.train``), and every profile sets the same keys (a test
checks it), so switching back and forth is exact.

The write is atomic and the file is checked first: a profile naming a section that
``params.yaml`` does not have is refused before anything is written.
"""

from __future__ import annotations

import copy
import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from superres.atomic import write_text
from superres.errors import ConfigError

PROFILES_DIR = Path("conf/profiles")


def _yaml() -> YAML:
    yaml = YAML()  # round-trip: comments, key order and flow style survive
    yaml.preserve_quotes = True
    yaml.width = 4096
    yaml.representer.add_representer(type(None), lambda r, _: r.represent_scalar("tag:yaml.org,2002:null", "null"))
    return yaml


def available(profiles_dir: str | Path = PROFILES_DIR) -> list[str]:
    """Names of the profiles in ``profiles_dir``."""
    return sorted(p.stem for p in Path(profiles_dir).glob("*.yaml"))


def load_profile(name: str, profiles_dir: str | Path = PROFILES_DIR) -> dict[str, Any]:
    path = Path(profiles_dir) / f"{name}.yaml"
    if not path.is_file():
        known = ", ".join(available(profiles_dir)) or "none"
        raise ConfigError(f"profile {name!r}: no file {path}; known profiles: {known}")
    loaded = _yaml().load(path.read_text(encoding="utf-8"))
    if not isinstance(loaded, Mapping):
        raise ConfigError(f"{path} must be a mapping of parameters")
    return loaded


def _leaves(tree: Mapping[str, Any]) -> dict[str, Any]:
    """The settings of a profile: a top-level value as it is, and each key of a top-level
    section as a whole (``edsr: {model: {...}}`` sets all of ``edsr.model``, so switching leaves
    no key of another profile behind). ``{"a": {"b": {"c": 1}}, "d": 2}`` -> ``{"a.b": {"c": 1}, "d": 2}``."""
    out: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, Mapping):
            out.update({f"{key}.{sub}": item for sub, item in value.items()})
        else:
            out[key] = value
    return out


def _set(params: Any, dotted: str, value: Any, source: str) -> bool:
    """Set ``dotted`` (``key`` or ``section.key``) in ``params``; True when the value changed."""
    section, _, key = dotted.rpartition(".")
    node = params
    if section:
        if section not in params or not isinstance(params[section], Mapping):
            raise ConfigError(f"{source}: params.yaml has no section {section!r}; check the profile")
        node = params[section]
    changed = key not in node or node[key] != value
    node[key] = value
    return changed


def _apply(params: Any, profile: Mapping[str, Any], source: str) -> list[str]:
    """Set every setting of ``profile`` in ``params``; the keys whose value changed."""
    return [key for key, value in _leaves(profile).items() if _set(params, key, value, source)]


def with_profile(params: Mapping[str, Any], name: str, profiles_dir: str | Path = PROFILES_DIR) -> dict[str, Any]:
    """``params`` as ``superres profile name`` would make them, in memory; ``params`` is not changed."""
    merged = copy.deepcopy(dict(params))
    _apply(merged, load_profile(name, profiles_dir), str(Path(profiles_dir) / f"{name}.yaml"))
    return merged


def apply_profile(
    name: str, params_path: str | Path = "params.yaml", profiles_dir: str | Path = PROFILES_DIR
) -> list[str]:
    """Write profile ``name`` into ``params_path``; returns the keys whose value changed."""
    params_path = Path(params_path)
    profile = load_profile(name, profiles_dir)
    source = str(Path(profiles_dir) / f"{name}.yaml")
    yaml = _yaml()
    try:
        params = yaml.load(params_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{params_path} not found; run this from the project's root folder") from None
    changed = _apply(params, profile, source)
    buffer = io.StringIO()
    yaml.dump(params, buffer)
    write_text(params_path, buffer.getvalue())
    return changed
