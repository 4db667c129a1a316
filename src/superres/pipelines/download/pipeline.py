"""download: the images as found, and the ingest report."""

from __future__ import annotations

from kedro.pipeline import Node, Pipeline

from superres.pipelines.download.nodes import fetch_images, ingest_images


def create_pipeline() -> Pipeline:
    return Pipeline(
        [
            Node(fetch_images, "params:data", "raw_images", name="fetch_images"),
            Node(ingest_images, ["raw_images", "params:data"], "ingest_report", name="ingest_images"),
        ],
        tags=["download"],
    )
