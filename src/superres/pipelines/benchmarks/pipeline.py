"""benchmarks: the standard test sets as LR/HR pairs, evaluated on by every architecture."""

from __future__ import annotations

from kedro.pipeline import Node, Pipeline

from superres.pipelines.benchmarks.nodes import make_benchmarks


def create_pipeline() -> Pipeline:
    return Pipeline(
        [Node(make_benchmarks, ["params:benchmarks", "params:data", "params:prepare"], "benchmark_pairs",
              name="make_benchmarks")],
        tags=["benchmarks"],
    )
