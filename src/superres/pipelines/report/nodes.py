"""Nodes of the report pipeline."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from superres.errors import SuperresError
from superres.reporting import comparison_table, crop_rows, html_report, published_table, report_figures, to_markdown
from superres.training.tracking import KIND_TAG, Tracker, default_tracking_uri

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
    per_image: Lazy, configs: Lazy, timings: Lazy, architectures: list[str], prepare: Mapping[str, Any]
) -> tuple[pd.DataFrame, str]:
    """The comparison of ``architectures`` on the test split, as a table and as Markdown."""
    table = comparison_table(_by_architecture(per_image, "per_image", architectures),
                             _by_architecture(configs, "config", architectures),
                             _by_architecture(timings, "timing", architectures))
    log.info("comparison on the test split:\n%s", table.to_string(index=False))
    scale = int(prepare["scale"])
    return table, to_markdown(table, published_table(scale), "superres: comparison on the test split", scale)


def plot(table: pd.DataFrame, per_image: Lazy, histories: Lazy, architectures: list[str]) -> dict[str, Figure]:
    """Every plot of the report, by file name."""
    return report_figures(table, _by_architecture(per_image, "per_image", architectures),
                          _by_architecture(histories, "history", architectures))


def save_plots(figures: dict[str, Figure]) -> dict[str, Figure]:
    """The same figures, for the catalog to write as PNG files (the page and MLflow reuse them
    in memory)."""
    return figures


def render_html(
    table: pd.DataFrame,
    figures: Mapping[str, Figure],
    sr_images: Lazy,
    test_hr: Lazy,
    test_lr: Lazy,
    architectures: list[str],
    prepare: Mapping[str, Any],
    report: Mapping[str, Any],
    profile: str,
) -> str:
    """A self-contained page: the table, the published reference rows, the plots and crops of
    a few test images."""
    scale, crop_size = int(prepare["scale"]), int(report["crop_size"])
    names = sorted(test_hr)[: int(report["crops"])]
    outputs = {a: {n: sr_images[f"{a}/images/{n}"]() for n in names if f"{a}/images/{n}" in sr_images} for a in architectures}
    crops = crop_rows({n: test_hr[n]() for n in names}, {n: test_lr[n]() for n in names}, outputs, scale, crop_size)
    return html_report(table, published_table(scale), figures, crops, profile=profile, scale=scale,
                       n_test=len(test_hr), crop_size=crop_size)


def log_report(
    table: pd.DataFrame,
    markdown: str,
    html: str,
    figures: Mapping[str, Figure],
    architectures: list[str],
    tracking: Mapping[str, Any],
    profile: str,
) -> None:
    """Record the comparison as an MLflow run of its own (run name ``report``): the table, the
    page and the plots as artifacts, each architecture's test PSNR-Y as a metric."""
    tracker = Tracker(default_tracking_uri(Path.cwd()), tracking["experiment"])
    run_id = tracker.start_run("report", {"profile": profile, "architectures": ",".join(architectures)},
                               tags={KIND_TAG: "report"})
    tracker.log_metrics(run_id, {f"{arch}.test/psnr_y": value for arch, value in zip(table["architecture"], table["test/psnr_y"], strict=True)})
    tracker.log_text(run_id, table.to_csv(index=False), "comparison.csv")
    tracker.log_text(run_id, markdown, "comparison.md")
    tracker.log_text(run_id, html, "report.html")
    for name, figure in figures.items():
        tracker.log_figure(run_id, figure, f"plots/{name}")
    tracker.end_run(run_id)
