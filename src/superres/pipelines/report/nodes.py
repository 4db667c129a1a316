"""Nodes of the report pipeline."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from superres.errors import SuperresError
from superres.reporting import comparison_table, crop_rows, html_report, psnr_plot, to_markdown

log = logging.getLogger(__name__)

Lazy = Mapping[str, Callable[[], Any]]


def _by_architecture(partitions: Lazy, suffix: str, architectures: list[str]) -> dict[str, Any]:
    """Load the partitions ``<arch>/<suffix>`` of the architectures asked for."""
    missing = [a for a in architectures if f"{a}/{suffix}" not in partitions]
    if missing:
        raise SuperresError(
            f"no {suffix} for {', '.join(missing)}; run their pipelines first (`kedro run --pipelines={missing[0]}`)"
        )
    return {a: partitions[f"{a}/{suffix}"]() for a in architectures}


def compare(
    per_image: Lazy, configs: Lazy, architectures: list[str]
) -> tuple[pd.DataFrame, str, Figure]:
    """The comparison table of ``architectures`` on the test split, as CSV, Markdown and a plot."""
    table = comparison_table(
        _by_architecture(per_image, "per_image", architectures),
        _by_architecture(configs, "config", architectures),
    )
    log.info("comparison on the test split:\n%s", table.to_string(index=False))
    return table, to_markdown(table, "superres: comparison on the test split"), psnr_plot(table)


def render_html(
    table: pd.DataFrame,
    sr_images: Lazy,
    test_hr: Lazy,
    test_lr: Lazy,
    architectures: list[str],
    prepare: Mapping[str, Any],
    report: Mapping[str, Any],
    profile: str,
) -> str:
    """A self-contained page: the table, the plot and crops of a few test images."""
    names = sorted(test_hr)[: int(report["crops"])]
    outputs = {a: {n: sr_images[f"{a}/images/{n}"]() for n in names if f"{a}/images/{n}" in sr_images} for a in architectures}
    crops = crop_rows(
        {n: test_hr[n]() for n in names},
        {n: test_lr[n]() for n in names},
        outputs,
        scale=int(prepare["scale"]),
        crop_size=int(report["crop_size"]),
    )
    return html_report(
        table, psnr_plot(table), crops, profile=profile, scale=int(prepare["scale"]), n_test=len(test_hr), crop_size=int(report["crop_size"])
    )
