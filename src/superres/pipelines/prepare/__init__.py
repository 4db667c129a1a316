"""Validated HR images, LR counterparts, the split, and the model inputs."""

from superres.pipelines.prepare.pipeline import create_pipeline

__all__ = ["create_pipeline"]
