"""Fetch the benchmark test sets (Set5, Set14... or local folders) and make their LR/HR pairs."""

from superres.pipelines.benchmarks.pipeline import create_pipeline

__all__ = ["create_pipeline"]
