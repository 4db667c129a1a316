"""pretrained: import the published checkpoints of ``params:pretrained`` and measure them as the
trained models are measured."""

from superres.pipelines.pretrained.pipeline import create_pipeline

__all__ = ["create_pipeline"]
