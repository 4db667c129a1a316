"""The per-architecture template: for each seed, ``train`` (tag ``train``) then ``evaluate`` (tag
``evaluate``).

Instantiated once per architecture key and seed under the namespace ``<arch>.seed<s>``, so
``edsr`` with seed 1 reads ``params:edsr.model`` / ``params:edsr.train`` and writes
``edsr.seed1.model``, ``edsr.seed1.metrics``... while the prepared data and the shared parameters
stay common to all. The pipeline of an architecture holds every seed of ``seeds``; one seed alone
runs as ``kedro run --pipelines=edsr --namespaces=edsr.seed1`` (what the DVC stages do).
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import partial, update_wrapper

from kedro.pipeline import Node, Pipeline

from superres.pipelines.architecture.nodes import evaluate_model, train_model

SHARED_INPUTS = {"train_patches", "val_lr", "val_hr", "test_lr", "test_hr", "benchmark_pairs", "tracking_uri"}
SHARED_PARAMS = {"params:train", "params:prepare", "params:data", "params:tracking", "params:evaluate",
                 "params:profile"}


def namespace(architecture: str, seed: int) -> str:
    """The Kedro namespace of one seed of an architecture: ``edsr.seed1``."""
    return f"{architecture}.seed{seed}"


def _bind(func, architecture: str, seed: int):
    return update_wrapper(partial(func, architecture=architecture, seed=seed), func)


def _seed_pipeline(architecture: str, seed: int) -> Pipeline:
    template = Pipeline(
        [
            Node(
                _bind(train_model, architecture, seed),
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
                    "tracking_uri": "tracking_uri",
                    "profile": "params:profile",
                },
                outputs=["model", "history", "mlflow_run"],
                name="train",
                tags=["train"],
            ),
            Node(
                _bind(evaluate_model, architecture, seed),
                inputs={
                    "weights": "model",
                    "history": "history",
                    "mlflow_run": "mlflow_run",
                    "test_lr": "test_lr",
                    "test_hr": "test_hr",
                    "benchmarks": "benchmark_pairs",
                    "evaluate": "params:evaluate",
                    "tracking": "params:tracking",
                    "tracking_uri": "tracking_uri",
                },
                outputs=["sr_images", "per_image_metrics", "benchmark_metrics", "metrics", "timing"],
                name="evaluate",
                tags=["evaluate"],
            ),
        ]
    )
    return Pipeline(
        template,
        namespace=namespace(architecture, seed),
        inputs=SHARED_INPUTS,
        parameters={
            **{p: p for p in SHARED_PARAMS},
            "params:model": f"params:{architecture}.model",
            "params:arch_train": f"params:{architecture}.train",
        },
    )


def create_pipeline(architecture: str, seeds: Iterable[int] = (0,)) -> Pipeline:
    """Train and evaluate ``architecture`` once per seed."""
    return sum((_seed_pipeline(architecture, seed) for seed in seeds), Pipeline([]))
