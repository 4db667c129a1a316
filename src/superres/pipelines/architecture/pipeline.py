"""The per-architecture template: ``train`` (tag ``train``) then ``evaluate`` (tag ``evaluate``).

Instantiated once per architecture key under the namespace of that key, so ``edsr`` reads
``params:edsr.model`` / ``params:edsr.train`` and writes ``edsr.model``, ``edsr.metrics``...
while the prepared data and the shared parameters stay common to all.
"""

from __future__ import annotations

from functools import partial, update_wrapper

from kedro.pipeline import Node, Pipeline

from superres.pipelines.architecture.nodes import evaluate_model, train_model

SHARED_INPUTS = {"train_patches", "val_lr", "val_hr", "test_lr", "test_hr", "benchmark_pairs"}
SHARED_PARAMS = {"params:train", "params:prepare", "params:data", "params:tracking", "params:evaluate", "params:profile"}


def _bind(func, architecture: str):
    return update_wrapper(partial(func, architecture=architecture), func)


def create_pipeline(architecture: str) -> Pipeline:
    template = Pipeline(
        [
            Node(
                _bind(train_model, architecture),
                inputs={
                    "patches": "train_patches",
                    "val_lr": "val_lr",
                    "val_hr": "val_hr",
                    "checkpoints": "checkpoints",
                    "model_params": "params:model",
                    "train_overrides": "params:arch_train",
                    "train_params": "params:train",
                    "prepare": "params:prepare",
                    "data": "params:data",
                    "tracking": "params:tracking",
                    "profile": "params:profile",
                },
                outputs=["model", "history", "mlflow_run"],
                name="train",
                tags=["train"],
            ),
            Node(
                _bind(evaluate_model, architecture),
                inputs={
                    "weights": "model",
                    "history": "history",
                    "mlflow_run": "mlflow_run",
                    "test_lr": "test_lr",
                    "test_hr": "test_hr",
                    "benchmarks": "benchmark_pairs",
                    "evaluate": "params:evaluate",
                    "tracking": "params:tracking",
                },
                outputs=["sr_images", "per_image_metrics", "benchmark_metrics", "metrics", "timing"],
                name="evaluate",
                tags=["evaluate"],
            ),
        ]
    )
    return Pipeline(
        template,
        namespace=architecture,
        inputs=SHARED_INPUTS,
        parameters={**{p: p for p in SHARED_PARAMS}, "params:arch_train": f"params:{architecture}.train"},
    )
