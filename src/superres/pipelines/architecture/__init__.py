"""Train then evaluate one architecture: the template instantiated per architecture key."""

from superres.pipelines.architecture.pipeline import create_pipeline

__all__ = ["create_pipeline"]
