"""Fetch the images from the configured source and validate every file."""

from superres.pipelines.download.pipeline import create_pipeline

__all__ = ["create_pipeline"]
