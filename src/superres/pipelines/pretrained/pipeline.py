"""The pretrained template: ``import`` then ``evaluate`` one published checkpoint of
``params:pretrained``, instantiated per name under the namespace ``pretrained.<name>`` (what the
DVC stage ``pretrained@<name>`` runs: ``kedro run --pipelines=pretrained --namespaces=pretrained.<name>``).
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import partial, update_wrapper

from kedro.pipeline import Node, Pipeline

from superres.pipelines.pretrained.nodes import evaluate_pretrained, import_pretrained

SHARED_INPUTS = {"test_lr", "test_hr", "benchmark_pairs", "tracking_uri"}
SHARED_PARAMS = {"params:data", "params:prepare", "params:evaluate", "params:tracking"}


def namespace(name: str) -> str:
    return f"pretrained.{name}"


def _bind(func, name: str):
    return update_wrapper(partial(func, name=name), func)


def _checkpoint_pipeline(name: str) -> Pipeline:
    template = Pipeline(
        [
            Node(_bind(import_pretrained, name), inputs={"params": "params:entry", "data": "params:data"},
                 outputs="model", name="import", tags=["import"]),
            Node(
                _bind(evaluate_pretrained, name),
                inputs={
                    "weights": "model",
                    "test_lr": "test_lr",
                    "test_hr": "test_hr",
                    "benchmarks": "benchmark_pairs",
                    "evaluate": "params:evaluate",
                    "prepare": "params:prepare",
                    "tracking": "params:tracking",
                    "tracking_uri": "tracking_uri",
                },
                outputs=["sr_images", "per_image_metrics", "benchmark_metrics", "metrics", "timing", "mlflow_run"],
                name="evaluate",
                tags=["evaluate"],
            ),
        ]
    )
    return Pipeline(template, namespace=namespace(name), inputs=SHARED_INPUTS,
                    parameters={**{p: p for p in SHARED_PARAMS}, "params:entry": f"params:pretrained.{name}"})


def create_pipeline(names: Iterable[str] = ()) -> Pipeline:
    """Import and measure every checkpoint of ``names`` (the keys of ``params:pretrained``)."""
    return sum((_checkpoint_pipeline(name) for name in names), Pipeline([]))
