"""The project's pipelines, registered explicitly.

``download`` -> ``prepare`` (and ``benchmarks``) -> one pipeline per architecture key (train,
then evaluate, once per seed of ``seeds``) and ``pretrained`` (import, then evaluate, once per
checkpoint of ``pretrained``) -> ``report``. ``__default__`` runs them all.
(``find_pipelines`` is not used: under ``--pipelines=X`` it loads selectively and misses
pipelines built from a template.)
"""

from __future__ import annotations

from pathlib import Path

import yaml
from kedro.pipeline import Pipeline
from kedro.utils import find_kedro_project

from superres.errors import ConfigError
from superres.models import REGISTRY
from superres.params.pretrained import check_name
from superres.pipelines import architecture, benchmarks, download, prepare, pretrained, report

PARAMS_FILE = "params.yaml"


def check_seeds(value: object) -> list[int]:
    """``seeds`` as a list of distinct non-negative integers; anything else names the key."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = [value]
    if (not isinstance(value, list) or not value
            or any(not isinstance(s, int) or isinstance(s, bool) or s < 0 for s in value)):
        raise ConfigError(f"seeds must be a non-empty list of integers >= 0, e.g. [0, 1, 2]; got {value!r}")
    if len(set(value)) != len(value):
        raise ConfigError(f"seeds lists a seed twice: {value!r}; list each seed once")
    return list(value)


def _project_params(start: Path | None) -> dict:
    """The project's ``params.yaml`` (the file Kedro's parameters come from), ``{}`` outside a project.
    The pipelines are built before Kedro has loaded its parameters, so the registry reads the keys
    that shape them (``seeds``, the names of ``pretrained``) itself."""
    root = find_kedro_project(start or Path.cwd())
    path = root / PARAMS_FILE if root is not None else None
    if path is None or not path.is_file():
        return {}
    return yaml.safe_load(path.read_text(encoding="utf-8")) or {}


def project_seeds(start: Path | None = None) -> list[int]:
    """The ``seeds`` of the project's ``params.yaml``, or ``[0]`` outside a project."""
    return check_seeds(_project_params(start).get("seeds", [0]))


def project_pretrained(start: Path | None = None) -> list[str]:
    """The names of the ``pretrained`` section of the project's ``params.yaml`` (none outside a project)."""
    section = _project_params(start).get("pretrained") or {}
    if not isinstance(section, dict):
        raise ConfigError(f"pretrained must be a mapping of names to checkpoints (or {{}}), got {section!r}")
    return [check_name(str(name)) for name in section]


def register_pipelines() -> dict[str, Pipeline]:
    seeds = project_seeds()
    pipelines: dict[str, Pipeline] = {
        "download": download.create_pipeline(),
        "prepare": prepare.create_pipeline(),
        "benchmarks": benchmarks.create_pipeline(),
        **{key: architecture.create_pipeline(key, seeds) for key in REGISTRY},
        "pretrained": pretrained.create_pipeline(project_pretrained()),
        "report": report.create_pipeline(),
    }
    pipelines["__default__"] = sum(pipelines.values(), Pipeline([]))
    return pipelines
