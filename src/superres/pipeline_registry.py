"""The project's pipelines, registered explicitly.

``download`` -> ``prepare`` (and ``benchmarks``) -> one pipeline per architecture key (train,
then evaluate) -> ``report``. ``__default__`` runs them all. (``find_pipelines`` is not used: under
``--pipelines=X`` it loads selectively and misses pipelines built from a template.)
"""

from __future__ import annotations

from kedro.pipeline import Pipeline

from superres.models import REGISTRY
from superres.pipelines import architecture, benchmarks, download, prepare, report


def register_pipelines() -> dict[str, Pipeline]:
    pipelines: dict[str, Pipeline] = {
        "download": download.create_pipeline(),
        "prepare": prepare.create_pipeline(),
        "benchmarks": benchmarks.create_pipeline(),
        **{key: architecture.create_pipeline(key) for key in REGISTRY},
        "report": report.create_pipeline(),
    }
    pipelines["__default__"] = sum(pipelines.values(), Pipeline([]))
    return pipelines
