"""Compare every architecture: table (CSV, Markdown), plot and HTML page."""

from superres.pipelines.report.pipeline import create_pipeline

__all__ = ["create_pipeline"]
