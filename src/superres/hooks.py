"""Kedro hooks of the project."""

from __future__ import annotations

import os

from kedro.framework.hooks import hook_impl

from superres.tracking import default_tracking_uri


class TrackingStoreHook:
    """Points MLflow at the project's store before any node runs: ``MLFLOW_TRACKING_URI``
    when the user set it, else ``sqlite:///mlflow.db`` at the project root (the DVC root when
    DVC runs the stage, so that ``dvc exp run --temp`` logs into the project's store). The nodes get
    the same store from the catalog (``tracking_uri``); this makes MLflow's own default agree."""

    @hook_impl
    def after_context_created(self, context) -> None:
        os.environ["MLFLOW_TRACKING_URI"] = default_tracking_uri(context.project_path)
