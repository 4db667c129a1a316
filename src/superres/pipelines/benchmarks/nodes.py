"""Nodes of the benchmarks pipeline."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from superres.data.benchmarks import write_benchmarks
from superres.params.benchmarks import BenchmarksParams
from superres.params.data import DataParams
from superres.params.prepare import PrepareParams


def make_benchmarks(
    benchmarks: Mapping[str, Any] | None, data: Mapping[str, Any], prepare: Mapping[str, Any]
) -> Callable[[Path], None]:
    """What to write into ``data/05_model_input/benchmarks/``: the LR/HR pairs of every benchmark
    at every scale, and the report of every file found.

    The parameters are checked here, before anything is fetched; the ``benchmark_pairs`` dataset
    calls the returned writer on a fresh folder and swaps it in only once it is complete."""
    data = DataParams.from_params(data)
    plan, scales = BenchmarksParams.from_params(benchmarks).plan(PrepareParams.from_params(prepare).scale)
    cache_dir = Path(data.cache_dir).expanduser() if data.cache_dir else None

    def write(folder: Path) -> None:
        write_benchmarks(folder, plan, scales, max_pixels=data.max_pixels, cache_dir=cache_dir)

    return write
