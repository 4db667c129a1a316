"""The dataset of the benchmark sets, beside the pipeline that writes them (its own module, so that
only the stages that read the sets depend on the code that lays them out)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from superres.data.benchmarks import load_pairs
from superres.pipelines.datasets import DirectoryDataset


class BenchmarkPairsDataset(DirectoryDataset):
    """The benchmark sets the benchmarks stage writes, ``<set>_x<scale>/{hr,lr}/<image>.png`` (and
    ``report.csv``). ``save`` takes a writer, as :class:`DirectoryDataset` does; ``load`` returns
    ``{"<set>_x<scale>": {image: (load LR, load HR)}}`` (:func:`superres.data.benchmarks.load_pairs`):
    no image is decoded until it is loaded, and no set at all is an empty mapping."""

    def load(self) -> dict[str, dict[str, tuple[Callable[[], np.ndarray], Callable[[], np.ndarray]]]]:
        return load_pairs(super().load())
