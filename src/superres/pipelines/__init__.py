"""Kedro pipelines: node functions and wiring only. The work is done by the library below."""
