"""Split images (never patches) into train / val / test, seeded and reproducible."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np

from superres.errors import ConfigError

SPLITS = ("train", "val", "test")


def split_counts(n: int, fractions: Mapping[str, float]) -> dict[str, int]:
    """Images per split: val and test get round(n * fraction), at least one each when n >= 3."""
    unknown = sorted(set(fractions) - set(SPLITS))
    if unknown:
        raise ConfigError(f"prepare.split: unknown split(s) {', '.join(unknown)}; use train, val and test")
    total = sum(float(fractions.get(s, 0.0)) for s in SPLITS)
    if total <= 0 or any(float(fractions.get(s, 0.0)) < 0 for s in SPLITS):
        raise ConfigError("prepare.split: fractions must be >= 0 and not all zero")
    counts = {}
    for s in ("val", "test"):
        share = float(fractions.get(s, 0.0)) / total
        counts[s] = int(round(n * share))
        if share > 0 and n >= 3:
            counts[s] = max(counts[s], 1)
    counts["train"] = n - counts["val"] - counts["test"]
    if counts["train"] < 1:
        raise ConfigError(f"prepare.split: {n} usable image(s) leave none for training; add images")
    return counts


def split_images(names: Iterable[str], fractions: Mapping[str, float], seed: int) -> dict[str, str]:
    """Map each image name to its split. The names are sorted first, so the result depends only
    on the set of names, the fractions and the seed."""
    ordered = sorted(set(names))
    counts = split_counts(len(ordered), fractions)
    order = np.random.default_rng(seed).permutation(len(ordered))
    labels = ["test"] * counts["test"] + ["val"] * counts["val"] + ["train"] * counts["train"]
    return {ordered[i]: labels[k] for k, i in enumerate(order)}
