"""Split images (never patches) into train / val / test, seeded and reproducible.

Images known to show one scene (the two views of a stereo pair, crops of one photograph) form a
*group*, and a group goes to one split as a whole: otherwise validation and test would measure
how well a model remembers a picture it was trained on.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np

from superres.errors import ConfigError

SPLITS = ("train", "val", "test")
SUM_TOLERANCE = 1e-6  # fractions written with a few decimals (0.7 + 0.15 + 0.15) sum to 1 only up to rounding


def check_fractions(fractions: Mapping[str, float], parameter: str = "prepare.split") -> dict[str, float]:
    """The fractions of ``train``, ``val`` and ``test`` as floats, checked: known keys, numbers
    >= 0, a sum of 1 (within ``SUM_TOLERANCE``). Raises ConfigError naming ``parameter``."""
    if not isinstance(fractions, Mapping):
        raise ConfigError(f"{parameter} must be a mapping like {{train: 0.7, val: 0.15, test: 0.15}}, "
                          f"got {fractions!r}")
    unknown = sorted(set(fractions) - set(SPLITS))
    if unknown:
        raise ConfigError(f"{parameter}: unknown split(s) {', '.join(map(str, unknown))}; use train, val and test")
    checked = {}
    for split in SPLITS:
        value = fractions.get(split, 0.0)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
            raise ConfigError(f"{parameter}.{split} must be a number >= 0, got {value!r}")
        checked[split] = float(value)
    total = sum(checked.values())
    if abs(total - 1.0) > SUM_TOLERANCE:
        shares = ", ".join(f"{s} {checked[s]:g}" for s in SPLITS)
        raise ConfigError(f"{parameter}: the fractions sum to {total:g} ({shares}), not 1; change them so that "
                          "they add up to 1")
    return checked


def split_counts(n: int, fractions: Mapping[str, float]) -> dict[str, int]:
    """Images per split for ``n`` images: val and test get round(n * fraction), at least one
    each when their fraction is not 0; train gets the rest, at least one."""
    shares = check_fractions(fractions)
    counts = {s: max(1, int(round(n * shares[s]))) if shares[s] > 0 else 0 for s in ("val", "test")}
    counts["train"] = n - counts["val"] - counts["test"]
    if shares["train"] == 0:
        raise ConfigError("prepare.split.train is 0: nothing to train on; give train a fraction above 0")
    if counts["train"] < 1:
        wanted = ["train", *(s for s in ("val", "test") if counts[s])]
        raise ConfigError(f"prepare.split: {n} usable image(s) are too few for {', '.join(wanted)} (one image "
                          "at least in each); add images or change prepare.split")
    return counts


def split_images(names: Iterable[str], fractions: Mapping[str, float], seed: int,
                 groups: Mapping[str, str] | None = None) -> dict[str, str]:
    """Map each image name to its split.

    ``groups`` maps an image name to the name of its group (images absent from it are groups of
    their own); a group is assigned as one unit. The units are shuffled with ``seed`` and dealt
    in that order: each goes to test while it fits in test's count (``split_counts``), then to
    val while it fits in val's, else to train. So the counts are exact whenever the groups allow
    it, and without groups this is a seeded permutation of the images. The names are sorted
    first: the result depends only on the set of names, the fractions, the seed and the groups.
    """
    ordered = sorted(set(names))
    counts = split_counts(len(ordered), fractions)
    groups = groups or {}
    members: dict[str, list[str]] = {}
    for name in ordered:
        members.setdefault(str(groups.get(name, name)), []).append(name)
    units = sorted(members.values())  # each unit is a sorted list of names, listed by its first name
    order = np.random.default_rng(seed).permutation(len(units))
    need = {"test": counts["test"], "val": counts["val"]}
    assignment = {}
    for i in order:
        unit = units[i]
        split = next((s for s in ("test", "val") if len(unit) <= need[s]), "train")
        if split != "train":
            need[split] -= len(unit)
        assignment.update(dict.fromkeys(unit, split))
    empty = [s for s in SPLITS if counts[s] > 0 and s not in assignment.values()]
    if empty:
        raise ConfigError(f"prepare.split: {len(ordered)} images, {len(units)} units once the images of one scene "
                          f"are kept together, leave {' and '.join(empty)} empty; add images")
    return assignment
