"""Nodes of the benchmarks pipeline."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from superres.data.benchmarks import benchmark_plan, write_benchmarks


def make_benchmarks(
    benchmarks: Mapping[str, Any] | None, data: Mapping[str, Any], prepare: Mapping[str, Any]
) -> Callable[[Path], None]:
    """What to write into ``data/05_model_input/benchmarks/``: the LR/HR pairs of every benchmark
    at every scale, and the report of every file found.

    The parameters are checked here, before anything is fetched; the ``benchmark_pairs`` dataset
    calls the returned writer on a fresh folder and swaps it in only once it is complete."""
    plan, scales = benchmark_plan(benchmarks, int(prepare["scale"]))
    cache_dir = Path(data["cache_dir"]).expanduser() if data.get("cache_dir") else None

    def write(folder: Path) -> None:
        write_benchmarks(folder, plan, scales, max_pixels=int(data["max_pixels"]), cache_dir=cache_dir)

    return write
