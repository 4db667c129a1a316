"""Kedro hooks of the project."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from kedro.framework.hooks import hook_impl

from superres.tracking import NODE_INPUTS, PIPELINE, default_tracking_uri, dvc_inputs, pipeline_process


class TrackingStoreHook:
    """Points MLflow at the project's store before any node runs: ``MLFLOW_TRACKING_URI``
    when the user set it, else ``sqlite:///mlflow.db`` at the project root (the DVC root when
    DVC runs the stage, so that ``dvc exp run --temp`` logs into the project's store). The nodes get
    the same store from the catalog (``tracking_uri``); this makes MLflow's own default agree."""

    @hook_impl
    def after_context_created(self, context) -> None:
        os.environ["MLFLOW_TRACKING_URI"] = default_tracking_uri(context.project_path)


class LineageHook:
    """Tells the tracking module which pipeline run and which data each node belongs to: the runs a
    node opens are children of one MLflow run per ``dvc repro`` / ``dvc exp run`` (or ``kedro run``),
    and record the DVC outputs the node reads, with their hashes, as their datasets."""

    def __init__(self) -> None:
        self.root = Path.cwd()

    @hook_impl
    def after_context_created(self, context) -> None:
        self.root = Path(context.project_path)

    @hook_impl
    def before_pipeline_run(self, run_params, pipeline, catalog) -> None:
        PIPELINE.set(pipeline_process())

    @hook_impl
    def after_pipeline_run(self, run_params, run_result, pipeline, catalog) -> None:
        PIPELINE.set(None)

    @hook_impl
    def on_pipeline_error(self, error, run_params, pipeline, catalog) -> None:
        PIPELINE.set(None)

    @hook_impl
    def before_node_run(self, node, catalog, inputs, is_async, run_id) -> None:
        paths = []
        for name in node.inputs:
            description = _describe(catalog, name)
            path = description.get("path") or description.get("filepath")
            if path:
                paths.append(str(path))
        NODE_INPUTS.set((node.name.rpartition(".")[2], tuple(dvc_inputs(self.root, paths))))

    @hook_impl
    def after_node_run(self, node, catalog, inputs, outputs, is_async, run_id) -> None:
        NODE_INPUTS.set(("", ()))

    @hook_impl
    def on_node_error(self, error, node, catalog, inputs, is_async, run_id) -> None:
        NODE_INPUTS.set(("", ()))


def _describe(catalog: Any, name: str) -> dict[str, Any]:
    """A catalog dataset's own description (its ``path`` or ``filepath``); empty for parameters and
    datasets that describe nothing."""
    if name.startswith("params:") or name == "parameters":
        return {}
    try:
        description = catalog[name]._describe()
    except Exception:  # a dataset that cannot say where it is has no lineage
        return {}
    return description if isinstance(description, dict) else {}
